"""The Snakemake workflow on configs of their own: the shipped configs' DAGs, bad configs,
devices, checkpoint files and precomputed embeddings (apart from test_workflow.py's shared
tiny run, so that pytest-xdist can run the two modules side by side)."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_config
from tests.conftest import run_snakemake as snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow


def refusal(workdir: Path, config: dict) -> str:
    """What Snakemake says when it refuses ``config``: it must fail before any job ran."""
    write_config(workdir / "refused.yaml", config)
    result = snakemake(workdir, "--configfile", "refused.yaml", check=False)
    assert result.returncode != 0
    assert not (workdir / "results").exists()
    return result.stderr


def test_a_bad_config_stops_before_any_job_with_the_key_named(tmp_path):
    config = tiny_config()
    config["imprinting"]["gen"] = ["mean", "k-means"]
    assert "config key 'imprinting.gen[1]': 'k-means' is not one of" in refusal(tmp_path, config)


def test_the_default_config_builds_its_dag(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    jobs = planned_jobs(tmp_path)
    assert jobs["imprinting"] == 2 * 9 * 3 and jobs["embeddings"] == 4
    assert jobs["comparison"] == 4 and jobs["nc1"] == 18
    # gen_vs_k, few_shot, nc1, nc1_vs_gain, d_in_1, gen_time, lowshot, finetune_curves,
    # selection_optimism
    assert jobs["figure"] == 9
    assert jobs["export_classifiers"] == 2  # one per model, a folder per task
    assert jobs["lowshot"] == 3 and jobs["lowshot_summary"] == 1  # the CNN x 3 seeds


def test_the_paper_config_builds_its_dag_offline(tmp_path):
    # without MNIST-M and ImageNet here: the dry run lists them and plans on
    dry = snakemake(tmp_path, "--dry-run", "--configfile", str(REPO / "configs" / "paper.yaml"))
    assert "note: config key 'datasets.imagenet.root': data/imagenet does not exist" in dry.stderr
    assert "note: config key 'datasets.mnist_m.root': data/mnist_m does not exist" in dry.stderr
    jobs = planned_jobs(tmp_path, "--configfile", str(REPO / "configs" / "paper.yaml"))
    # 4 FMs x (12 main tasks x 3 seeds + 4 digit domains x 3 + 36 few-shot x 5 + 10 d-in-1 x 10)
    assert jobs["imprinting"] == 4 * (12 * 3 + 4 * 3 + 36 * 5 + 10 * 10)
    assert jobs["embeddings"] == 4 * 8 * 2 and jobs["dataset"] == 8 and jobs["model"] == 4
    # gen, norm, norm_pre_inf and norm_post (Table 1 / Figure 7), agg, methods
    assert jobs["comparison"] == 6


def test_imprinting_on_cuda_without_cuda_stops_before_any_job(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tiny_config()
    config["imprinting"]["device"] = "cuda"
    message = "config key 'imprinting.device': 'cuda', but this machine has no CUDA"
    assert message in refusal(tmp_path, config)


def test_imprinting_jobs_on_cuda_ask_a_cluster_for_a_gpu(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    config = tiny_config()
    config["imprinting"]["device"] = "cuda"
    write_config(tmp_path / "cuda.yaml", config)
    # A dry run through the SLURM executor: the jobs would run on its nodes, so no CUDA is
    # needed here; the plugin turns resources.gpu into sbatch --gpus (tests/test_slurm.py).
    output = snakemake(
        tmp_path,
        "--configfile",
        "cuda.yaml",
        "--dry-run",
        "--executor",
        "slurm",
        "--jobs",
        "1",
        "--slurm-no-account",
    ).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", output, flags=re.M | re.S)
    gpu = {rule: re.search(r"resources: .*\bgpu=(\d+)", body) for rule, body in jobs}
    assert {rule for rule, found in gpu.items() if found and found.group(1) != "0"} == {
        "imprinting"
    }


def test_the_modern_fm_config_builds_its_dag_offline(tmp_path):
    pytest.importorskip("timm")
    jobs = planned_jobs(tmp_path, "--configfile", str(REPO / "configs" / "modern.yaml"))
    assert jobs["imprinting"] == 4 * 12 * 3 and jobs["embeddings"] == 4 * 3 * 2
    assert jobs["model"] == 4 and jobs["comparison"] == 4


def test_the_qi_config_builds_its_dag_offline(tmp_path):
    output = snakemake(tmp_path, "--dry-run", "--configfile", str(REPO / "configs" / "qi.yaml"))
    table = output.stdout.split("Job stats:")[1].split("Reasons:")[0]
    jobs = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}
    assert jobs["lowshot"] == 2 * 5  # (resnet50, vit_b_16) x 5 seeds
    assert jobs["embeddings"] == 2 * 2  # the head scope reads cached embeddings
    assert jobs["collect_lowshot"] == jobs["lowshot_summary"] == 1
    assert "output: results/qi/figures/finetune_curves.pdf" in output.stdout  # its own folder


def planned_outputs(workdir: Path, *args: str) -> list[str]:
    """The output files of the jobs a dry run plans."""
    output = snakemake(workdir, "--dry-run", *args).stdout
    lines = re.findall(r"^\s+output: (.+)$", output, flags=re.M)
    return [path for line in lines for path in line.split(", ")]


def test_changing_a_checkpoint_file_reruns_that_fm_and_nothing_else(tmp_path):
    pytest.importorskip("timm")
    import timm
    import torch
    from safetensors.torch import save_file

    def write_weights(seed):
        torch.manual_seed(seed)
        # timm's own tiny test network: any architecture shows which jobs a new checkpoint reruns
        save_file(timm.create_model("test_resnet").state_dict(), str(tmp_path / "net.safetensors"))

    write_weights(0)
    config = tiny_config()
    config["models"] = {
        "pixels": {"source": "pixels"},
        "net": {
            "source": "timm",
            "name": "test_resnet",
            "pretrained": False,
            "image_size": 32,
            "checkpoint": str(tmp_path / "net.safetensors"),
        },
    }
    config["tasks"] = {"novel": config["tasks"]["novel"]}
    del config["lowshot"]  # its models are gone
    config["seeds"] = [0]
    write_config(tmp_path / "fm.yaml", config)
    targets = ["results/tables/imprinting.csv", "--configfile", "fm.yaml"]
    snakemake(tmp_path, *targets)
    assert planned_outputs(tmp_path, *targets) == []
    write_weights(1)
    planned = planned_outputs(tmp_path, *targets)
    assert sorted(planned) == [
        "results/embeddings/net/digits/test.npz",
        "results/embeddings/net/digits/train.npz",
        "results/imprinting/net/novel/seed0.csv",
        "results/imprinting/net/novel/seed0.gen_time.csv",
        "results/models/net.pt",
        "results/selection/net/novel/seed0.csv",  # written by the same imprinting job
        "results/tables/imprinting.csv",
    ]


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

    # A read-only job asks for one thread and memory for its arrays, not a network's 16 GB.
    forced = snakemake(
        tmp_path,
        "--dry-run",
        "--forceall",
        "results/tables/imprinting.csv",
        "--configfile",
        "pre.yaml",
    ).stdout
    embeddings_jobs = [job for job in forced.split("\nrule ")[1:] if job.startswith("embeddings:")]
    assert len(embeddings_jobs) == 4
    for job in embeddings_jobs:
        assert "threads:" not in job or "threads: 1" in job
        assert int(re.search(r"mem_mb=(\d+)", job).group(1)) <= 1000

    # A precomputed file rewritten after the run reruns from its dataset on ...
    targets = ["results/tables/imprinting.csv", "--configfile", "pre.yaml"]
    assert planned_jobs(tmp_path, *targets) == {}
    np.savez(
        tmp_path / "raw.npz",
        train_embeddings=(x[::2] + 1).astype(np.float32),
        train_labels=y[::2],
        test_embeddings=(x[1::2] + 1).astype(np.float32),
        test_labels=y[1::2],
    )
    rerun = planned_jobs(tmp_path, *targets)
    assert rerun["dataset"] == 1 and rerun["embeddings"] == 4 and rerun["imprinting"] == 2
    # ... and one that disappears stops the run before any job (a dry run lists it and plans)
    (tmp_path / "raw.npz").unlink()
    missing = f"config key 'datasets.feats.models.raw': {tmp_path / 'raw.npz'} does not exist"
    dry = snakemake(tmp_path, "--dry-run", *targets)
    assert missing in dry.stderr and "Nothing to be done" in dry.stdout
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


def test_a_target_runs_only_what_it_needs(tmp_path):
    """The README's "ask for one target; only what it needs runs"."""
    write_config(tmp_path / "tiny.yaml", tiny_config())
    diagram = planned_jobs(tmp_path, "results/cd_diagrams/gen.pdf", "--configfile", "tiny.yaml")
    assert set(diagram) == {
        "dataset",
        "model",
        "embeddings",
        "task",
        "imprinting",
        "collect_imprinting",
        "comparison",
    }
    assert diagram["imprinting"] == 2 * 3 and diagram["comparison"] == 1
    nc1 = planned_jobs(tmp_path, "results/nc1/cnn/novel.csv", "--configfile", "tiny.yaml")
    assert set(nc1) == {"dataset", "model", "embeddings", "task", "nc1"}
    assert nc1["embeddings"] == 1 and nc1["nc1"] == 1  # NC1 reads the CNN's train split only


