"""The semantic mutations of tools/semantic_mutations.yaml: each still applies to the code, and
the tests it names catch it (bugs mutmut cannot plant: a reduction swapped, a normalisation
dropped, a sign flipped, a statistic swapped for a near relative)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
from semantic_mutations import load_mutations, planted  # noqa: E402

MUTATIONS = load_mutations()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m["name"] for m in MUTATIONS])
def test_each_mutation_applies_once_and_names_existing_tests(mutation):
    source = (REPO / mutation["file"]).read_text()
    assert planted(source, mutation) != source
    for argument in mutation["tests"].split():
        assert (REPO / argument.split("::")[0]).exists(), argument
    assert mutation["why"]


@pytest.mark.workflow  # subprocesses: one pytest run per mutation, about 45 s in all
def test_the_tests_catch_every_semantic_mutation():
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "semantic_mutations.py")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(MUTATIONS)} of {len(MUTATIONS)} caught" in result.stdout
