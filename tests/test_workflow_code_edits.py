"""Reruns after code edits, on a finished run of the tiny config (shared with test_workflow.py
through the session's tiny run, so that pytest-xdist runs the two modules side by side): an edit
to a library module reruns exactly the jobs that ran it, and what depends on their outputs."""

import re
import shutil
from pathlib import Path

import pytest

from imprint.codehash import reached_modules
from tests.conftest import REPO, copy_of_run, workflow_rules
from tests.conftest import run_snakemake as snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def finished_run(tiny_run, tmp_path_factory):
    return copy_of_run(tiny_run, tmp_path_factory.mktemp("run") / "run")


def copy_of_repository(target: Path) -> Path:
    """The workflow and library, copied, so that a test can edit the code."""
    target.mkdir(parents=True)
    for part in ("Snakefile", "imprint", "workflow", "scripts", "envs", "profiles"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / part)
    return target


def rules_that_loaded(run: Path, rules: dict) -> dict[str, set[str]]:
    """module -> the rules whose jobs imported it, from the "imprint modules loaded" line that
    every job writes to its log (what really ran, independent of imprint.codehash)."""
    loaded: dict[str, set[str]] = {}
    for name, rule in rules.items():
        for pattern in rule.log:
            regex = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(str(pattern)))
            for log in run.glob("results/logs/**/*.log"):
                if re.fullmatch(regex, str(log.relative_to(run))):
                    modules = re.search(r"imprint modules loaded: (.*)", log.read_text())
                    assert modules, f"{log} does not say which modules its job loaded"
                    for module in modules.group(1).split():
                        loaded.setdefault(module, set()).add(name)
    return loaded


def rules_with_changed_params(repository: Path, workdir: Path) -> set[str]:
    """The rules whose jobs Snakemake plans to rerun because their own params changed (not only
    because their inputs will), from its per-file summary (`--list-changes params` would say it,
    but in Snakemake 9 it lists every output, changed or not)."""
    result = snakemake(
        workdir, "--configfile", "tiny.yaml", "--summary", snakefile=repository / "Snakefile"
    )
    rows = [line.split("\t") for line in result.stdout.splitlines() if line.count("\t") == 5]
    assert rows[0] == ["output_file", "date", "rule", "log-file(s)", "status", "plan"]
    assert all(row[5] == "update pending" for row in rows[1:] if row[4] == "params changed")
    return {row[2] for row in rows[1:] if row[4] == "params changed"}


@pytest.fixture(scope="module")
def job_modules(finished_run):
    rules = workflow_rules(finished_run, finished_run / "tiny.yaml")
    return rules, rules_that_loaded(finished_run, rules)


def test_an_unchanged_workflow_has_no_param_changes(finished_run):
    assert rules_with_changed_params(REPO, finished_run) == set()


#: Every module of the package, subpackages included ("figures.gen_vs_k", "figures.__init__")
MODULES = sorted(
    ".".join(path.relative_to(REPO / "imprint").with_suffix("").parts)
    for path in (REPO / "imprint").rglob("*.py")
)


def module_name(module: str) -> str:
    return "imprint" + "".join(f".{part}" for part in module.split(".") if part != "__init__")


#: (module, rule) pairs whose hash covers a module that the tiny run's job does not load, because
#: only another config takes that path: an edit must still rerun them.
CONFIG_DEPENDENT = {
    ("kmeans", "lowshot"): "lowshot.init.gen: kmeans runs k-means; the tiny config imprints means",
    ("medoids", "imprinting"): "imprinting.gen: kmedoids runs it; the tiny config's grid has none",
    ("medoids", "export_classifiers"): "a selected kmedoids configuration is refit with it",
    # Not config-dependent but an over-approximation: low-shot imprints through the GEN registry
    # (generate_proxies), which holds every method; as when k-medoids lived in imprint/gen.py.
    ("medoids", "lowshot"): "low-shot dispatches through the GEN registry, k-medoids included",
}


@pytest.mark.parametrize("module", MODULES)
def test_every_library_module_is_hashed_into_exactly_the_rules_whose_jobs_ran_it(
    job_modules, module
):
    """A rule's `code` param hashes its script and the source of every module the script
    reaches (imprint.codehash; test_rules checks the params are these hashes), so an edit to a
    module changes the params of exactly the rules whose scripts reach it. Those must be the
    rules whose jobs really loaded it, by their logs. Snakemake's own view of an edit is the
    next test's, for one module."""
    rules, loaded = job_modules
    ran = set().union(*loaded.values())
    hashed = {
        name
        for name in ran
        if module_name(module)
        in reached_modules((REPO / "workflow" / "rules" / rules[name].script).resolve())
    }
    expected = loaded.get(module_name(module), set())
    expected |= {rule for (name, rule) in CONFIG_DEPENDENT if name == module and rule in ran}
    assert hashed == expected


@pytest.mark.parametrize("module", ["gen", "stats"])
def test_editing_a_library_module_reruns_exactly_the_rules_whose_jobs_ran_it(
    finished_run, job_modules, tmp_path, module
):
    _, loaded = job_modules
    repository = copy_of_repository(tmp_path / "repository")
    with open(repository / "imprint" / f"{module}.py", "a") as handle:
        handle.write("\n# an edit\n")
    changed = rules_with_changed_params(repository, finished_run)
    assert changed == loaded[module_name(module)]


def test_editing_library_code_also_reruns_what_depends_on_its_outputs(finished_run, tmp_path):
    repository = copy_of_repository(tmp_path / "repository")
    workdir = copy_of_run(finished_run, tmp_path / "run")
    with open(repository / "imprint" / "nc.py", "a") as handle:
        handle.write("\n# an edit\n")
    result = snakemake(
        workdir, "--configfile", "tiny.yaml", "--dry-run", snakefile=repository / "Snakefile"
    )
    table = result.stdout.split("Job stats:")[1].split("Reasons:")[0]
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    # the NC1 jobs, the NC1 table and summary, the NC1-vs-gain table, the figures that read
    # them (nc1 and nc1_vs_gain here), the exported classifiers (their provenance holds NC1)
    assert planned == {
        "nc1": "4",
        "collect_nc1": "1",
        "nc1_summary": "1",
        "nc1_vs_gain": "1",
        "figure": "2",
        "export_classifiers": "2",
        "all": "1",
        "total": "12",
    }
