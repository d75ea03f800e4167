"""The Snakemake workflow on configs of their own: the shipped configs' DAGs, bad configs,
devices, checkpoint files and precomputed embeddings (apart from test_workflow.py's shared
tiny run, so that pytest-xdist can run the two modules side by side)."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_config
from tests.conftest import run_snakemake as snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow


def jobs_of_dry_run(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("Reasons:")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


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
    jobs = jobs_of_dry_run(dry.stdout)
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
            train=str(inputs[0]),
            test=str(inputs[1]),
            task_split=str(tmp_path / "results" / "tasks" / "novel" / "seed0.npz"),
            grid={
                key: value
                for key, value in config["imprinting"].items()
                if not key.startswith("ls_lambda")
            },
            ls_lambda=ls_lambda,
            model="pixels",
            task="novel",
            seed=0,
            results=str(out),
            gen_time=str(tmp_path / "gen_time.csv"),
        )
        by_hand[ls_lambda] = pd.read_csv(out)["accuracy"]
    assert found.tolist() == by_hand[3.0].tolist()
    assert found.tolist() != by_hand[1e-4].tolist()  # λ matters here, so the test can fail
