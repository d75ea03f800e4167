"""The "d in 1" figure: accuracy against k per d, and NC1 against d."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    best_norm,
    d_in_1_series,
    k_axis,
    panel_grid,
    pyplot,
    task_series_plan,
)
from imprint.stats import GROUP


def plot_d_in_1(
    results: pd.DataFrame,
    nc1: pd.DataFrame,
    models: Sequence[str],
    series: Mapping[str, Sequence[str]],
    tasks: Mapping[str, Mapping[str, Any]],
) -> Any:
    """Per model and "d in 1" series: accuracy against k for k-means (best NORM, AGG max), one
    line per d with a dotted marker at k = d; alongside, NC1 against d."""
    plt = pyplot()
    selected = results[
        (results["agg"] == "max") & (results["gen"] == "kmeans") & results["model"].isin(models)
    ]
    if selected.empty:
        raise ValueError("the d-in-1 figure needs GEN kmeans with AGG max in the grid")
    curves = best_norm(selected, [*GROUP, "k"])
    ks = sorted(int(k) for k in curves["k"].dropna().unique())
    rows = [(model, name, members) for model in models for name, members in series.items()]
    fig, axes = panel_grid(len(rows), 2, width=4.2, height=2.9)
    for row, (model, name, members) in enumerate(rows):
        ds = {task: tasks[task]["d_in_1"] for task in members}
        colours = plt.get_cmap("plasma")(np.linspace(0, 0.85, len(members)))
        nc1_rows = nc1[(nc1["model"] == model) & nc1["task"].isin(members)]
        nc1_by_task = nc1_rows.groupby("task")["nc1"].agg(["mean", "std"]).fillna(0.0)
        ax = axes[row, 0]
        for task, colour in zip(members, colours, strict=True):
            line = curves[(curves["model"] == model) & (curves["task"] == task)].sort_values("k")
            if line.empty:
                continue
            label = f"d={ds[task]}"
            if task in nc1_by_task.index:
                label += f" (NC1 {nc1_by_task.loc[task, 'mean']:.2g})"
            k = line["k"].astype(float)
            ax.plot(k, line["mean"], marker="o", markersize=3, color=colour, label=label)
            ax.fill_between(
                k,
                line["mean"] - line["std"],
                line["mean"] + line["std"],
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
            ax.axvline(ds[task], color=colour, linestyle=":", linewidth=1)
        k_axis(ax, ks)
        ax.set_title(f"{model} / {name}: accuracy vs k (dotted: k = d)", fontsize=9)
        ax.set_xlabel("k (k-means proxies per label)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

        ax = axes[row, 1]
        d = [ds[task] for task in members if task in nc1_by_task.index]
        values = nc1_by_task.reindex([task for task in members if task in nc1_by_task.index])
        ax.errorbar(d, values["mean"], yerr=values["std"], marker="o", capsize=3)
        ax.set_xticks(sorted(set(d)))
        ax.set_title(f"{model} / {name}: NC1 vs d", fontsize=9)
        ax.set_xlabel("d (classes merged into one label)")
        ax.set_ylabel("NC1 (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    fig.suptitle('"d in 1" tasks: accuracy against k (dotted: k = d), NC1 against d', fontsize=10)
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where the config has "d in 1" tasks that differ only in d (and GEN kmeans, AGG
    max)."""
    return task_series_plan(config, d_in_1_series(config["tasks"]))


FIGURE = Figure(
    "d_in_1",
    plot_d_in_1,
    {"results": "imprinting", "nc1": "nc1"},
    """\
"d in 1" tasks, where each task label merges d original classes: left, test accuracy against k
for GEN k-means (AGG max, best NORM per point; mean ± std over seeds), one line per d, with a
dotted line at k = d, the number of modes per label (beyond it, more proxies should add
little); the legend gives each task's NC1. Right, NC1 against d (mean ± std over seeds).
Series: {series}.""",
    plan,
)
