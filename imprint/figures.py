"""The paper's figures from the tidy result tables (matplotlib; PDF and PNG).

Each ``plot_*`` function takes tables and returns a :class:`matplotlib.figure.Figure`;
:func:`save_figure` writes it atomically. Where a figure picks "the best NORM", it picks, per
panel and point, the NORM combination with the highest mean accuracy over seeds (the paper's
"best NORM per row"), and the band is ± one standard deviation of that configuration over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imprint.gen import GEN_METHODS
from imprint.lowshot import embedding_dims
from imprint.lowshot_methods import METHODS, TRAINED_METHODS
from imprint.stats import GROUP, POSTHOC_TESTS, ComparisonResult

NORMS = ["norm_pre", "norm_post", "norm_inf"]
#: The k whose gain over the mean the NC1-vs-gain figure shows, unless figures.nc1_vs_gain_k
#: says otherwise (those in the grid; else its largest k).
NC1_VS_GAIN_K = (5, 20)
#: The few-shot figure's curves: k-means with these k, and GEN all ("k = n").
FEW_SHOT_K = (1, 5, 20)
#: The embedding-dimension figure's curves (Qi et al.'s Fig. 7): these methods at these n
#: (those the config runs; else its smallest n).
EMBEDDING_DIM_METHODS = ("imprint", "all_class_joint")
EMBEDDING_DIM_N_SHOT = (1, 5)


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


def figure_plan(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures a (validated) config can draw, each with the options of its plot function.

    ``figures.models`` and ``figures.gen_vs_k_tasks`` choose panels (default: every model; every
    task without n_shot or d_in_1). The few-shot and "d in 1" figures appear only where the
    config has such task series; the accuracy figures need AGG max (and GEN kmeans) in the grid.
    """
    tasks = config["tasks"]
    grid = config["imprinting"]
    options = config.get("figures", {})
    lowshot = config.get("lowshot", {})
    lowshot_plan: dict[str, dict[str, Any]] = {}
    if lowshot.get("tasks"):
        lowshot_plan["lowshot"] = {}
        if any(method in TRAINED_METHODS for method in lowshot["methods"]):
            lowshot_plan["finetune_curves"] = {}
        compared = [m for m in EMBEDDING_DIM_METHODS if m in lowshot["methods"]]
        if len(embedding_dims(lowshot)) > 1 and compared:
            n_values = {n for task in lowshot["tasks"].values() for n in task["n_shot"]}
            lowshot_plan["embedding_dim"] = {
                "n_shot": sorted(n_values & set(EMBEDDING_DIM_N_SHOT)) or [min(n_values)],
                "methods": compared,
            }
    models = options.get("models") or sorted(config["models"])
    plain = [
        task
        for task in sorted(tasks)
        if "n_shot" not in tasks[task] and "d_in_1" not in tasks[task]
    ]
    full_data = [task for task in sorted(tasks) if "n_shot" not in tasks[task]]
    plan: dict[str, dict[str, Any]] = {
        # NC1 is measured on the full train split, so n-shot tasks would repeat their source
        "nc1": {"models": models, "tasks": full_data or sorted(tasks)},
        "gen_time": {},
        **lowshot_plan,
    }
    selection = config.get("selection", {})
    if selection.get("method", "none") != "none":
        plan["selection_optimism"] = {
            "selection": (
                f"stratified {selection['folds']}-fold cross-validation"
                if selection["method"] == "cv"
                else f"a stratified {selection['validation_fraction']:g} validation split"
            )
        }
    if "max" not in grid["agg"]:
        return plan
    plan["gen_vs_k"] = {
        "models": models,
        "tasks": options.get("gen_vs_k_tasks") or plain or sorted(tasks),
    }
    layered: dict[str, list[str]] = {}
    for name, spec in sorted(config["models"].items()):
        if "layer_of" in spec:
            layered.setdefault(spec["layer_of"], []).append(name)
    if layered and "mean" in grid["gen"] and all("l2" in grid[n] for n in NORMS):
        plan["layers"] = {
            "series": {
                base: [m for m in config["models"] if m in names]  # config's layer order
                for base, names in layered.items()
            },
            "layers": {
                name: config["models"][name]["layer"]
                for names in layered.values()
                for name in names
            },
            "tasks": full_data or sorted(tasks),
        }
    if "kmeans" not in grid["gen"]:
        return dict(sorted(plan.items()))
    if "mean" in grid["gen"] and all("l2" in grid[n] for n in NORMS):
        wanted = options.get("nc1_vs_gain_k") or NC1_VS_GAIN_K
        k_values = [k for k in wanted if k in grid["k"]] or [max(grid["k"])]
        plan["nc1_vs_gain"] = {"k": k_values, "tasks": full_data or sorted(tasks)}
    for name, series in (("few_shot", few_shot_series(tasks)), ("d_in_1", d_in_1_series(tasks))):
        if series:
            members = sorted({task for names in series.values() for task in names})
            plan[name] = {
                "models": models,
                "series": series,
                "tasks": {task: dict(tasks[task]) for task in members},
            }
    return dict(sorted(plan.items()))


