"""The Snakemake workflow end to end, on a tiny config in a temporary directory."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from imprint.grid import RESULT_COLUMNS, Grid
from tests.conftest import REPO, tiny_config, write_config

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--cores", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """The rules a dry run would execute, with their job counts."""
    output = snakemake(workdir, "--dry-run", *args).stdout
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("Reasons:")[0]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    jobs.pop("total", None)
    return {rule: int(count) for rule, count in jobs.items()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    write_config(workdir / "tiny.yaml", tiny_config())
    snakemake(workdir, "--configfile", "tiny.yaml")
    return workdir


def test_every_stage_produces_its_outputs(finished_run):
    results = finished_run / "results"
    config = tiny_config()
    table = pd.read_csv(results / "tables" / "imprinting.csv")
    grid = Grid.from_config(config["imprinting"], 1e-4)
    assert list(table.columns) == ["model", "task", "seed", *RESULT_COLUMNS]
    # novel runs the global seeds 0 and 1, pairs its own seed 7
    assert len(table) == 2 * (2 + 1) * grid.size()
    assert set(table.loc[table["task"] == "pairs", "seed"]) == {7}
    assert table.groupby(["model", "task", "seed"]).size().eq(grid.size()).all()
    assert table["accuracy"].between(0, 1).all() and table["accuracy"].mean() > 0.5
    assert set(table["model"]) == {"pixels", "cnn"} and set(table["task"]) == {"novel", "pairs"}

    nc1 = pd.read_csv(results / "tables" / "nc1.csv")
    assert len(nc1) == 2 * (2 + 1) and (nc1["nc1"] > 0).all()
    assert set(nc1.loc[nc1["task"] == "pairs", "n_labels"]) == {3}
    summary = pd.read_csv(results / "tables" / "nc1_summary.csv")
    assert len(summary) == 4

    for name, treatments in [("gen", {"mean", "ls", "kmeans k=1", "kmeans k=3"}),
                             ("norm", {"post=none", "post=l2"}),
                             ("agg", {"max", "mnn m=1", "mnn m=3"})]:
        comparison = pd.read_csv(results / "tables" / f"{name}.csv")
        assert set(comparison["treatment"]) == treatments
        assert (comparison["n_groups"] == 4).all()
        assert (results / "cd_diagrams" / f"{name}.pdf").read_bytes().startswith(b"%PDF")

    per_config = pd.read_csv(results / "tables" / "summary.csv")
    assert len(per_config) == grid.size()
    for split in ("train", "test"):
        assert (results / "embeddings" / "cnn" / "digits" / f"{split}.npz").exists()
    assert len(re.findall(r"epoch \d+:", (results / "logs" / "model" / "cnn.log").read_text())) == 2
    leftovers = [p for p in results.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    # Written atomically, yet readable by others like any plain file (not mkstemp's 0600).
    assert (results / "tables" / "imprinting.csv").stat().st_mode & 0o044 == 0o044


def test_a_second_run_has_nothing_to_do(finished_run):
    assert planned_jobs(finished_run, "--configfile", "tiny.yaml") == {}


def test_changing_only_the_grid_reruns_only_imprinting_and_statistics(finished_run, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(finished_run, workdir, symlinks=True)  # copy2 keeps modification times
    config = tiny_config()
    config["imprinting"]["m"] = [1, 2]
    write_config(workdir / "tiny.yaml", config)
    jobs = planned_jobs(workdir, "--configfile", "tiny.yaml")
    assert set(jobs) == {"imprinting", "collect_imprinting", "summary", "comparison", "all"}
    assert jobs["imprinting"] == 6

    upstream = [*workdir.glob("results/embeddings/**/*.npz"), *workdir.glob("results/models/*"),
                *workdir.glob("results/tasks/**/*.npz"), *workdir.glob("results/nc1/**/*.csv")]
    before = {path: path.stat().st_mtime_ns for path in upstream}
    snakemake(workdir, "--configfile", "tiny.yaml")
    assert {path: path.stat().st_mtime_ns for path in upstream} == before
    agg = pd.read_csv(workdir / "results" / "tables" / "agg.csv")
    assert set(agg["treatment"]) == {"max", "mnn m=1", "mnn m=2"}


def test_a_bad_config_stops_before_any_job_with_the_key_named(tmp_path):
    config = tiny_config()
    config["imprinting"]["gen"] = ["mean", "k-means"]
    write_config(tmp_path / "bad.yaml", config)
    result = snakemake(tmp_path, "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert "config key 'imprinting.gen[1]': 'k-means' is not one of" in result.stderr
    assert not (tmp_path / "results").exists()


def test_the_default_config_builds_its_dag(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    jobs = planned_jobs(tmp_path)
    assert jobs["imprinting"] == 2 * 6 * 3 and jobs["embeddings"] == 4
    assert jobs["comparison"] == 3 and jobs["nc1"] == 12


def test_the_paper_config_builds_its_dag_offline(tmp_path):
    jobs = planned_jobs(tmp_path, "--configfile", str(REPO / "configs" / "paper.yaml"))
    # 4 FMs x (12 main tasks x 3 seeds + 4 digit domains x 3 + 36 few-shot x 5 + 10 d-in-1 x 10)
    assert jobs["imprinting"] == 4 * (12 * 3 + 4 * 3 + 36 * 5 + 10 * 10)
    assert jobs["embeddings"] == 4 * 8 * 2 and jobs["dataset"] == 8 and jobs["model"] == 4
