"""The rules' own declarations: derived code hashes, output names, figure wildcards."""

import re
import shutil

import pytest

from imprint.codehash import code_hash
from imprint.config import RESERVED_TABLES
from imprint.figures import FIGURES
from tests.conftest import REPO, workflow_rules


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rules")
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    return workflow_rules(workdir)


def test_every_rule_that_runs_a_script_hashes_that_script_and_what_it_imports(rules):
    scripted = {name: rule for name, rule in rules.items() if rule.script}
    assert set(rules) - set(scripted) == {"all"}
    for name, rule in scripted.items():
        script = (REPO / "workflow" / "rules" / rule.script).resolve()
        assert rule.params.get("code") == code_hash(script), name


def test_the_reserved_table_names_are_the_tables_the_workflow_writes(rules):
    written = {
        re.fullmatch(r"results/tables/(\w+)\.csv", str(output))
        for rule in rules.values()
        for output in rule.output
    }
    assert {match.group(1) for match in written if match} == RESERVED_TABLES


def test_the_figure_rule_draws_exactly_the_registered_figures(rules):
    pattern = str(rules["figure"].output[0])
    alternatives = re.fullmatch(r"results/figures/\{figure,(.*)\}\.pdf", pattern).group(1)
    assert sorted(alternatives.split("|")) == sorted(FIGURES)
