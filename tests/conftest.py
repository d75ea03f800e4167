import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


#: The test config (.test/config/config.yaml, as the workflow catalog lays it out): a run of every
#: stage of the workflow in well under a minute.
TEST_CONFIG = REPO / ".test" / "config" / "config.yaml"


def tiny_config() -> dict:
    """The test config, a fresh copy each call (tests vary it)."""
    return yaml.safe_load(TEST_CONFIG.read_text())


#: Modules whose end-to-end runs take longest, in the order to start them: xdist hands each
#: worker one module at a time in collection order (pyproject's addopts), and the suite ends
#: soonest when the long runs start first and the short unit tests fill in around them. The
#: tiny run (test_workflow) starts at once, so that the modules that read it later find it done.
LONGEST_FIRST = (
    "test_workflow",
    "test_report",
    "test_pretrained_fm",
    "test_slurm",
    "test_workflow_configs",
    "test_workflow_reliability",
    "test_workflow_code_edits",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(item.nodeid.split("::")[0]).stem, len(rank)))


@pytest.fixture
def config() -> dict:
    return copy.deepcopy(tiny_config())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny config, run once per test session: the first xdist worker to ask runs it under a
    file lock, the others wait and reuse it, so that several test modules can read one run side
    by side. Read-only: a module works on its own copy (:func:`copy_of_run`)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers of this session share
    workdir = root / "tiny_run"
    with FileLock(root / "tiny_run.lock"):
        if not (workdir / "snakemake.out").exists():
            shutil.rmtree(workdir, ignore_errors=True)  # what a failed attempt left
            workdir.mkdir()
            write_config(workdir / "tiny.yaml", tiny_config())
            result = run_snakemake(workdir, "--configfile", "tiny.yaml")
            (workdir / "snakemake.out").write_text(result.stdout + result.stderr)
    return workdir


def copy_of_run(run: Path, target: Path) -> Path:
    """A finished run copied with its modification times and Snakemake's records, which
    Snakemake then treats as finished too."""
    shutil.copytree(run, target, symlinks=True)
    return target


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def workflow_rules(workdir: Path, configfile: Path | None = None) -> dict:
    """The workflow's rules (name -> snakemake Rule), parsed as `snakemake` would in ``workdir``."""
    import snakemake.settings.types as settings
    from snakemake.api import SnakemakeApi

    with SnakemakeApi(settings.OutputSettings(quiet={settings.Quietness.ALL})) as api:
        workflow = api.workflow(
            resource_settings=settings.ResourceSettings(),
            config_settings=settings.ConfigSettings(configfiles=[configfile] if configfile else []),
            snakefile=REPO / "Snakefile",
            workdir=workdir,
        )
        return {rule.name: rule for rule in workflow._workflow.rules}


def snakemake_command(
    *args: str, snakefile: Path = REPO / "Snakefile", cores: int | None = 2
) -> list[str]:
    """The command line of a Snakemake run of this workflow (or of a copy's ``snakefile``)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        *(["--cores", str(cores)] if cores else []),
        *args,
    ]


def run_snakemake(
    workdir: Path,
    *args: str,
    snakefile: Path = REPO / "Snakefile",
    env: dict | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; with ``check``, a failure raises with its output."""
    result = subprocess.run(
        snakemake_command(*args, snakefile=snakefile),
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    return result