def best_norm(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per ``keys``: mean and std over seeds of the NORM combination with the best mean."""
    per_norm = (
        results.groupby([*keys, *NORMS], dropna=False, sort=True)["accuracy"]
        .agg(mean="mean", std="std", n_seeds="size")
        .reset_index()
    )
    best = per_norm.loc[per_norm.groupby(list(keys), dropna=False, sort=True)["mean"].idxmax()]
    return best.assign(std=best["std"].fillna(0.0)).reset_index(drop=True)


def _gen_colours(gens: Sequence[str]) -> dict[str, Any]:
    plt = pyplot()
    cycle = plt.get_cmap("tab10").colors
    return {gen: cycle[GEN_METHODS.index(gen) % len(cycle)] for gen in gens}


def _grid(rows: int, cols: int, width: float = 3.3, height: float = 2.7):
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


def _k_axis(ax, ks: Sequence[int]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(ks), [str(k) for k in ks])
    ax.minorticks_off()


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
    colours = _gen_colours(gens)
    ks = sorted(curves["k"].dropna().unique())
    fig, axes = _grid(len(models), len(tasks))
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
                _k_axis(ax, [int(k) for k in ks])
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


def _per_class_samples(nc1: pd.DataFrame, task: str) -> float:
    rows = nc1[nc1["task"] == task]
    return float((rows["n_samples"] / rows["n_labels"]).mean())


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
    fig, axes = _grid(len(models), len(series), width=3.8)
    for col, (name, members) in enumerate(series.items()):
        n = {
            task: (
                tasks[task]["n_shot"]
                if tasks[task].get("n_shot", "all") != "all"
                else _per_class_samples(nc1, task)
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
    fig, axes = _grid(len(series), 2, width=4.2, height=3.0)
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


def plot_nc1_vs_gain(table: pd.DataFrame, k: Sequence[int], tasks: Sequence[str]) -> Any:
    """One panel per k: NC1 (log scale) against the gain of k-means over the mean, one point per
    (model, task) of ``tasks``, with the Spearman correlation and its p-value in the panel
    title (the table is :func:`imprint.stats.nc1_vs_gain`'s)."""
    ks = [each for each in k if each in set(table["k"])]
    fig, axes = _grid(1, max(len(ks), 1), width=3.6, height=3.2)
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


def plot_d_in_1(
    results: pd.DataFrame,
    nc1: pd.DataFrame,
    models: Sequence[str],
    series: Mapping[str, Sequence[str]],
    tasks: Mapping[str, Mapping[str, Any]],
) -> Any:
    """Per model and "d in 1" series: accuracy against k for k-means (best NORM, AGG max), one
    line per d with a dotted marker at k = d; alongside, NC1 against d."""
    plt = pyplot()
    selected = results[
        (results["agg"] == "max") & (results["gen"] == "kmeans") & results["model"].isin(models)
    ]
    if selected.empty:
        raise ValueError("the d-in-1 figure needs GEN kmeans with AGG max in the grid")
    curves = best_norm(selected, [*GROUP, "k"])
    ks = sorted(int(k) for k in curves["k"].dropna().unique())
    rows = [(model, name, members) for model in models for name, members in series.items()]
    fig, axes = _grid(len(rows), 2, width=4.2, height=2.9)
    for row, (model, name, members) in enumerate(rows):
        ds = {task: tasks[task]["d_in_1"] for task in members}
        colours = plt.get_cmap("plasma")(np.linspace(0, 0.85, len(members)))
        nc1_rows = nc1[(nc1["model"] == model) & nc1["task"].isin(members)]
        nc1_by_task = nc1_rows.groupby("task")["nc1"].agg(["mean", "std"]).fillna(0.0)
        ax = axes[row, 0]
        for task, colour in zip(members, colours, strict=True):
            line = curves[(curves["model"] == model) & (curves["task"] == task)].sort_values("k")
            if line.empty:
                continue
            label = f"d={ds[task]}"
            if task in nc1_by_task.index:
                label += f" (NC1 {nc1_by_task.loc[task, 'mean']:.2g})"
            k = line["k"].astype(float)
            ax.plot(k, line["mean"], marker="o", markersize=3, color=colour, label=label)
            ax.fill_between(
                k,
                line["mean"] - line["std"],
                line["mean"] + line["std"],
                color=colour,
                alpha=0.15,
                linewidth=0,
            )
            ax.axvline(ds[task], color=colour, linestyle=":", linewidth=1)
        _k_axis(ax, ks)
        ax.set_title(f"{model} / {name}: accuracy vs k (dotted: k = d)", fontsize=9)
        ax.set_xlabel("k (k-means proxies per label)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)

        ax = axes[row, 1]
        d = [ds[task] for task in members if task in nc1_by_task.index]
        values = nc1_by_task.reindex([task for task in members if task in nc1_by_task.index])
        ax.errorbar(d, values["mean"], yerr=values["std"], marker="o", capsize=3)
        ax.set_xticks(sorted(set(d)))
        ax.set_title(f"{model} / {name}: NC1 vs d", fontsize=9)
        ax.set_xlabel("d (classes merged into one label)")
        ax.set_ylabel("NC1 (mean ± std over seeds)")
        ax.grid(alpha=0.3)
    fig.suptitle('"d in 1" tasks: accuracy against k (dotted: k = d), NC1 against d', fontsize=10)
    return fig


#: Qi et al.'s names of the low-shot methods, for legends.
LOWSHOT_LABELS = {name: method.label for name, method in METHODS.items()}
LOWSHOT_METRICS = {"novel_accuracy": "novel classes", "all_accuracy": "all classes"}


def _lowshot_colours() -> dict[str, Any]:
    cycle = pyplot().get_cmap("tab10").colors
    return {method: cycle[i] for i, method in enumerate(LOWSHOT_LABELS)}


def _lowshot_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
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


def plot_lowshot(lowshot_summary: pd.DataFrame) -> Any:
    """Qi et al.'s Tables 1-2 as a figure: accuracy against n (examples per novel class) per
    method, novel classes (left) and all classes (right), one row per (model, low-shot task);
    means over seeds with ± one standard deviation bars, final epoch of the trained methods."""
    groups = _lowshot_groups(lowshot_summary)
    fig, axes = _grid(max(len(groups), 1), 2, width=3.8, height=2.9)
    colours = _lowshot_colours()
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
            _k_axis(ax, ns)
            ax.set_ylim(0, 1)
            ax.set_xlabel("n (examples per novel class)")
            ax.set_ylabel(f"accuracy, {label}")
            ax.set_title(where, fontsize=8)
            ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=6, fontsize=7)
    fig.suptitle("Low-shot learning (Qi et al.): top-1 accuracy among all classes", fontsize=10)
    return fig


def plot_finetune_curves(lowshot: pd.DataFrame) -> Any:
    """Qi et al.'s Figures 3-4: accuracy against fine-tuning epoch (0: before training) of the
    methods that train, one column per n and one row per (model, low-shot task, metric);
    means over seeds with ± one standard deviation bands."""
    trained = lowshot[lowshot["epoch"].notna()]
    groups = _lowshot_groups(trained)
    ns = sorted(trained["n_shot"].unique())
    rows_needed = max(len(groups) * len(LOWSHOT_METRICS), 1)
    fig, axes = _grid(rows_needed, max(len(ns), 1), width=2.6, height=2.2)
    colours = _lowshot_colours()
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
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7)
    fig.suptitle("Fine-tuning curves (Qi et al., Figures 3-4)", fontsize=10)
    return fig


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
    fig, axes = _grid(max(len(groups), 1), 2, width=3.8, height=2.9)
    colours = _lowshot_colours()
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
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=7)
    fig.suptitle("Accuracy against embedding dimension (Qi et al., Fig. 7)", fontsize=10)
    return fig


