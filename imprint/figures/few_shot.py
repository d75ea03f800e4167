"""Few-shot imprinting: accuracy against the train samples per label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    best_norm,
    few_shot_series,
    panel_grid,
    per_class_samples,
    pyplot,
    task_series_plan,
)
from imprint.stats import GROUP

#: The few-shot figure's curves: k-means with these k, and GEN all ("k = n").
FEW_SHOT_K = (1, 5, 20)


def plot_few_shot(
    results: pd.DataFrame,
    nc1: pd.DataFrame,
    models: Sequence[str],
    series: Mapping[str, Sequence[str]],
    tasks: Mapping[str, Mapping[str, Any]],
) -> Any:
    """Accuracy against n (train samples per label) for k-means with k in FEW_SHOT_K and for
    GEN all ("k = n"), best NORM, AGG max; one panel per model and series. The task with all
    samples sits at its mean samples per label (from the NC1 table, which counts them)."""
    selected = results[(results["agg"] == "max") & results["model"].isin(models)]
    curves = best_norm(selected, [*GROUP, "gen", "k"])
    lines = [(f"k-means k={k}" + (" (= mean)" if k == 1 else ""), "kmeans", k) for k in FEW_SHOT_K]
    lines.append(("k = n (all)", "all", None))
    colours = pyplot().get_cmap("viridis")(np.linspace(0, 0.9, len(lines)))
    fig, axes = panel_grid(len(models), len(series), width=3.8)
    for col, (name, members) in enumerate(series.items()):
        n = {
            task: (
                tasks[task]["n_shot"]
                if tasks[task].get("n_shot", "all") != "all"
                else per_class_samples(nc1, task)
            )
            for task in members
        }
        for row, model in enumerate(models):
            ax = axes[row, col]
            panel = curves[(curves["model"] == model) & curves["task"].isin(members)]
            for (label, gen, k), colour in zip(lines, colours, strict=True):
                line = panel[
                    (panel["gen"] == gen) & (panel["k"].isna() if k is None else panel["k"] == k)
                ]
                if line.empty:
                    continue
                x = line["task"].map(n).astype(float)
                order = np.argsort(x.to_numpy())
                x, mean, std = (
                    x.to_numpy()[order],
                    line["mean"].to_numpy()[order],
                    line["std"].to_numpy()[order],
                )
                ax.plot(x, mean, marker="o", markersize=3, color=colour, label=label)
                ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
            ticks = sorted(n.values())
            ax.set_xscale("log")
            ax.set_xticks(
                ticks,
                [
                    str(int(t)) if tasks[task].get("n_shot", "all") != "all" else f"all\n(≈{t:.0f})"
                    for t, task in sorted(zip(n.values(), n.keys(), strict=True))
                ],
            )
            ax.minorticks_off()
            ax.set_title(f"{model} / {name}", fontsize=9)
            ax.set_xlabel("n (train samples per label)")
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(
        "Few-shot: accuracy (mean ± std over seeds) against n,\nbest NORM, AGG max", fontsize=10
    )
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where the config has tasks that differ only in n_shot (and GEN kmeans, AGG max)."""
    return task_series_plan(config, few_shot_series(config["tasks"]))


FIGURE = Figure(
    "few_shot",
    plot_few_shot,
    {"results": "imprinting", "nc1": "nc1"},
    """\
Few-shot imprinting: test accuracy against n, the train samples per task label, for k-means
with k = 1 (the class mean), 5 and 20, and for GEN all (k = n, every sample a proxy). With
fewer than k samples k-means keeps them all. AGG max, best NORM per point; means over seeds with
± one standard deviation bands. Series (tasks that differ only in n): {series}.
The point "all" sits at the mean train samples per label of the full task.""",
    plan,
)
