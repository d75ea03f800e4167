"""Neural collapse NC1 per task and FM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    Figure,
    full_data_tasks,
    planned_models,
    pyplot,
)
from imprint.stats import GROUP


def plot_nc1(nc1: pd.DataFrame, models: Sequence[str], tasks: Sequence[str]) -> Any:
    """NC1 per task (bars per model; mean over seeds, error bars ± std), log scale: lower means
    more collapsed classes in the FM's embedding."""
    plt = pyplot()
    summary = (
        nc1[nc1["model"].isin(models) & nc1["task"].isin(tasks)]
        .groupby(list(GROUP))["nc1"]
        .agg(["mean", "std"])
        .fillna({"std": 0.0})
    )
    fig, ax = plt.subplots(
        figsize=(max(5.0, 0.55 * len(tasks) * len(models) + 1.5), 3.8), layout="constrained"
    )
    width = 0.8 / len(models)
    x = np.arange(len(tasks))
    for index, model in enumerate(models):
        values = summary.reindex([(model, task) for task in tasks])
        ax.bar(
            x + (index - (len(models) - 1) / 2) * width,
            values["mean"],
            width,
            yerr=values["std"],
            capsize=2,
            label=model,
        )
    ax.set_xticks(
        x,
        tasks,
        rotation=45 if len(tasks) > 6 else 0,
        ha="right" if len(tasks) > 6 else "center",
        fontsize=8,
    )
    ax.set_yscale("log")
    ax.set_ylabel("NC1 = tr(Σ_W Σ_B⁺) / C")
    ax.set_xlabel("task (full train split)")
    ax.legend(title="model", fontsize=8, title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        "Neural collapse NC1 per task and model (mean ± std over seeds; lower = more collapsed)",
        fontsize=10,
    )
    return fig


def plan(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Always drawn, on the tasks of the full train split."""
    return {"models": planned_models(config), "tasks": full_data_tasks(config)}


FIGURE = Figure(
    "nc1",
    plot_nc1,
    {"nc1": "nc1"},
    """\
Neural collapse NC1 per task (full train split) and FM, mean over seeds with ± one standard
deviation error bars, on a log scale. Low NC1: the FM maps each label's samples close to their
mean, and one proxy per label suffices; high NC1: more proxies help (Westerhoff et al.). NC1
against d for "d in 1" tasks is in the d_in_1 figure.""",
    plan,
)
