"""Model selection without the test split (imprint.selection)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, train_test_split

from imprint import ImprintingClassifier
from imprint.grid import Grid, run_grid
from imprint.selection import (
    SelectionSpec,
    configuration_of,
    select_configuration,
    selection_row,
    selection_summary,
    validation_splits,
)


def two_modes(seed=0, n=60):
    """Two classes, each two well-separated blobs on opposite sides: a class mean lies
    between its blobs (near the other class's), so k-means with k = 2 wins clearly."""
    rng = np.random.default_rng(seed)
    centres = {0: [(4, 0), (-4, 0)], 1: [(0, 4), (0, -4)]}
    x, y = [], []
    for label, modes in centres.items():
        for centre in modes:
            x.append(rng.normal(centre, 0.5, size=(n, 2)))
            y += [label] * n
    return np.concatenate(x), np.asarray(y)


GRID = Grid(
    gen=["mean", "kmeans"], k=[1, 2], norm_pre=["none"], norm_post=["none"], norm_inf=["none"]
)


def test_the_configuration_that_wins_on_held_out_training_data_is_chosen():
    x, y = two_modes()
    chosen = select_configuration(x, y, GRID, seed=0)
    assert chosen.configuration == {
        "gen": "kmeans",
        "k": 2,
        "norm_pre": "none",
        "norm_post": "none",
        "norm_inf": "none",
        "agg": "max",
        "m": None,
    }
    assert chosen.selected_by == "cv5" and chosen.n_folds == 5
    assert chosen.validation_accuracy > 0.95
    # m as the classifier takes it: 1 (unused) for AGG max
    assert chosen.classifier_params() == {**chosen.configuration, "m": 1}


def test_validation_accuracy_is_the_mean_over_folds_of_the_classifiers_accuracy():
    x, y = two_modes(seed=1, n=20)
    chosen = select_configuration(x, y, GRID, seed=3)
    folds = StratifiedKFold(5, shuffle=True, random_state=3).split(x, y)
    by_hand = {}
    for train, validation in folds:
        for params in ({"gen": "mean"}, {"gen": "kmeans", "k": 1}, {"gen": "kmeans", "k": 2}):
            clf = ImprintingClassifier(
                **params, norm_pre="none", norm_post="none", norm_inf="none", random_state=3
            ).fit(x[train], y[train])
            by_hand.setdefault(tuple(params.values()), []).append(
                clf.score(x[validation], y[validation])
            )
    table = chosen.table.set_index(["gen", "k"])
    assert table.loc[("mean", pd.NA), "validation_accuracy"] == pytest.approx(
        np.mean(by_hand[("mean",)])
    )
    for k in (1, 2):
        assert table.loc[("kmeans", k), "validation_accuracy"] == pytest.approx(
            np.mean(by_hand[("kmeans", k)])
        )


def test_ties_go_to_fewer_proxies_then_to_the_grid_order():
    x, y = two_modes(n=30)
    x = x + np.where(y[:, None] == 0, 100.0, -100.0)  # every configuration is perfect
    grid = Grid(
        gen=["all", "kmeans", "mean"],
        k=[2],
        norm_pre=["none"],
        norm_post=["none"],
        norm_inf=["none"],
    )
    assert select_configuration(x, y, grid, seed=0).configuration["gen"] == "mean"
    grid = Grid(
        gen=["kmeans", "random"], k=[2], norm_pre=["none"], norm_post=["none"], norm_inf=["none"]
    )
    assert select_configuration(x, y, grid, seed=0).configuration["gen"] == "kmeans"


def test_folds_shrink_to_the_smallest_class_and_one_sample_falls_back():
    y = np.asarray([0] * 3 + [1] * 10)
    splits = validation_splits(y, SelectionSpec(folds=5), seed=0)
    assert len(splits) == 3
    for train, _ in splits:
        assert set(y[train]) == {0, 1}
    x = np.random.default_rng(0).normal(size=(4, 3))
    grid = Grid(gen=["all", "mean"], norm_pre=["none", "l2"])
    chosen = select_configuration(x, np.asarray([0, 1, 2, 3]), grid, seed=0)
    assert chosen.selected_by == "fallback" and np.isnan(chosen.validation_accuracy)
    assert chosen.configuration["gen"] == "mean" and chosen.configuration["norm_pre"] == "l2"
    without = Grid(gen=["all"], norm_pre=["none"])
    assert select_configuration(x, np.arange(4), without, 0).configuration["gen"] == "all"


def test_a_holdout_split_keeps_every_class_on_both_sides():
    y = np.repeat([0, 1, 2], [5, 20, 40])
    ((train, validation),) = validation_splits(
        y, SelectionSpec("holdout", validation_fraction=0.1), 0
    )
    assert set(y[train]) == set(y[validation]) == {0, 1, 2}
    assert len(validation) == pytest.approx(0.1 * len(y), abs=1)


@pytest.mark.parametrize("bad", [{"method": "loo"}, {"folds": 1}, {"validation_fraction": 1.0}])
def test_bad_selection_settings_are_refused(bad):
    with pytest.raises(ValueError):
        SelectionSpec(**bad)


def test_the_selection_row_reports_the_honest_test_accuracy_and_the_optimism():
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, random_state=0, stratify=y
    )
    grid = Grid(
        gen=["mean", "kmeans", "fps"], k=[1, 5], norm_pre=["none", "l2"], norm_post=["none", "l2"]
    )
    results, _ = run_grid(x_train, y_train, x_test, y_test, grid, seed=0)
    chosen = select_configuration(x_train, y_train, grid, seed=0)
    row = selection_row(chosen, results)
    refit = ImprintingClassifier(**chosen.classifier_params(), random_state=0).fit(x_train, y_train)
    assert row["test_accuracy"] == refit.score(x_test, y_test)
    assert row["best_test_accuracy"] == results["accuracy"].max()
    assert row["optimism"] == row["best_test_accuracy"] - row["test_accuracy"] >= 0
    assert configuration_of(pd.Series(row)) == chosen.configuration
    table = pd.DataFrame(
        [
            {"model": "m", "task": "t", "seed": s, **row, "optimism": o}
            for s, o in [(0, 0.1), (1, 0.3)]
        ]
    )
    summary = selection_summary(table)
    assert summary.loc[0, "optimism"] == pytest.approx(0.2) and summary.loc[0, "n_seeds"] == 2
