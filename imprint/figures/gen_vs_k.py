"""The IMPRINT paper's "GEN vs k" plot: accuracy against k for every GEN method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from imprint.figures.common import (
    Figure,
    best_norm,
    draws_accuracy,
    gen_colours,
    k_axis,
    panel_grid,
    plain_tasks,
    planned_models,
)
from imprint.gen import GEN_METHODS
from imprint.stats import GROUP


def plot_gen_vs_k(results: pd.DataFrame, models: Sequence[str], tasks: Sequence[str]) -> Any:
    """Accuracy against k for every GEN method (best NORM, AGG max), one panel per model and
    task; methods without k (all, mean, ls) as horizontal lines."""
    selected = results[
        (results["agg"] == "max") & results["model"].isin(models) & results["task"].isin(tasks)
    ]
    if selected.empty:
        raise ValueError("no AGG max results for the models and tasks of the GEN vs k figure")
    curves = best_norm(selected, [*GROUP, "gen", "k"])
    gens = [gen for gen in GEN_METHODS if gen in set(curves["gen"])]
    colours = gen_colours(gens)
    ks = sorted(curves["k"].dropna().unique())
    fig, axes = panel_grid(len(models), len(tasks))
    for row, model in enumerate(models):
        for col, task in enumerate(tasks):
            ax = axes[row, col]
            panel = curves[(curves["model"] == model) & (curves["task"] == task)]
            for gen in gens:
                line = panel[panel["gen"] == gen].sort_values("k")
                if line.empty:
                    continue
                if line["k"].isna().all():  # no k: the same value at every k
                    mean, std = float(line["mean"].iloc[0]), float(line["std"].iloc[0])
                    ax.axhline(mean, color=colours[gen], linestyle="--", linewidth=1.2, label=gen)
                    ax.axhspan(mean - std, mean + std, color=colours[gen], alpha=0.12)
                else:
                    k = line["k"].astype(float)
                    ax.plot(
                        k, line["mean"], marker="o", markersize=3, color=colours[gen], label=gen
                    )
                    ax.fill_between(
                        k,
                        line["mean"] - line["std"],
                        line["mean"] + line["std"],
                        color=colours[gen],
                        alpha=0.15,
                        linewidth=0,
                    )
            if ks:
                k_axis(ax, [int(k) for k in ks])
            ax.set_title(f"{model} / {task}", fontsize=9)
            ax.set_xlabel("k (proxies per class)")
            ax.set_ylabel("test accuracy")
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=min(len(labels), 3 * len(tasks)),
        fontsize=8,
        title="GEN (dashed: no k)",
        title_fontsize=8,
    )
    fig.suptitle(
        "GEN vs k: accuracy (mean ± std over seeds), best NORM per point, AGG max", fontsize=10
    )
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn with AGG max; panels: ``figures.models`` × ``figures.gen_vs_k_tasks`` (default:
    every task without n_shot or d_in_1)."""
    if not draws_accuracy(config):
        return None
    tasks = config.get("figures", {}).get("gen_vs_k_tasks") or plain_tasks(config)
    return {"models": planned_models(config), "tasks": tasks}


FIGURE = Figure(
    "gen_vs_k",
    plot_gen_vs_k,
    {"results": "imprinting"},
    """\
The paper's "GEN vs k" plot: test accuracy against k (proxies per class) for every GEN method,
one panel per FM and task ({tasks}). AGG is max; at each point the NORM combination with the
best mean test accuracy is taken (the paper's "best NORM", chosen on the test split, so
optimistic by construction). Lines are means over seeds, bands ± one standard deviation;
methods without k (all, mean, ls) are dashed horizontal lines.""",
    plan,
)
