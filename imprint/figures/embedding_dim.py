"""Qi et al.'s Fig. 7: accuracy against the embedding layer's dimension."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from imprint.figures.common import (
    LOWSHOT_LABELS,
    LOWSHOT_METRICS,
    Figure,
    legend_below,
    lowshot_colours,
    lowshot_tasks,
    panel_grid,
)
from imprint.lowshot import embedding_dims

#: The embedding-dimension figure's curves (Qi et al.'s Fig. 7): these methods at these n
#: (those the config runs; else its smallest n).
EMBEDDING_DIM_METHODS = ("imprint", "all_class_joint")


EMBEDDING_DIM_N_SHOT = (1, 5)


def plot_embedding_dim(
    lowshot_summary: pd.DataFrame, n_shot: Sequence[int], methods: Sequence[str]
) -> Any:
    """Qi et al.'s Fig. 7: accuracy against the embedding layer's dimension D for ``methods``
    (Imprinting and AllClassJoint) at each n of ``n_shot`` (1 and 5), novel classes (left) and
    all classes (right), one row per (model, low-shot task); means over seeds, ± one standard
    deviation, final epoch of the trained methods."""
    selected = lowshot_summary[
        lowshot_summary["embedding_dim"].notna()
        & lowshot_summary["method"].isin(methods)
        & lowshot_summary["n_shot"].isin(n_shot)
    ]
    groups = list(selected.groupby(["model", "task", "scope", "init"], sort=True))
    fig, axes = panel_grid(max(len(groups), 1), 2, width=3.8, height=2.9)
    colours = lowshot_colours()
    styles = ["-", "--", ":", "-."]
    for row, ((model, task, scope, init), rows) in enumerate(groups):
        dims = sorted(int(d) for d in rows["embedding_dim"].unique())
        for column, (metric, label) in enumerate(LOWSHOT_METRICS.items()):
            ax = axes[row, column]
            for method in [m for m in LOWSHOT_LABELS if m in methods]:
                for i, n in enumerate(sorted(n_shot)):
                    own = rows[(rows["method"] == method) & (rows["n_shot"] == n)]
                    own = own.sort_values("embedding_dim")
                    ax.errorbar(
                        own["embedding_dim"].astype(int),
                        own[f"{metric}_mean"],
                        yerr=own[f"{metric}_std"].fillna(0),
                        color=colours[method],
                        linestyle=styles[i % len(styles)],
                        marker="o",
                        markersize=3,
                        capsize=2,
                        label=f"{LOWSHOT_LABELS[method]}, n = {n}",
                    )
            ax.set_xscale("log", base=2)
            ax.set_xticks(dims, [str(d) for d in dims])
            ax.minorticks_off()
            ax.set_ylim(0, 1)
            ax.set_xlabel("D (embedding layer outputs)")
            ax.set_ylabel(f"accuracy, {label}")
            ax.set_title(f"{model} / {task} ({scope}, init {init})", fontsize=8)
            ax.grid(alpha=0.3)
    return legend_below(fig, axes, 4, "Accuracy against embedding dimension (Qi et al., Fig. 7)")


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where low-shot runs two or more embedding dimensions with Imprinting or
    AllClassJoint."""
    if not lowshot_tasks(config):
        return None
    lowshot = config["lowshot"]
    compared = [m for m in EMBEDDING_DIM_METHODS if m in lowshot["methods"]]
    if len(embedding_dims(lowshot)) <= 1 or not compared:
        return None
    n_values = {n for task in lowshot["tasks"].values() for n in task["n_shot"]}
    return {
        "n_shot": sorted(n_values & set(EMBEDDING_DIM_N_SHOT)) or [min(n_values)],
        "methods": compared,
    }


FIGURE = Figure(
    "embedding_dim",
    plot_embedding_dim,
    {"lowshot_summary": "lowshot_summary"},
    """\
Qi et al.'s Fig. 7: top-1 accuracy against D, the outputs of the fully connected embedding
layer between the FM and the cosine classifier (one base network trained per D), for
{methods} at n = {n_shot} examples per novel class (line styles). Left: test examples of the
novel classes; right: of all classes. Means over seeds, bars ± one standard deviation;
AllClassJoint at its final epoch. Qi et al. found imprinting best at small D and
AllClassJoint gaining with D.""",
    plan,
)