def test_a_config_key_overridden_on_the_command_line_changes_the_plan(tmp_path):
    write_config(tmp_path / "tiny.yaml", tiny_config())
    default = planned_jobs(tmp_path, "--configfile", "tiny.yaml")
    one_seed = planned_jobs(tmp_path, "--configfile", "tiny.yaml", "--config", "seeds=[0]")
    # novel runs the global seeds, pairs its own seed 7: 2 models x (2 + 1), then 2 x (1 + 1)
    assert default["imprinting"] == 6 and one_seed["imprinting"] == 4
    bad = snakemake(tmp_path, "--configfile", "tiny.yaml", "--config", "seeds=[-1]", check=False)
    assert bad.returncode != 0 and "config key 'seeds[0]'" in bad.stderr


def test_ls_lambda_per_model_reaches_the_models_imprinting_job(tmp_path):
    """The override is the λ that model's job imprints with (not the grid's default), checked
    against the stage run by hand on the job's own inputs."""
    from imprint.stages import run_imprinting

    config = tiny_config()
    del config["comparisons"]  # they name GEN methods this grid leaves out
    config["imprinting"].update(
        gen=["ls"],
        norm_post=["none"],
        agg=["max"],
        ls_lambda=1e-4,
        ls_lambda_per_model={"pixels": 3.0},
    )
    write_config(tmp_path / "tiny.yaml", config)
    target = "results/imprinting/pixels/novel/seed0.csv"
    snakemake(tmp_path, target, "--configfile", "tiny.yaml")
    found = pd.read_csv(tmp_path / target)["accuracy"]
    inputs = [
        tmp_path / "results" / "embeddings" / "pixels" / "digits" / f"{s}.npz"
        for s in ("train", "test")
    ]
    by_hand = {}
    for ls_lambda in (3.0, 1e-4):
        out = tmp_path / f"by_hand_{ls_lambda}.csv"
        run_imprinting(
            str(inputs[0]),
            str(inputs[1]),
            str(tmp_path / "results" / "tasks" / "novel" / "seed0.npz"),
            {
                key: value
                for key, value in config["imprinting"].items()
                if not key.startswith("ls_lambda")
            },
            ls_lambda,
            "pixels",
            "novel",
            0,
            str(out),
            str(tmp_path / "gen_time.csv"),
        )
        by_hand[ls_lambda] = pd.read_csv(out)["accuracy"]
    assert found.tolist() == by_hand[3.0].tolist()
    assert found.tolist() != by_hand[1e-4].tolist()  # λ matters here, so the test can fail


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
    dotted = snakemake(
        tmp_path,
        "--dry-run",
        "--configfile",
        "tiny.yaml",
        "--config",
        "imprinting.k=[1]",
        check=False,
    )
    assert dotted.returncode != 0  # Snakemake refuses the dotted form (the README says so)


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