def plot_gen_time(summary: pd.DataFrame) -> Any:
    """GEN wall time per method and k across groups: bar = median, whiskers = min..max,
    diamond = mean (log scale)."""
    plt = pyplot()
    summary = summary.iloc[::-1]  # first row on top
    labels = [
        gen if pd.isna(k) else f"{gen} k={int(k)}"
        for gen, k in zip(summary["gen"], summary["k"], strict=True)
    ]
    colours = _gen_colours(list(summary["gen"].unique()))
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


def plot_selection_optimism(selection_summary: pd.DataFrame, selection: str = "") -> Any:
    """Per model and task: the honest test accuracy of the configuration chosen on held-out
    training data (by ``selection``, named in the legend) against the best test accuracy of any
    configuration (means over seeds); the gap is the optimism of choosing on the test split."""
    plt = pyplot()
    summary = selection_summary
    models = list(dict.fromkeys(summary["model"]))
    tasks = list(dict.fromkeys(summary["task"]))
    fig, axes = plt.subplots(
        len(models),
        1,
        figsize=(max(5.0, 0.8 * len(tasks) + 2), 2.6 * len(models)),
        layout="constrained",
        squeeze=False,
    )
    x = np.arange(len(tasks))
    for ax, model in zip(axes[:, 0], models, strict=True):
        rows = summary[summary["model"] == model].set_index("task").reindex(tasks)
        ax.bar(
            x - 0.2, rows["best_test_accuracy"], 0.4, label="best on the test split", color="0.7"
        )
        ax.bar(
            x + 0.2,
            rows["test_accuracy"],
            0.4,
            yerr=rows["test_accuracy_std"].fillna(0),
            capsize=2,
            label=f"chosen on training data{f' by {selection}' if selection else ''} (honest)",
            color="tab:blue",
        )
        for position, gap in zip(x, rows["optimism"], strict=True):
            if pd.notna(gap):
                ax.annotate(f"+{gap:.3f}", (position, 1.0), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, tasks, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{model}: optimism of choosing on the test split (+gap)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=7)
    return fig


