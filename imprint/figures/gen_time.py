"""GEN wall time per method and k."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    always_drawn,
    gen_colours,
    pyplot,
)


def plot_gen_time(summary: pd.DataFrame) -> Any:
    """GEN wall time per method and k across groups: bar = median, whiskers = min..max,
    diamond = mean (log scale)."""
    plt = pyplot()
    summary = summary.iloc[::-1]  # first row on top
    labels = [
        gen if pd.isna(k) else f"{gen} k={int(k)}"
        for gen, k in zip(summary["gen"], summary["k"], strict=True)
    ]
    colours = gen_colours(list(summary["gen"].unique()))
    y = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * len(summary)), layout="constrained")
    median = summary["median_s"].to_numpy()
    ax.barh(y, median, color=[colours[gen] for gen in summary["gen"]], alpha=0.8)
    ax.errorbar(
        median,
        y,
        xerr=[median - summary["min_s"], summary["max_s"] - median],
        fmt="none",
        ecolor="black",
        capsize=2,
        linewidth=0.8,
    )
    ax.scatter(summary["mean_s"], y, marker="D", color="black", s=12, zorder=3, label="mean")
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("GEN wall time for all classes of a task (s)")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    n_groups = int(summary["n_groups"].max())
    ax.set_title(
        f"GEN time per method across {n_groups} groups (model × task):\n"
        "median (bar), min–max (whiskers), mean (◆)",
        fontsize=9,
    )
    return fig


FIGURE = Figure(
    "gen_time",
    plot_gen_time,
    {"summary": "gen_time_summary"},
    """\
GEN wall time per method and k across groups (FM × task), from
results/tables/gen_time_summary.csv: bars are medians, whiskers span minimum to maximum,
diamonds are means; log scale.""",
    always_drawn,
)
