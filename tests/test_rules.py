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


#: Params that exist to rerun a rule when they change, not for its stage: the code hash, the
#: digest of a dataset's image files, and a figure's report caption (read by the report).
RERUN_ONLY_PARAMS = {"code", "images", "caption"}
#: Inputs that only order the jobs or rerun them: the files a model spec names, read through
#: the spec (the stage gets the spec, not the path).
DEPENDENCY_ONLY_INPUTS = {"weights_file"}


def script_call(script) -> tuple[str, set[str]]:
    """The stage a rule's script runs through ``run_rule(snakemake, stage, **given)`` and the
    names it gives by hand."""
    import ast

    calls = [
        node
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_rule"
    ]
    assert len(calls) == 1, f"{script.name} must call run_rule once"
    return calls[0].args[1].id, {keyword.arg for keyword in calls[0].keywords}


def unpacked_input_names(rule) -> set[str]:
    """The names of the inputs a rule's ``unpack(function)`` gives, for wildcards taken from the
    offline default's config (its first model, task, dataset, ...)."""
    from types import SimpleNamespace

    config = rule.workflow.config
    first = {
        "model": sorted(config["models"])[0],
        # a low-shot job's task is a low-shot task
        "task": sorted(config["lowshot"]["tasks"] if rule.name == "lowshot" else config["tasks"])[
            0
        ],
        "dataset": sorted(config["datasets"])[0],
        "seed": "0",
        "split": "train",
        "figure": "nc1",
        "comparison": sorted(config["comparisons"])[0],
    }
    wildcards = SimpleNamespace(**{name: first[name] for name in rule.wildcard_names})
    names = set()
    for item in rule.input:
        if getattr(item, "flags", {}).get("unpack"):
            names |= set(item._file.callable(wildcards))
    return names


def test_every_rule_names_what_its_stage_takes_and_its_stage_takes_what_it_names(rules):
    """Rule, script and stage agree by name (imprint.stages.run_rule): every argument the stage
    needs is one of the rule's inputs, outputs, params or wildcards (and one only), and every
    output and param the rule declares is an argument of its stage."""
    import inspect

    from imprint import stages

    for name, rule in rules.items():
        if not rule.script:
            continue
        script = (REPO / "workflow" / "rules" / rule.script).resolve()
        stage_name, given = script_call(script)
        parameters = inspect.signature(getattr(stages, stage_name)).parameters
        takes_rest = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        declared = {
            "input": set(rule.input.keys()) | unpacked_input_names(rule),
            "output": set(rule.output.keys()),
            "params": set(rule.params.keys()) - RERUN_ONLY_PARAMS,
            "wildcards": set(rule.wildcard_names),
        }
        for parameter in parameters.values():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD or parameter.name in given:
                continue
            where = [part for part, names in declared.items() if parameter.name in names]
            assert len(where) <= 1, f"rule {name}: {parameter.name!r} is in {where}"
            if parameter.name != "threads" and parameter.default is inspect.Parameter.empty:
                assert where, f"rule {name} does not name {stage_name}'s {parameter.name!r}"
        for part in ("output", "params"):
            unused = declared[part] - set(parameters) - given
            assert not unused, f"rule {name}: {stage_name} takes no {part} {sorted(unused)}"
        if not takes_rest:
            unused = declared["input"] - set(parameters) - DEPENDENCY_ONLY_INPUTS
            assert not unused, f"rule {name}: {stage_name} takes no input {sorted(unused)}"


def test_a_stage_gets_its_arguments_by_name_and_a_missing_one_is_named():
    from types import SimpleNamespace

    from snakemake.iocontainers import Namedlist

    from imprint.stages import rule_arguments

    def stage(*, results, summary, seed, threads=1, absent=None):
        return None

    job = SimpleNamespace(
        input=Namedlist(fromdict={"results": "in.csv"}),
        output=Namedlist(fromdict={"summary": "out.csv"}),
        params=Namedlist(fromdict={"code": "abc"}),
        wildcards=Namedlist(fromdict={"seed": "3"}),
        threads=2,
    )
    assert rule_arguments(job, stage) == {
        "results": "in.csv",
        "summary": "out.csv",
        "seed": "3",
        "threads": 2,
    }

    def figure(*, summary, threads=1, **tables):
        return None

    # a ** parameter takes the named inputs no other parameter takes; `given` is left out
    job.input = Namedlist(fromdict={"results": "in.csv", "nc1": "nc1.csv"})
    assert rule_arguments(job, figure, given=("results",)) == {
        "summary": "out.csv",
        "threads": 2,
        "nc1": "nc1.csv",
    }
    job.output = Namedlist(fromdict={"table": "out.csv"})
    with pytest.raises(TypeError, match="stage needs 'summary'"):
        rule_arguments(job, stage)
    job.params = Namedlist(fromdict={"summary": "x", "seed": 4})
    with pytest.raises(TypeError, match="'seed' as params and wildcards"):
        rule_arguments(job, stage)