def cd_diagram(
    result: ComparisonResult, title: str, alpha: float = 0.05
) -> tuple[Any, dict[str, list[Any]]]:
    """Critical-difference diagram (scikit-posthocs) of a comparison: the matplotlib figure and
    scikit-posthocs' artists (markers, elbows, labels, crossbars).

    Treatments joined by a bar are not significantly different under the post-hoc test named
    in the title. Without a post-hoc test (Friedman not significant, or too few treatments or
    groups) the mean ranks are drawn without bars and the title says why.
    """
    import scikit_posthocs

    plt = pyplot()
    ranks = result.table.set_index("treatment")["mean_rank"]
    if result.posthoc_run:
        significance = result.pvalues
    else:
        # scikit-posthocs draws a bar wherever p >= alpha; p = 0 off the diagonal draws none.
        significance = pd.DataFrame(np.eye(len(ranks)), index=ranks.index, columns=ranks.index)
    height = 1.6 + 0.22 * len(ranks)
    fig, ax = plt.subplots(figsize=(8, height))
    # The critical difference goes into the title: scikit-posthocs' CD ruler overlaps the rank
    # axis labels.
    artists = scikit_posthocs.critical_difference_diagram(
        ranks, significance, ax=ax, alpha=alpha, label_props={"fontsize": 8}
    )
    if result.posthoc_run:
        how = (
            f"bars join treatments the {POSTHOC_TESTS[result.posthoc]} test does not "
            f"separate (alpha={alpha})"
        )
        if not np.isnan(result.critical_difference):
            how += f"; CD = {result.critical_difference:.3g}"
    else:
        how = "no post-hoc test, so no bars"
    ax.set_title(
        f"{title}\n{result.note}\n{how}\n{result.n_groups} groups (model × task); "
        "mean rank, 1 = best",
        fontsize=9,
        pad=28,
    )
    fig.tight_layout()
    return fig, artists


