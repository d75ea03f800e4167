"""Runs a user can trust, end to end: inputs the config names checked before any job and
reruns when they change (precomputed arrays, image folders), short failures, YAML errors with
their line, the README's command-line override (apart from test_workflow_configs.py, so that
pytest-xdist runs the two modules side by side)."""

import os
import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_config
from tests.conftest import run_snakemake as snakemake
from tests.test_workflow import planned_jobs
from tests.test_workflow_configs import jobs_of_dry_run, refusal

pytestmark = pytest.mark.workflow


def test_precomputed_embeddings_run_through_tasks_imprinting_and_nc1(tmp_path):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    for name, transform in (("raw", lambda a: a), ("squared", np.square)):
        np.savez(
            tmp_path / f"{name}.npz",
            train_embeddings=transform(x[::2]).astype(np.float32),
            train_labels=y[::2],
            test_embeddings=transform(x[1::2]).astype(np.float32),
            test_labels=y[1::2],
        )
    config = tiny_config()
    config["datasets"] = {
        "feats": {
            "source": "embeddings",
            "models": {"raw": str(tmp_path / "raw.npz"), "squared": str(tmp_path / "squared.npz")},
        }
    }
    config["models"] = {"raw": {"source": "precomputed"}, "squared": {"source": "precomputed"}}
    config["tasks"] = {"novel": {"dataset": "feats", "classes": [5, 6, 7, 8, 9]}}
    config["seeds"] = [0]
    del config["lowshot"]  # its models are gone
    write_config(tmp_path / "pre.yaml", config)
    snakemake(
        tmp_path,
        "results/tables/imprinting.csv",
        "results/tables/nc1.csv",
        "--configfile",
        "pre.yaml",
    )
    table = pd.read_csv(tmp_path / "results" / "tables" / "imprinting.csv")
    assert set(table["model"]) == {"raw", "squared"}
    qi = table[(table["gen"] == "mean") & (table["norm_post"] == "l2") & (table["agg"] == "max")]
    assert (qi["accuracy"] > 0.85).all(), qi
    stored = np.load(tmp_path / "results" / "embeddings" / "raw" / "feats" / "train.npz")
    np.testing.assert_array_equal(stored["embeddings"], x[::2].astype(np.float32))
    assert not (tmp_path / "results" / "models" / "raw.pt").read_bytes() == b""

    # A precomputed file rewritten after the run reruns from its dataset on ...
    targets = ["results/tables/imprinting.csv", "--configfile", "pre.yaml"]
    np.savez(
        tmp_path / "raw.npz",
        train_embeddings=(x[::2] + 1).astype(np.float32),
        train_labels=y[::2],
        test_embeddings=(x[1::2] + 1).astype(np.float32),
        test_labels=y[1::2],
    )
    plan = snakemake(tmp_path, "--dry-run", *targets).stdout
    rerun = jobs_of_dry_run(plan)
    assert rerun["dataset"] == 1 and rerun["embeddings"] == 4 and rerun["imprinting"] == 2
    # (a read-only job asks for one thread and memory for its arrays, not a network's 16 GB)
    embeddings_jobs = [job for job in plan.split("\nrule ")[1:] if job.startswith("embeddings:")]
    assert len(embeddings_jobs) == 4
    for job in embeddings_jobs:
        assert "threads:" not in job or "threads: 1" in job
        assert int(re.search(r"mem_mb=(\d+)", job).group(1)) <= 1000
    # ... and one that disappears stops the run before any job, though every output exists
    # (a dry run lists it and plans on: test_the_paper_config_builds_its_dag_offline)
    (tmp_path / "raw.npz").unlink()
    missing = f"config key 'datasets.feats.models.raw': {tmp_path / 'raw.npz'} does not exist"
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.npz"))
    stopped = snakemake(tmp_path, *targets, check=False)
    assert stopped.returncode != 0 and missing in stopped.stderr
    assert "file(s) or folder(s) the config names do not exist" in stopped.stdout + stopped.stderr
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "results").rglob("*.npz")) == before


