"""Imprinting from intermediate layers: accuracy and NC1 per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    draws_accuracy,
    full_data_tasks,
    l2_everywhere,
    panel_grid,
)

#: The imprinting methods the layers figure compares (L2 everywhere, AGG max): Qi et al.'s
#: mean, and the IMPRINT paper's k-means with k = 20 (or the largest k below it in the grid).
LAYER_METHODS = {"Qi et al.: mean": ("mean", None), "IMPRINT: k-means": ("kmeans", 20)}


_L2_MAX = {"norm_pre": "l2", "norm_post": "l2", "norm_inf": "l2", "agg": "max"}


def plot_layers(
    results: pd.DataFrame,
    nc1: pd.DataFrame,
    series: Mapping[str, Sequence[str]],
    layers: Mapping[str, str],
    tasks: Sequence[str],
) -> Any:
    """Per model with several layers (one row each): left, test accuracy per layer for
    :data:`LAYER_METHODS`; right, NC1 per layer. Each point is the mean over ``tasks`` of the
    per-task mean over seeds, with ± one standard deviation over tasks."""
    fig, axes = panel_grid(len(series), 2, width=4.2, height=3.0)
    chosen = results[results["task"].isin(tasks)]
    for column, level in _L2_MAX.items():
        chosen = chosen[chosen[column] == level]
    for row, (base, members) in enumerate(series.items()):
        x = np.arange(len(members))
        names = [layers[model] for model in members]
        ax = axes[row, 0]
        for label, (gen, k) in LAYER_METHODS.items():
            rows = chosen[chosen["gen"] == gen]
            if k is not None:
                available = sorted(int(v) for v in rows["k"].dropna().unique() if v <= k)
                if not available:
                    continue
                rows = rows[rows["k"] == available[-1]]
                label = f"{label} k={available[-1]}"
            per_task = rows.groupby(["model", "task"])["accuracy"].mean().groupby("model")
            stats = per_task.agg(["mean", "std"]).reindex(members).fillna({"std": 0.0})
            ax.errorbar(x, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=label)
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{base}: accuracy per layer", fontsize=9)
        ax.set_ylabel(f"test accuracy (mean over {len(tasks)} tasks)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        ax = axes[row, 1]
        per_task = (
            nc1[nc1["task"].isin(tasks)].groupby(["model", "task"])["nc1"].mean().groupby("model")
        )
        stats = per_task.agg(["mean", "std"]).reindex(members).fillna({"std": 0.0})
        ax.errorbar(x, stats["mean"], yerr=stats["std"], marker="o", capsize=3, color="black")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_title(f"{base}: NC1 per layer", fontsize=9)
        ax.set_ylabel("NC1 (mean over tasks)")
        ax.grid(alpha=0.3)
    fig.suptitle(
        "Imprinting from intermediate layers (L2, AGG max): accuracy and NC1 per layer", fontsize=10
    )
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn for models configured with a list of layers (``layer_of``), with GEN mean, L2
    among every NORM's levels and AGG max."""
    layered: dict[str, list[str]] = {}
    for name, spec in sorted(config["models"].items()):
        if "layer_of" in spec:
            layered.setdefault(spec["layer_of"], []).append(name)
    if not (layered and draws_accuracy(config, "mean") and l2_everywhere(config)):
        return None
    return {
        "series": {
            base: [m for m in config["models"] if m in names]  # config's layer order
            for base, names in layered.items()
        },
        "layers": {
            name: config["models"][name]["layer"] for names in layered.values() for name in names
        },
        "tasks": full_data_tasks(config),
    }


FIGURE = Figure(
    "layers",
    plot_layers,
    {"results": "imprinting", "nc1": "nc1"},
    """\
Imprinting from intermediate layers: for every model configured with a list of layers, test
accuracy per layer of Qi et al.'s imprinting (GEN mean) and of the IMPRINT paper's (GEN k-means
with k = 20, or the largest k below it in the grid), both with L2 NORM everywhere and AGG max,
and NC1 per layer. Points are means over the tasks ({tasks}) of the per-task mean over seeds,
bars ± one standard deviation over tasks.""",
    plan,
)