@dataclass(frozen=True)
class Figure:
    """A figure of results/figures/: how to draw it, what it reads, and its report caption."""

    plot: Callable[..., Any]
    #: the plot function's table arguments -> the results/tables/ file (without .csv) each reads
    tables: Mapping[str, str]
    #: rST; ``{tasks}`` and ``{series}`` are filled from the figure's plan options
    caption: str


#: Every figure the workflow can draw: adding one is a plot function and a line here (which
#: figures a config draws, with which panels, is :func:`figure_plan`'s choice).
FIGURES: dict[str, Figure] = {
    "gen_vs_k": Figure(
        plot_gen_vs_k,
        {"results": "imprinting"},
        """\
The paper's "GEN vs k" plot: test accuracy against k (proxies per class) for every GEN method,
one panel per FM and task ({tasks}). AGG is max; at each point the NORM combination with the
best mean test accuracy is taken (the paper's "best NORM", chosen on the test split, so
optimistic by construction). Lines are means over seeds, bands ± one standard deviation;
methods without k (all, mean, ls) are dashed horizontal lines.""",
    ),
    "few_shot": Figure(
        plot_few_shot,
        {"results": "imprinting", "nc1": "nc1"},
        """\
Few-shot imprinting: test accuracy against n, the train samples per task label, for k-means
with k = 1 (the class mean), 5 and 20, and for GEN all (k = n, every sample a proxy). With
fewer than k samples k-means keeps them all. AGG max, best NORM per point; means over seeds with
± one standard deviation bands. Series (tasks that differ only in n): {series}.
The point "all" sits at the mean train samples per label of the full task.""",
    ),
    "nc1": Figure(
        plot_nc1,
        {"nc1": "nc1"},
        """\
Neural collapse NC1 per task (full train split) and FM, mean over seeds with ± one standard
deviation error bars, on a log scale. Low NC1: the FM maps each label's samples close to their
mean, and one proxy per label suffices; high NC1: more proxies help (Westerhoff et al.). NC1
against d for "d in 1" tasks is in the d_in_1 figure.""",
    ),
    "d_in_1": Figure(
        plot_d_in_1,
        {"results": "imprinting", "nc1": "nc1"},
        """\
"d in 1" tasks, where each task label merges d original classes: left, test accuracy against k
for GEN k-means (AGG max, best NORM per point; mean ± std over seeds), one line per d, with a
dotted line at k = d, the number of modes per label (beyond it, more proxies should add
little); the legend gives each task's NC1. Right, NC1 against d (mean ± std over seeds).
Series: {series}.""",
    ),
    "nc1_vs_gain": Figure(
        plot_nc1_vs_gain,
        {"table": "nc1_vs_gain"},
        """\
The IMPRINT paper's central explanatory claim, tested on this run: per FM and task, NC1 (the
textbook measure, mean over seeds) against the accuracy gain of k-means proxies over one mean
per class (both with L2 NORM everywhere and AGG max, median over seeds), one panel per k
({k}). If the claim held, the points would rise to the right (tasks whose classes are less
collapsed gain more from more proxies) and Spearman's ρ, in each panel's title with its
p-value, would be clearly positive. The numbers are in results/tables/nc1_vs_gain.csv.""",
    ),
    "layers": Figure(
        plot_layers,
        {"results": "imprinting", "nc1": "nc1"},
        """\
Imprinting from intermediate layers: for every model configured with a list of layers, test
accuracy per layer of Qi et al.'s imprinting (GEN mean) and of the IMPRINT paper's (GEN k-means
with k = 20, or the largest k below it in the grid), both with L2 NORM everywhere and AGG max,
and NC1 per layer. Points are means over the tasks ({tasks}) of the per-task mean over seeds,
bars ± one standard deviation over tasks.""",
    ),
    "lowshot": Figure(
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
    ),
    "embedding_dim": Figure(
        plot_embedding_dim,
        {"lowshot_summary": "lowshot_summary"},
        """\
Qi et al.'s Fig. 7: top-1 accuracy against D, the outputs of the fully connected embedding
layer between the FM and the cosine classifier (one base network trained per D), for
{methods} at n = {n_shot} examples per novel class (line styles). Left: test examples of the
novel classes; right: of all classes. Means over seeds, bars ± one standard deviation;
AllClassJoint at its final epoch. Qi et al. found imprinting best at small D and
AllClassJoint gaining with D.""",
    ),
    "finetune_curves": Figure(
        plot_finetune_curves,
        {"lowshot": "lowshot"},
        """\
Accuracy per fine-tuning epoch (Qi et al.'s Figures 3–4) of the methods that train, one column
per n: epoch 0 is before training (for Imprinting+FT, imprinting itself). Rows: novel-class and
all-class accuracy per model and low-shot task. Lines are means over seeds, bands ± one
standard deviation. Imprinting as the initialisation should start higher and stay at or above
the random initialisation for small n.""",
    ),
    "selection_optimism": Figure(
        plot_selection_optimism,
        {"selection_summary": "selection_summary"},
        """\
Model selection without the test split: per FM and task, grey bars are the best test accuracy
of any configuration of the grid (what reading the winner off the results table gives: the
maximum of many noisy estimates, optimistic by construction); blue bars the test accuracy of
the configuration chosen on held-out training data ({selection}), refit on the whole training
split and scored once on the test split (means over seeds, ± one standard deviation). The
number above each pair is the gap, the optimism of choosing on the test split
(results/tables/selection_summary.csv).""",
    ),
    "gen_time": Figure(
        plot_gen_time,
        {"summary": "gen_time_summary"},
        """\
GEN wall time per method and k across groups (FM × task), from
results/tables/gen_time_summary.csv: bars are medians, whiskers span minimum to maximum,
diamonds are means; log scale.""",
    ),
}


def figure_caption(figure: str, options: Mapping[str, Any]) -> str:
    """The report caption of ``figure`` drawn with ``options`` (an entry of the figure plan)."""
    series = options.get("series", {})
    return FIGURES[figure].caption.format(
        k=", ".join(map(str, options.get("k", []))),
        tasks=", ".join(options.get("tasks", [])),
        series="; ".join(f"{name} ({', '.join(tasks)})" for name, tasks in series.items()),
        selection=options.get("selection", ""),
        methods=", ".join(LOWSHOT_LABELS[m] for m in options.get("methods", [])),
        n_shot=", ".join(map(str, options.get("n_shot", []))),
    )


def save_figure(fig: Any, pdf: str, png: str, dpi: int = 150) -> None:
    """Write ``fig`` as PDF (no creation date, so equal figures give equal files) and PNG,
    each atomically."""
    from imprint.io import atomic_path

    with atomic_path(pdf) as tmp:
        fig.savefig(tmp, format="pdf", metadata={"CreationDate": None})
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
