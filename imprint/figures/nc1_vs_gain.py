"""NC1 against the gain of k-means over the mean."""

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
    pyplot,
)

#: The k whose gain over the mean the NC1-vs-gain figure shows, unless figures.nc1_vs_gain_k
#: says otherwise (those in the grid; else its largest k).
NC1_VS_GAIN_K = (5, 20)


def plot_nc1_vs_gain(table: pd.DataFrame, k: Sequence[int], tasks: Sequence[str]) -> Any:
    """One panel per k: NC1 (log scale) against the gain of k-means over the mean, one point per
    (model, task) of ``tasks``, with the Spearman correlation and its p-value in the panel
    title (the table is :func:`imprint.stats.nc1_vs_gain`'s)."""
    ks = [each for each in k if each in set(table["k"])]
    fig, axes = panel_grid(1, max(len(ks), 1), width=3.6, height=3.2)
    models = sorted(table["model"].unique())
    colours = dict(
        zip(models, pyplot().get_cmap("tab10")(np.arange(len(models)) % 10), strict=True)
    )
    for column, k in enumerate(ks):
        ax = axes[0, column]
        rows = table[table["k"] == k]
        for model in models:
            own = rows[rows["model"] == model]
            ax.scatter(own["nc1"], own["gain"], color=colours[model], label=model, s=18)
        rho, pvalue, n = rows[["spearman_rho", "spearman_pvalue", "n_points"]].iloc[0]
        ax.set_xscale("log")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(
            f"k-means k={k}\nSpearman ρ = {rho:.2f} (p = {pvalue:.2g}, n = {int(n)})", fontsize=8
        )
        ax.set_xlabel("NC1 (mean over seeds)")
        ax.set_ylabel("accuracy gain over the mean")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Does NC1 predict the gain of more proxies? {len(tasks)} tasks; L2 NORM, AGG max, "
        "median over seeds",
        fontsize=10,
    )
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn with GEN mean and kmeans, L2 among every NORM's levels and AGG max; k from
    ``figures.nc1_vs_gain_k`` (default :data:`NC1_VS_GAIN_K`) that the grid has, else its
    largest k."""
    if not (draws_accuracy(config, "kmeans", "mean") and l2_everywhere(config)):
        return None
    grid_k = config["imprinting"]["k"]
    wanted = config.get("figures", {}).get("nc1_vs_gain_k") or NC1_VS_GAIN_K
    k_values = [k for k in wanted if k in grid_k] or [max(grid_k)]
    return {"k": k_values, "tasks": full_data_tasks(config)}


FIGURE = Figure(
    "nc1_vs_gain",
    plot_nc1_vs_gain,
    {"table": "nc1_vs_gain"},
    """\
The IMPRINT paper's central explanatory claim, tested on this run: per FM and task, NC1 (the
textbook measure, mean over seeds) against the accuracy gain of k-means proxies over one mean
per class (both with L2 NORM everywhere and AGG max, median over seeds), one panel per k
({k}). If the claim held, the points would rise to the right (tasks whose classes are less
collapsed gain more from more proxies) and Spearman's ρ, in each panel's title with its
p-value, would be clearly positive. The numbers are in results/tables/nc1_vs_gain.csv.""",
    plan,
)
