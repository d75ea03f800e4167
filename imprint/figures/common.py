"""What the figures share: matplotlib, the figure entry (:class:`Figure`), the "best NORM"
reduction, panel grids and colours, task series and the plan helpers each figure's ``plan``
uses to decide whether a config draws it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from imprint.gen import GEN_METHODS
from imprint.lowshot_methods import METHODS

NORMS = ["norm_pre", "norm_post", "norm_inf"]


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend: jobs have no display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tasks_differing_only_in(tasks: Mapping[str, Mapping[str, Any]], field: str) -> list[list[str]]:
    """Groups of task names whose specs are equal but for ``field`` (and their seeds)."""
    groups: dict[str, list[str]] = {}
    for name, spec in tasks.items():
        rest = {key: value for key, value in spec.items() if key not in (field, "seeds")}
        groups.setdefault(json.dumps(rest, sort_keys=True), []).append(name)
    return list(groups.values())


def few_shot_series(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Tasks that differ only in ``n_shot``, as series name -> tasks ordered by n (the task
    without ``n_shot``, i.e. all train samples, last). Only series with an n-shot task and at
    least two points; the name is that of the full task where there is one."""
    series = {}
    for names in _tasks_differing_only_in(tasks, "n_shot"):
        shots = {name: tasks[name].get("n_shot", "all") for name in names}
        if len(names) < 2 or all(n == "all" for n in shots.values()):
            continue
        ordered = sorted(
            names,
            key=lambda name: (
                shots[name] == "all",
                shots[name] if shots[name] != "all" else 0,
                name,
            ),
        )
        full = [name for name in ordered if shots[name] == "all"]
        label = full[0] if full else f"{tasks[ordered[0]]['dataset']} ({ordered[0]}, ...)"
        series[label] = ordered
    return dict(sorted(series.items()))


