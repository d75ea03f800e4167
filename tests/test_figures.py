import itertools

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import yaml

from imprint.config import validate_config
from imprint.figures import (
    FIGURES,
    best_norm,
    d_in_1_series,
    few_shot_series,
    figure_plan,
    save_figure,
)
from imprint.selection import selection_summary
from imprint.stats import gen_time_summary, lowshot_summary, nc1_vs_gain
from tests.conftest import REPO, SCHEMA

TASKS = {
    "full": {"dataset": "d", "classes": [5, 6, 7]},
    "full_5shot": {"dataset": "d", "classes": [5, 6, 7], "n_shot": 5},
    "full_1shot": {"dataset": "d", "classes": [5, 6, 7], "n_shot": 1},
    "other": {"dataset": "d", "classes": [1, 2]},
    "1in1": {"dataset": "d", "d_in_1": 1, "n_labels": 2},
    "3in1": {"dataset": "d", "d_in_1": 3, "n_labels": 2},
    "2in1": {"dataset": "d", "d_in_1": 2, "n_labels": 2},
    "lonely_2in1": {"dataset": "d", "d_in_1": 2, "n_labels": 3},
}


def test_few_shot_series_group_tasks_that_differ_only_in_n():
    assert few_shot_series(TASKS) == {"full": ["full_1shot", "full_5shot", "full"]}
    without_full = {name: spec for name, spec in TASKS.items() if name != "full"}
    assert list(few_shot_series(without_full).values()) == [["full_1shot", "full_5shot"]]


def test_d_in_1_series_group_tasks_that_differ_only_in_d():
    assert d_in_1_series(TASKS) == {"d, 2 labels": ["1in1", "2in1", "3in1"]}


def shipped(path):
    config = yaml.safe_load((REPO / path).read_text())
    validate_config(config, SCHEMA)
    return config


def test_the_offline_default_draws_every_figure():
    plan = figure_plan(shipped("config.yaml"))
    # no model with several layers there, nor an embedding-dimension study (Qi et al.'s Fig. 7)
    assert set(plan) == set(FIGURES) - {"layers", "embedding_dim"}
    assert plan["few_shot"]["series"] == {
        "novel": ["novel_1shot", "novel_5shot", "novel_20shot", "novel"]
    }
    assert plan["d_in_1"]["series"] == {"digits, 2 labels": ["1in1", "2in1", "5in1"]}
    assert plan["gen_vs_k"] == {"models": ["cnn", "pixels"], "tasks": ["all", "base", "novel"]}
    assert "novel_5shot" not in plan["nc1"]["tasks"]  # NC1 is that of 'novel'


def test_the_paper_config_draws_the_papers_series():
    plan = figure_plan(shipped("configs/paper.yaml"))
    assert len(plan["d_in_1"]["series"]["imagenet, 10 labels"]) == 10
    assert plan["few_shot"]["series"]["cifar10_all"][-1] == "cifar10_all"
    assert len(plan["few_shot"]["series"]) == 3


def test_figures_that_need_agg_max_or_kmeans_are_left_out_without_them():
    config = shipped("config.yaml")
    lowshot = {"lowshot", "finetune_curves"}  # they read the low-shot tables, not the grid
    always = {"nc1", "gen_time", "selection_optimism", *lowshot}  # none reads AGG max or k-means
    config["imprinting"]["gen"] = ["mean", "ls"]
    assert set(figure_plan(config)) == {"gen_vs_k", *always}
    config["imprinting"]["agg"] = ["mnn"]
    assert set(figure_plan(config)) == always


def test_the_selection_figure_is_planned_where_the_config_selects():
    config = shipped("config.yaml")
    assert figure_plan(config)["selection_optimism"] == {
        "selection": "stratified 5-fold cross-validation"
    }
    config["selection"].update(method="holdout", validation_fraction=0.25)
    assert figure_plan(config)["selection_optimism"] == {
        "selection": "a stratified 0.25 validation split"
    }
    config["selection"]["method"] = "none"
    assert "selection_optimism" not in figure_plan(config)


def test_the_lowshot_figures_are_planned_for_lowshot_tasks_and_curves_for_trained_methods():
    config = shipped("config.yaml")
    config["lowshot"]["methods"] = ["rand_noft", "imprint"]
    assert "lowshot" in figure_plan(config) and "finetune_curves" not in figure_plan(config)
    config["lowshot"]["tasks"] = {}
    assert not {"lowshot", "finetune_curves"} & set(figure_plan(config))


def test_best_norm_picks_the_best_mean_and_reports_its_spread():
    rows = []
    for seed, (none_acc, l2_acc) in enumerate([(0.5, 0.6), (0.9, 0.7)]):  # means 0.7 vs 0.65
        for norm_post, accuracy in [("none", none_acc), ("l2", l2_acc)]:
            rows.append(
                dict(
                    model="m",
                    task="t",
                    seed=seed,
                    gen="mean",
                    k=pd.NA,
                    norm_pre="l2",
                    norm_post=norm_post,
                    norm_inf="l2",
                    accuracy=accuracy,
                )
            )
    best = best_norm(pd.DataFrame(rows).astype({"k": "Int64"}), ["model", "task", "gen", "k"])
    assert len(best) == 1
    row = best.iloc[0]
    assert row["norm_post"] == "none" and row["mean"] == pytest.approx(0.7)
    assert row["std"] == pytest.approx(np.std([0.5, 0.9], ddof=1)) and row["n_seeds"] == 2