def test_precomputed_files_of_different_widths_are_refused_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    np.savez(
        tmp_path / "wide.npz",
        train_embeddings=rng.normal(size=(30, 16)).astype(np.float32),
        train_labels=labels,
        test_embeddings=rng.normal(size=(30, 8)).astype(np.float32),
        test_labels=labels,
    )
    config = tiny_config()
    config["datasets"] = {
        "feats": {"source": "embeddings", "models": {"m": str(tmp_path / "wide.npz")}}
    }
    config["models"] = {"m": {"source": "precomputed"}}
    config["tasks"] = {"all": {"dataset": "feats"}}
    del config["lowshot"], config["comparisons"]
    message = refusal(tmp_path, config)
    assert (
        f"config key 'datasets.feats.models.m': {tmp_path / 'wide.npz'}: train embeddings are "
        "16-d but test embeddings 8-d"
    ) in message


def test_a_failed_job_says_what_was_wrong_in_one_line_without_a_traceback(tmp_path):
    """Offline, a torchvision model's weights cannot be downloaded: the model job fails, and
    the one actionable line (where to put the file) ends its log and the console output."""
    config = tiny_config()
    config["models"] = {
        "r18": {"source": "torchvision", "name": "resnet18", "weights": "IMAGENET1K_V1"}
    }
    config["tasks"] = {"novel": config["tasks"]["novel"]}
    del config["lowshot"], config["comparisons"]
    write_config(tmp_path / "offline.yaml", config)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}  # no weights cached there
    failed = snakemake(
        tmp_path, "results/models/r18.pt", "--configfile", "offline.yaml", check=False, env=env
    )
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "Traceback" not in output
    log = (tmp_path / "results/logs/model/r18.log").read_text().splitlines()
    assert log[-1].startswith("Error: could not obtain the ResNet18_Weights.IMAGENET1K_V1")
    assert "Without internet access, put https://download.pytorch.org/models/" in log[-1]
    assert log[-1] in output
    traceback = (tmp_path / "results/logs/model/r18.log.traceback").read_text()
    assert traceback.startswith("Traceback (most recent call last)")


def test_a_yaml_error_in_the_default_config_names_the_file_and_line(tmp_path):
    text = (REPO / "config.yaml").read_text().replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2")
    (tmp_path / "config.yaml").write_text(text)
    failed = snakemake(tmp_path, "--dry-run", check=False)
    line = text.splitlines().index("seeds: [0, 1, 2") + 1
    assert failed.returncode != 0
    assert re.search(rf"config\.yaml:{line + 2}:\d+: not valid YAML", failed.stdout + failed.stderr)


def test_the_readmes_nested_command_line_override_changes_one_key_of_a_section(tmp_path):
    write_config(tmp_path / "tiny.yaml", tiny_config())
    override = planned_jobs(
        tmp_path, "--configfile", "tiny.yaml", "--config", "imprinting={k: [1, 3, 4]}"
    )
    assert override["imprinting"] == 6  # the grid's other keys kept: the config is still valid


def test_an_image_folder_a_classifier_cannot_come_from_is_refused_before_any_job(tmp_path):
    from tests.test_preflight import image_tree

    config = tiny_config()
    config["datasets"] = {"photos": {"source": "image_folder", "train": str(tmp_path / "photos")}}
    config["models"] = {"pixels": {"source": "pixels"}}
    config["tasks"] = {"all": {"dataset": "photos"}}
    del config["lowshot"], config["comparisons"]
    image_tree(tmp_path / "photos", {"cat": 6})  # one class: accuracy 1.0 for nothing
    assert (
        "config key 'datasets.photos.train': "
        f"{tmp_path / 'photos'} holds 1 class folder(s) ['cat']; a classifier needs at least two"
    ) in refusal(tmp_path, config)
