"""The semantic mutations of tools/semantic_mutations.yaml (bugs mutmut cannot plant: a reduction
swapped, a normalisation dropped, a sign flipped, a statistic swapped for a near relative) still
apply to the code. That the tests catch each one is checked by running the tool, a step of
.ci/run of its own (about 35 s: one pytest process per mutation)."""

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
