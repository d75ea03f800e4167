"""Choosing an imprinting configuration without looking at the test split.

A study ranks configurations by test accuracy; quoting the best of them is optimistic by
construction (the maximum of many noisy estimates of the same data). Here a configuration is
chosen on held-out *training* data: stratified k-fold (or one stratified validation fraction),
the grid engine scoring every configuration of a fold in one pass (:func:`imprint.grid.run_grid`).
The chosen configuration is then refit on the whole training split and scored once on the test
split, which is exactly the grid's row for it on (train, test): the grid's accuracies equal
:class:`imprint.ImprintingClassifier`'s fit on the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imprint.grid import FACTORS, Grid, run_grid

SELECTION_METHODS = ("cv", "holdout")
#: Columns of a selection table (one row per (model, task, seed)), after model, task, seed.
SELECTION_COLUMNS = (
    "selected_by",
    "n_folds",
    *FACTORS,
    "validation_accuracy",
    "test_accuracy",
    "best_test_accuracy",
    "optimism",
)
#: The configuration taken where nothing can be held out (a class with one training sample):
#: Qi et al.'s imprinting, ImprintingClassifier's default.
FALLBACK = {"gen": "mean", "norm_pre": "l2", "norm_post": "l2", "norm_inf": "l2", "agg": "max"}


@dataclass(frozen=True)
class SelectionSpec:
    """How configurations are validated: ``cv`` (stratified ``folds``-fold, fewer where a class
    has fewer samples) or ``holdout`` (one stratified ``validation_fraction``)."""

    method: str = "cv"
    folds: int = 5
    validation_fraction: float = 0.2

    def __post_init__(self):
        if self.method not in SELECTION_METHODS:
            raise ValueError(
                f"unknown selection {self.method!r}; expected one of {SELECTION_METHODS}"
            )
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.folds}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SelectionSpec:
        return cls(section["method"], section["folds"], section["validation_fraction"])


@dataclass(frozen=True)
class Selection:
    """The chosen configuration (``FACTORS`` -> level; k and m None where they do not apply),
    its mean validation accuracy, how it was chosen, and every configuration's validation
    scores (``table``; empty where nothing could be held out)."""

    configuration: dict[str, Any]
    validation_accuracy: float
    selected_by: str
    n_folds: int
    table: pd.DataFrame

    def classifier_params(self) -> dict[str, Any]:
        return classifier_params(self.configuration)


def classifier_params(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A configuration as :class:`imprint.ImprintingClassifier` parameters (k and m, which the
    classifier ignores where they do not apply, at 1 there)."""
    params = {key: value for key, value in configuration.items() if value is not None}
    return {"k": 1, "m": 1, **params}


def validation_splits(
    y: np.ndarray, spec: SelectionSpec, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs, stratified so that every class is in every training
    part; none where a class has fewer than 2 samples."""
    from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        return []
    if spec.method == "cv":
        splitter = StratifiedKFold(min(spec.folds, smallest), shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), y))
    n_classes = int(y.max()) + 1
    # at least one validation sample per class, and one training sample left in each
    size = min(max(spec.validation_fraction, n_classes / len(y)), 1 - n_classes / len(y))
    if size <= 0 or round(size * len(y)) < n_classes:
        return []
    splitter = StratifiedShuffleSplit(1, test_size=size, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def select_configuration(
    x: np.ndarray, y: np.ndarray, grid: Grid, seed: int, spec: SelectionSpec = SelectionSpec()
) -> Selection:
    """The configuration of ``grid`` with the best mean validation accuracy on ``(x, y)``
    (labels 0..C-1). Ties go to fewer proxies (cheaper, and less fitted to the folds), then to
    the grid's order. Where no split is possible (a class with a single sample) the
    :data:`FALLBACK` configuration is taken if the grid has it, else the grid's first."""
    y = np.asarray(y)
    splits = validation_splits(y, spec, seed)
    if not splits:
        return _fallback(grid)
    folds = []
    for fold, (train, validation) in enumerate(splits):
        results, _ = run_grid(x[train], y[train], x[validation], y[validation], grid, seed)
        folds.append(results.assign(fold=fold, order=np.arange(len(results))))
    every = pd.concat(folds, ignore_index=True)
    table = (
        every.groupby(list(FACTORS), dropna=False, sort=False)
        .agg(
            order=("order", "first"),
            n_proxies=("n_proxies", "mean"),
            validation_accuracy=("accuracy", "mean"),
            validation_std=("accuracy", "std"),
        )
        .reset_index()
        .sort_values("order", kind="stable")
        .drop(columns="order")
        .reset_index(drop=True)
    )
    best = table.sort_values(
        ["validation_accuracy", "n_proxies"], ascending=[False, True], kind="stable"
    ).iloc[0]
    return Selection(
        configuration=configuration_of(best),
        validation_accuracy=float(best["validation_accuracy"]),
        selected_by="holdout" if spec.method == "holdout" else f"cv{len(splits)}",
        n_folds=len(splits),
        table=table,
    )


def configuration_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration (``FACTORS`` -> level, None where a factor does not apply) of a
    results or selection row, as plain Python values."""
    return {
        key: None if pd.isna(row[key]) else int(row[key]) if key in ("k", "m") else str(row[key])
        for key in FACTORS
    }


def _fallback(grid: Grid) -> Selection:
    rows = [dict(zip(FACTORS, levels, strict=True)) for levels in grid.configurations()]
    chosen = next(
        (row for row in rows if all(row[key] == value for key, value in FALLBACK.items())),
        rows[0],
    )
    return Selection(chosen, float("nan"), "fallback", 0, pd.DataFrame())


def matching_row(results: pd.DataFrame, configuration: Mapping[str, Any]) -> pd.Series:
    """The row of a grid's results for ``configuration``."""
    mask = np.ones(len(results), dtype=bool)
    for key in FACTORS:
        value = configuration[key]
        column = results[key]
        same = column.isna() if value is None else column.eq(value).fillna(False)
        mask &= same.to_numpy(dtype=bool)
    rows = results[mask]
    if len(rows) != 1:
        raise ValueError(f"{len(rows)} rows of the results match {dict(configuration)}")
    return rows.iloc[0]


def selection_row(selection: Selection, results: pd.DataFrame) -> dict[str, Any]:
    """One row of the selection table: the chosen configuration, its validation accuracy, its
    honest test accuracy (its row of ``results``, the grid on the whole train and the test
    split), the best test accuracy of any configuration and the difference (the optimism of
    choosing on the test split)."""
    test = float(matching_row(results, selection.configuration)["accuracy"])
    best = float(results["accuracy"].max())
    return {
        "selected_by": selection.selected_by,
        "n_folds": selection.n_folds,
        **selection.configuration,
        "validation_accuracy": selection.validation_accuracy,
        "test_accuracy": test,
        "best_test_accuracy": best,
        "optimism": best - test,
    }


def selection_summary(selection: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task), over seeds: the mean (and std) validation accuracy of the chosen
    configurations, their mean honest test accuracy, the mean best test accuracy of any
    configuration, and the optimism of choosing on the test split (their difference)."""
    return (
        selection.groupby(["model", "task"], sort=True)
        .agg(
            n_seeds=("seed", "size"),
            validation_accuracy=("validation_accuracy", "mean"),
            test_accuracy=("test_accuracy", "mean"),
            test_accuracy_std=("test_accuracy", "std"),
            best_test_accuracy=("best_test_accuracy", "mean"),
            optimism=("optimism", "mean"),
            optimism_std=("optimism", "std"),
        )
        .reset_index()
    )