def synthetic_tables():
    rng = np.random.default_rng(0)
    rows = []
    proxies = [
        ("all", pd.NA),
        ("mean", pd.NA),
        ("ls", pd.NA),
        *[("kmeans", k) for k in (1, 5, 20)],
        *[("fps", k) for k in (1, 5, 20)],
    ]
    for model, task, seed, (gen, k), norm_post, agg in itertools.product(
        ["m1", "m2"], TASKS, [0, 1], proxies, ["none", "l2"], ["max", "mnn"]
    ):
        rows.append(
            dict(
                model=model,
                task=task,
                seed=seed,
                gen=gen,
                k=k,
                norm_pre="l2",
                norm_post=norm_post,
                norm_inf="l2",
                agg=agg,
                m=1 if agg == "mnn" else pd.NA,
                n_proxies=3,
                accuracy=rng.uniform(0.3, 1.0),
            )
        )
    results = pd.DataFrame(rows).astype({"k": "Int64", "m": "Int64"})
    nc1 = pd.DataFrame(
        [
            dict(
                model=model,
                task=task,
                seed=seed,
                nc1=rng.uniform(0.1, 5),
                n_labels=2,
                n_samples=180,
            )
            for model, task, seed in itertools.product(["m1", "m2"], TASKS, [0, 1])
        ]
    )
    timing = (
        results[results["norm_post"] == "none"]
        .drop_duplicates(["model", "task", "seed", "gen", "k", "norm_pre"])[
            ["model", "task", "seed", "gen", "k", "norm_pre", "n_proxies"]
        ]
        .assign(gen_time_s=lambda frame: rng.uniform(1e-4, 1e-1, len(frame)))
    )
    table = nc1_vs_gain(results, nc1, [5, 20], list(TASKS))
    lowshot = synthetic_lowshot(rng)
    return {
        "results": results,
        "nc1": nc1,
        "summary": gen_time_summary(timing),
        "table": table,
        "lowshot": lowshot,
        "lowshot_summary": lowshot_summary(lowshot),
        "selection_summary": selection_summary(
            pd.DataFrame(
                [
                    {
                        "model": model,
                        "task": task,
                        "seed": seed,
                        "validation_accuracy": rng.uniform(0.7, 1),
                        "test_accuracy": (test := rng.uniform(0.5, 0.95)),
                        "best_test_accuracy": test + (gap := rng.uniform(0, 0.05)),
                        "optimism": gap,
                    }
                    for model, task, seed in itertools.product(["m1", "m2"], TASKS, [0, 1])
                ]
            )
        ),
    }


def synthetic_lowshot(rng):
    rows = []
    for seed, n, method, dim in itertools.product(
        [0, 1], [1, 5], ["imprint", "rand_ft", "imprint_ft"], [16, 64]
    ):
        epochs = [pd.NA] if method == "imprint" else [0, 1, 2]
        for epoch in epochs:
            novel, overall = rng.uniform(0.2, 0.9, 2)
            rows.append(
                dict(
                    model="m1",
                    task="t",
                    seed=seed,
                    scope="head",
                    init="mean",
                    embedding_dim=dim,
                    n_shot=n,
                    method=method,
                    epoch=epoch,
                    novel_accuracy=novel,
                    all_accuracy=overall,
                )
            )
    return pd.DataFrame(rows).astype({"epoch": "Int64", "embedding_dim": "Int64"})


@pytest.mark.parametrize("figure", sorted(FIGURES))
def test_every_figure_is_written_as_a_valid_pdf_and_png(figure, tmp_path):
    config = {
        "tasks": TASKS,
        # two layers of one network, so that the layers figure is planned too
        "models": {
            "m1": {"layer_of": "net", "layer": "block1"},
            "m2": {"layer_of": "net", "layer": "block2"},
        },
        "imprinting": {
            "gen": ["all", "mean", "ls", "kmeans", "fps"],
            "k": [1, 5, 20],
            "agg": ["max", "mnn"],
            "norm_pre": ["l2"],
            "norm_post": ["none", "l2"],
            "norm_inf": ["l2"],
        },
        # two embedding layers, so that the embedding-dimension figure is planned too
        "lowshot": {
            "tasks": {"t": {"n_shot": [1, 5]}},
            "methods": ["imprint", "rand_ft", "imprint_ft"],
            "embedding_dim": [16, 64],
        },
        "selection": {"method": "cv", "folds": 5, "validation_fraction": 0.2},
    }
    options = figure_plan(config)[figure]
    plot, tables = FIGURES[figure].plot, FIGURES[figure].tables
    available = synthetic_tables()
    fig = plot(**{argument: available[argument] for argument in tables}, **options)
    pdf, png = tmp_path / f"{figure}.pdf", tmp_path / f"{figure}.png"
    save_figure(fig, str(pdf), str(png))
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([pdf.name, png.name])


def test_equal_figures_give_equal_pdf_files(tmp_path):
    tables = synthetic_tables()
    for name in ("a", "b"):
        fig = FIGURES["nc1"].plot(nc1=tables["nc1"], models=["m1", "m2"], tasks=["full", "other"])
        save_figure(fig, str(tmp_path / f"{name}.pdf"), str(tmp_path / f"{name}.png"))
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_the_layers_figure_is_planned_for_models_with_several_layers():
    config = shipped("config.yaml")
    config["models"]["r18"] = {
        "source": "torchvision",
        "name": "resnet18",
        "weights": None,
        "layer": ["layer2", "layer3", "layer4"],
    }
    validate_config(config, SCHEMA)
    plan = figure_plan(config)["layers"]
    assert plan["series"] == {"r18": ["r18-layer2", "r18-layer3", "r18-layer4"]}
    assert plan["layers"]["r18-layer3"] == "layer3"
