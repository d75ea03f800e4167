"""Accuracy per fine-tuning epoch of the low-shot methods that train."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from imprint.figures.common import (
    LOWSHOT_LABELS,
    LOWSHOT_METRICS,
    Figure,
    legend_below,
    lowshot_colours,
    lowshot_groups,
    lowshot_tasks,
    panel_grid,
)
from imprint.lowshot_methods import TRAINED_METHODS


def plot_finetune_curves(lowshot: pd.DataFrame) -> Any:
    """Qi et al.'s Figures 3-4: accuracy against fine-tuning epoch (0: before training) of the
    methods that train, one column per n and one row per (model, low-shot task, metric);
    means over seeds with ± one standard deviation bands."""
    trained = lowshot[lowshot["epoch"].notna()]
    groups = lowshot_groups(trained)
    ns = sorted(trained["n_shot"].unique())
    rows_needed = max(len(groups) * len(LOWSHOT_METRICS), 1)
    fig, axes = panel_grid(rows_needed, max(len(ns), 1), width=2.6, height=2.2)
    colours = lowshot_colours()
    for g, (where, rows) in enumerate(groups):
        for m, (metric, label) in enumerate(LOWSHOT_METRICS.items()):
            for column, n in enumerate(ns):
                ax = axes[g * len(LOWSHOT_METRICS) + m, column]
                for method in [x for x in LOWSHOT_LABELS if x in set(rows["method"])]:
                    own = rows[(rows["method"] == method) & (rows["n_shot"] == n)]
                    stats = own.groupby("epoch")[metric].agg(["mean", "std"]).fillna(0)
                    epochs = stats.index.astype(int)
                    ax.plot(
                        epochs, stats["mean"], color=colours[method], label=LOWSHOT_LABELS[method]
                    )
                    ax.fill_between(
                        epochs,
                        stats["mean"] - stats["std"],
                        stats["mean"] + stats["std"],
                        color=colours[method],
                        alpha=0.15,
                    )
                ax.set_ylim(0, 1)
                ax.set_title(f"{where}, n = {n}", fontsize=7)
                ax.set_xlabel("epoch")
                if column == 0:
                    ax.set_ylabel(f"accuracy, {label}")
                ax.grid(alpha=0.3)
    return legend_below(fig, axes, 3, "Fine-tuning curves (Qi et al., Figures 3-4)")


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Drawn where low-shot runs a method that trains."""
    if lowshot_tasks(config) and any(
        method in TRAINED_METHODS for method in config["lowshot"]["methods"]
    ):
        return {}
    return None


FIGURE = Figure(
    "finetune_curves",
    plot_finetune_curves,
    {"lowshot": "lowshot"},
    """\
Accuracy per fine-tuning epoch (Qi et al.'s Figures 3–4) of the methods that train, one column
per n: epoch 0 is before training (for Imprinting+FT, imprinting itself). Rows: novel-class and
all-class accuracy per model and low-shot task. Lines are means over seeds, bands ± one
standard deviation. Imprinting as the initialisation should start higher and stay at or above
the random initialisation for small n.""",
    plan,
)
