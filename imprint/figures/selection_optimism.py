"""Model selection without the test split: the optimism of choosing on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    pyplot,
)


def plot_selection_optimism(selection_summary: pd.DataFrame, selection: str = "") -> Any:
    """Per model and task: the honest test accuracy of the configuration chosen on held-out
    training data (by ``selection``, named in the legend) against the best test accuracy of any
    configuration (means over seeds); the gap is the optimism of choosing on the test split."""
    plt = pyplot()
    summary = selection_summary
    models = list(dict.fromkeys(summary["model"]))
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = plt.subplots(
        len(models),
        1,
        figsize=(max(5.0, 0.8 * len(tasks) + 2), 2.6 * len(models)),
        layout="constrained",
        squeeze=False,
    )
    x = np.arange(len(tasks))
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = summary[summary["model"] == model].set_index("task").reindex(tasks)
        ax.bar(
            x - 0.2, rows["best_test_accuracy"], 0.4, label="best on the test split", color="0.7"
        )
        ax.bar(
            x + 0.2,
            rows["test_accuracy"],
            0.4,
            yerr=rows["test_accuracy_std"].fillna(0),
            capsize=2,
            label=f"chosen on training data{f' by {selection}' if selection else ''} (honest)",
            color="tab:blue",
        )
        for position, gap in zip(x, rows["optimism"], strict=True):
            if pd.notna(gap):
                ax.annotate(f"+{gap:.3f}", (position, 1.0), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, tasks, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{model}: optimism of choosing on the test split (+gap)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7)
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where the config selects a configuration (``selection.method``)."""
    selection = config.get("selection", {})
    if selection.get("method", "none") == "none":
        return None
    return {
        "selection": (
            f"stratified {selection['folds']}-fold cross-validation"
            if selection["method"] == "cv"
            else f"a stratified {selection['validation_fraction']:g} validation split"
        )
    }


FIGURE = Figure(
    "selection_optimism",
    plot_selection_optimism,
    {"selection_summary": "selection_summary"},
    """\
Model selection without the test split: per FM and task, grey bars are the best test accuracy
of any configuration of the grid (what reading the winner off the results table gives: the
maximum of many noisy estimates, optimistic by construction); blue bars the test accuracy of
the configuration chosen on held-out training data ({selection}), refit on the whole training
split and scored once on the test split (means over seeds, ± one standard deviation). The
number above each pair is the gap, the optimism of choosing on the test split
(results/tables/selection_summary.csv).""",
    plan,
)