def d_in_1_series(tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """ "d in 1" tasks that differ only in d, as series name -> tasks ordered by d (at least two
    values of d). The name is the dataset's, with the shared label count."""
    remapped = {name: spec for name, spec in tasks.items() if "d_in_1" in spec}
    series = {}
    for names in _tasks_differing_only_in(remapped, "d_in_1"):
        if len({tasks[name]["d_in_1"] for name in names}) < 2:
            continue
        ordered = sorted(names, key=lambda name: (tasks[name]["d_in_1"], name))
        spec = tasks[ordered[0]]
        label = spec["dataset"] + (f", {spec['n_labels']} labels" if "n_labels" in spec else "")
        series[label] = ordered
    return dict(sorted(series.items()))


def best_norm(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per ``keys``: mean and std over seeds of the NORM combination with the best mean."""
    per_norm = (
        results.groupby([*keys, *NORMS], dropna=False, sort=True)["accuracy"]
        .agg(mean="mean", std="std", n_seeds="size")
        .reset_index()
    )
    best = per_norm.loc[per_norm.groupby(list(keys), dropna=False, sort=True)["mean"].idxmax()]
    return best.assign(std=best["std"].fillna(0.0)).reset_index(drop=True)


def gen_colours(gens: Sequence[str]) -> dict[str, Any]:
    plt = pyplot()
    cycle = plt.get_cmap("tab10").colors
    return {gen: cycle[GEN_METHODS.index(gen) % len(cycle)] for gen in gens}


def panel_grid(rows: int, cols: int, width: float = 3.3, height: float = 2.7):
    plt = pyplot()
    # at least 7 inches wide, so that the title and the shared legend fit
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(max(7.0, width * cols), height * rows + 0.9),
        squeeze=False,
        layout="constrained",
    )
    return fig, axes


def k_axis(ax, ks: Sequence[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(ks), [str(k) for k in ks])
    ax.minorticks_off()


def per_class_samples(nc1: pd.DataFrame, task: str) -> float:
    rows = nc1[nc1["task"] == task]
    return float((rows["n_samples"] / rows["n_labels"]).mean())


#: Qi et al.'s names of the low-shot methods, for legends.
LOWSHOT_LABELS = {name: method.label for name, method in METHODS.items()}


LOWSHOT_METRICS = {"novel_accuracy": "novel classes", "all_accuracy": "all classes"}


def lowshot_colours() -> dict[str, Any]:
    cycle = pyplot().get_cmap("tab10").colors
    return {method: cycle[i] for i, method in enumerate(LOWSHOT_LABELS)}


def lowshot_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A low-shot table's rows per (model, task, scope, init, embedding layer), each with its
    panel title."""
    keys = ["model", "task", "scope", "init"]
    layer = table["embedding_dim"] if "embedding_dim" in table else pd.Series(pd.NA, table.index)
    groups = []
    for (model, task, scope, init, dim), rows in table.assign(_dim=layer.astype("Int64")).groupby(
        [*keys, "_dim"], sort=True, dropna=False
    ):
        layer_title = "" if pd.isna(dim) else f", {int(dim)}-d layer"
        groups.append((f"{model} / {task} ({scope}, init {init}{layer_title})", rows))
    return groups


def legend_below(fig: Any, axes: Any, ncols: int, title: str) -> Any:
    """``fig`` with the first panel's legend below the panels and ``title`` above them."""
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


@dataclass(frozen=True)
class Figure:
    """A figure of results/figures/: how to draw it, what it reads, its report caption, and
    whether (and with which panels) a config draws it."""

    name: str
    plot: Callable[..., Any]
    #: the plot function's table arguments -> the results/tables/ file (without .csv) each reads
    tables: Mapping[str, str]
    #: rST; ``{tasks}``, ``{series}``, ... are filled from the figure's plan options
    caption: str
    #: (validated config) -> the plot function's options, or None where the config does not
    #: draw the figure
    plan: Callable[[Mapping[str, Any]], dict[str, Any] | None]


def planned_models(config: Mapping[str, Any]) -> list[str]:
    """The models the accuracy and NC1 figures show: ``figures.models``, else every model."""
    return config.get("figures", {}).get("models") or sorted(config["models"])


def full_data_tasks(config: Mapping[str, Any]) -> list[str]:
    """Tasks on the full train split (no n_shot), else every task: NC1 is measured on the full
    train split, so n-shot tasks would repeat their source."""
    tasks = config["tasks"]
    return [task for task in sorted(tasks) if "n_shot" not in tasks[task]] or sorted(tasks)


def plain_tasks(config: Mapping[str, Any]) -> list[str]:
    """Tasks without n_shot or d_in_1, else every task."""
    tasks = config["tasks"]
    plain = [
        task
        for task in sorted(tasks)
        if "n_shot" not in tasks[task] and "d_in_1" not in tasks[task]
    ]
    return plain or sorted(tasks)


def draws_accuracy(config: Mapping[str, Any], *gens: str) -> bool:
    """The accuracy figures need AGG max in the grid (and these GEN methods)."""
    grid = config["imprinting"]
    return "max" in grid["agg"] and all(gen in grid["gen"] for gen in gens)


def l2_everywhere(config: Mapping[str, Any]) -> bool:
    """L2 is among the levels of every NORM factor."""
    return all("l2" in config["imprinting"][norm] for norm in NORMS)


def task_series_plan(
    config: Mapping[str, Any], series: Mapping[str, list[str]]
) -> dict[str, Any] | None:
    """The options of a figure drawn per task series (few-shot, "d in 1"), or None without
    series or without GEN kmeans and AGG max."""
    if not series or not draws_accuracy(config, "kmeans"):
        return None
    tasks = config["tasks"]
    members = sorted({task for names in series.values() for task in names})
    return {
        "models": planned_models(config),
        "series": series,
        "tasks": {task: dict(tasks[task]) for task in members},
    }


def always_drawn(config: Mapping[str, Any]) -> dict[str, Any]:
    """The plan of a figure every config draws, with no options."""
    return {}


def lowshot_tasks(config: Mapping[str, Any]) -> bool:
    """The config runs low-shot tasks."""
    return bool(config.get("lowshot", {}).get("tasks"))


def save_figure(fig: Any, pdf: str, png: str, dpi: int = 150) -> None:
    """Write ``fig`` as PDF (no creation date, so equal figures give equal files) and PNG,
    each atomically."""
    from imprint.io import atomic_path

    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
