"""Qi et al.'s experiments through the workflow: the CUB-200 and iNaturalist configs plan their
DAGs offline, and a low-shot run with the embedding layer (a list of dimensions, RMSProp with
decay, nearest neighbour, transfer, published numbers) runs end to end on the offline
default's digits."""

import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_config
from tests.conftest import run_snakemake as snakemake
from tests.test_workflow_configs import jobs_of_dry_run

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize(
    "config,notes,lowshot_jobs",
    [
        ("qi_cub.yaml", [], 2 * 5),  # Tables 1-2 and Table 3, 5 seeds; CUB is downloaded
        (
            "qi_inat.yaml",
            [
                "note: config key 'datasets.inat.root (train2017.json)': "
                "data/inaturalist/train2017.json does not exist"
            ],
            3,
        ),
    ],
)
def test_qis_configs_build_their_dags_offline(tmp_path, config, notes, lowshot_jobs):
    dry = snakemake(tmp_path, "--dry-run", "--configfile", str(REPO / "configs" / config))
    for note in notes:
        assert note in dry.stderr
    jobs = jobs_of_dry_run(dry.stdout)
    assert jobs["lowshot"] == lowshot_jobs and jobs["lowshot_summary"] == 1
    assert jobs["dataset"] == 1 and jobs["model"] == 1


def test_a_head_scope_run_with_an_embedding_layer_runs_end_to_end(tmp_path):
    config = tiny_config()
    task = {"models": ["pixels"], "dataset": "digits", "n_shot": [1, 5]}
    config["lowshot"] = {
        "tasks": {
            "digits": {
                **task,
                "base_classes": {"first": 5},
                "novel_classes": {"last": 5},
                "paper": {
                    "source": "made up for the test",
                    "n_shot": [1, 5],
                    "novel_accuracy": {"imprint": [21.26, 39.52]},
                },
            },
            "transfer": {**task, "base_classes": [], "novel_classes": {"first": 10}},
        },
        "methods": ["imprint", "imprint_ft", "all_class_joint", "nearest_neighbour"],
        "seeds": [0],
        "embedding_dim": [8, 32],
        "scope": "head",
        "optimizer": "rmsprop",
        "learning_rate": 0.001,
        "lr_decay": {"factor": 0.94, "every_epochs": 4},
        "base_epochs": 5,
        "epochs": 2,
        "joint_epochs": 2,
    }
    write_config(tmp_path / "config.yaml", config)
    snakemake(tmp_path, "results/tables/lowshot_summary.csv", "results/figures/embedding_dim.pdf")
    rows = pd.read_csv(tmp_path / "results" / "tables" / "lowshot.csv")
    assert sorted(rows["embedding_dim"].unique()) == [8, 32]
    assert set(rows["method"]) == set(config["lowshot"]["methods"])
    assert sorted(rows["task"].unique()) == ["digits", "transfer"]
    transfer = rows[rows["task"] == "transfer"]
    assert (transfer["novel_accuracy"] == transfer["all_accuracy"]).all()
    imprint = rows[(rows["method"] == "imprint") & (rows["task"] == "digits")]
    # 8x8 digits through a layer trained on the other five: well above chance (1 in 5), and
    # better from five examples than from one
    assert (imprint["novel_accuracy"] > 0.3).all()
    by_n = imprint.groupby("n_shot")["novel_accuracy"].mean()
    assert by_n[5] > by_n[1] + 0.1
    summary = pd.read_csv(tmp_path / "results" / "tables" / "lowshot_summary.csv")
    published = summary[(summary["task"] == "digits") & (summary["method"] == "imprint")]
    assert published.set_index(["embedding_dim", "n_shot"])["paper_novel_accuracy"].to_dict() == {
        (8, 1): 0.2126,
        (8, 5): 0.3952,
        (32, 1): 0.2126,
        (32, 5): 0.3952,
    }
    assert summary.loc[summary["task"] == "transfer", "paper_novel_accuracy"].isna().all()
    assert (tmp_path / "results" / "figures" / "embedding_dim.png").stat().st_size > 10_000
