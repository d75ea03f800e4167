"""Qi et al.'s low-shot learning: accuracy against n per method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from imprint.figures.common import (
    LOWSHOT_LABELS,
    LOWSHOT_METRICS,
    Figure,
    k_axis,
    legend_below,
    lowshot_colours,
    lowshot_groups,
    lowshot_tasks,
    panel_grid,
)


def plot_lowshot(lowshot_summary: pd.DataFrame) -> Any:
    """Qi et al.'s Tables 1-2 as a figure: accuracy against n (examples per novel class) per
    method, novel classes (left) and all classes (right), one row per (model, low-shot task);
    means over seeds with ± one standard deviation bars, final epoch of the trained methods."""
    groups = lowshot_groups(lowshot_summary)
    fig, axes = panel_grid(max(len(groups), 1), 2, width=3.8, height=2.9)
    colours = lowshot_colours()
    for row, (where, rows) in enumerate(groups):
        ns = sorted(rows["n_shot"].unique())
        for column, (metric, label) in enumerate(LOWSHOT_METRICS.items()):
            ax = axes[row, column]
            for method in [m for m in LOWSHOT_LABELS if m in set(rows["method"])]:
                own = rows[rows["method"] == method].sort_values("n_shot")
                ax.errorbar(
                    own["n_shot"],
                    own[f"{metric}_mean"],
                    yerr=own[f"{metric}_std"].fillna(0),
                    color=colours[method],
                    marker="o",
                    markersize=3,
                    capsize=2,
                    label=LOWSHOT_LABELS[method],
                )
            k_axis(ax, ns)
            ax.set_ylim(0, 1)
            ax.set_xlabel("n (examples per novel class)")
            ax.set_ylabel(f"accuracy, {label}")
            ax.set_title(where, fontsize=8)
            ax.grid(alpha=0.3)
    return legend_below(
        fig, axes, 6, "Low-shot learning (Qi et al.): top-1 accuracy among all classes"
    )


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where the config runs low-shot tasks."""
    return {} if lowshot_tasks(config) else None


FIGURE = Figure(
    "lowshot",
    plot_lowshot,
    {"lowshot_summary": "lowshot_summary"},
    """\
Low-shot learning as in Qi et al. (CVPR 2018): top-1 accuracy among all (base + novel) classes
against n, the examples per novel class, for each configured method: Rand-noFT (random novel
weights), Imprinting (normalised mean of normalised embeddings), Imprinting+Aug, Rand+FT and
Imprinting+FT (fine-tuned from random / imprinted novel weights), AllClassJoint (trained
from scratch on the same data) and Nearest neighbour (every novel example's embedding stored,
Qi et al.'s Fig. 6). Left: test examples of the novel classes (Qi et al.'s Table 1);
right: of all classes (Table 2). Means over seeds, bars ± one standard deviation; fine-tuned
methods at their final epoch. Qi et al. report Imprinting far above Rand-noFT, Imprinting+FT at
or above Rand+FT for small n, and little gain from augmentation.""",
    plan,
)
