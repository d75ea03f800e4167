"""Statistics over result tables: medians over seeds, ranks, Friedman + post-hoc, CD diagrams.

A *group* is one (model, task): the blocks of the Friedman test. A *treatment* is a combination of
the compared factors, or a named configuration. Within a group, a treatment's score is its median
accuracy over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imprint.grid import FACTORS

GROUP = ("model", "task")
SHORT_NAMES = {"norm_pre": "pre", "norm_post": "post", "norm_inf": "inf"}


def median_over_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, configuration): the median accuracy over seeds."""
    keys = [*GROUP, *FACTORS]
    return results.groupby(keys, dropna=False, sort=True)["accuracy"].median().reset_index()


def treatment_label(values: Mapping[str, Any], factors: Sequence[str]) -> str:
    """A readable name such as ``"kmeans k=20"`` or ``"pre=l2 post=l2 inf=l2"``."""
    parts = []
    for factor in factors:
        value = values[factor]
        if pd.isna(value):
            continue  # k or m not applicable to this method
        if factor in ("gen", "agg"):
            parts.append(str(value))
        else:
            shown = int(value) if factor in ("k", "m") else value
            parts.append(f"{SHORT_NAMES.get(factor, factor)}={shown}")
    return " ".join(parts)


def _matches(column: pd.Series, condition: Any) -> pd.Series:
    """``where`` semantics: a list of allowed values or ``{min, max}``; an empty k or m
    (not applicable to the method) always matches."""
    not_applicable = column.isna()
    if isinstance(condition, Mapping):
        ok = pd.Series(True, index=column.index)
        if "min" in condition:
            ok &= column >= condition["min"]
        if "max" in condition:
            ok &= column <= condition["max"]
        return not_applicable | ok.fillna(False).astype(bool)
    return not_applicable | column.isin(list(condition))


def _select(results: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    for factor, condition in where.items():
        if not isinstance(condition, (Mapping, list, tuple)):
            condition = [condition]  # a single level, as in a named configuration
        results = results[_matches(results[factor], condition)]
    return results


def _check_defined(
    medians: pd.DataFrame,
    name: str,
    compared: Sequence[str],
    best_of: Sequence[str],
    where_key: str,
) -> None:
    """Every factor neither compared nor maximised over must have one level per treatment, so
    that a treatment is one well-defined configuration."""
    for factor in FACTORS:
        if factor in compared or factor in best_of:
            continue
        per_cell = medians.groupby([*GROUP, "treatment"], dropna=False)[factor].nunique(
            dropna=False
        )
        if (per_cell > 1).any():
            raise ValueError(
                f"comparison {name!r}: factor {factor!r} still varies after {where_key!r}; fix "
                f"it there, compare it in 'factors' or maximise over it in 'best_of'"
            )


def comparison_matrix(results: pd.DataFrame, name: str, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Groups × treatments matrix of median-over-seeds accuracies for one comparison.

    ``spec`` either compares the level combinations of ``factors`` among the results that pass
    ``where``, or compares named ``configurations`` (name -> filter on the factors, e.g. the
    paper's "Qi et al." = L2/mean/L2/L2/max). ``best_of`` lists factors maximised over per group
    and treatment (the paper's "best NORM per row"); ``models`` and ``tasks`` restrict the groups.
    Every other factor must be constant within a treatment. Groups missing a treatment are dropped.
    """
    best_of = list(spec.get("best_of", []))
    for column in ("model", "task"):
        if f"{column}s" in spec:
            results = results[results[column].isin(spec[f"{column}s"])]
    results = _select(results, spec.get("where", {}))
    if "configurations" in spec:
        parts = []
        for label, configuration in spec["configurations"].items():
            selected = _select(results, configuration)
            if selected.empty:
                raise ValueError(
                    f"comparison {name!r}: configuration {label!r} selects no "
                    "results; is it in the imprinting grid?"
                )
            medians = median_over_seeds(selected)
            medians["treatment"] = label
            parts.append(medians)
        medians = pd.concat(parts, ignore_index=True)
        _check_defined(medians, name, [], best_of, "configurations")
    else:
        if results.empty:
            raise ValueError(f"comparison {name!r} selects no results; check its 'where'")
        factors = list(spec["factors"])
        medians = median_over_seeds(results)
        medians["treatment"] = [treatment_label(row, factors) for row in medians.to_dict("records")]
        _check_defined(medians, name, factors, best_of, "where")
    best = medians.groupby([*GROUP, "treatment"], sort=True)["accuracy"].max()
    matrix = best.unstack("treatment")
    if "configurations" in spec:
        matrix = matrix[list(spec["configurations"])]  # the config's order, not alphabetical
    complete = matrix.dropna(axis=0, how="any")
    if complete.empty:
        raise ValueError(
            f"comparison {name!r}: no group (model × task) has results for every "
            f"treatment ({', '.join(map(str, matrix.columns))})"
        )
    return complete


#: Post-hoc tests after a significant Friedman test, by config name -> name shown on figures.
POSTHOC_TESTS = {
    "nemenyi": "Nemenyi",
    "wilcoxon_holm": "Wilcoxon signed-rank + Holm",
}


@dataclass
class ComparisonResult:
    table: pd.DataFrame  # one row per treatment
    pvalues: pd.DataFrame  # pairwise post-hoc p-values (NaN where no test was run)
    friedman_statistic: float
    friedman_pvalue: float
    critical_difference: float  # Nemenyi's CD of mean ranks; NaN for other post-hoc tests
    n_groups: int
    posthoc: str  # key of POSTHOC_TESTS
    posthoc_run: bool  # False: no significant Friedman test, so no pairwise p-values
    note: str


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per treatment, rank 1 = highest accuracy in a group, ties share the mean rank."""
    return matrix.rank(axis=1, ascending=False, method="average").mean(axis=0)


def nemenyi_critical_difference(n_treatments: int, n_groups: int, alpha: float) -> float:
    """Demšar's (2006) critical difference of mean ranks for the Nemenyi test."""
    import scipy.stats  # here, not at the top: figure jobs import this module for GROUP only

    q = scipy.stats.studentized_range.ppf(1 - alpha, n_treatments, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(n_treatments * (n_treatments + 1) / (6 * n_groups)))


def wilcoxon_holm(matrix: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests over the groups, Holm-adjusted (Benavoli et al., 2016).

    Zero differences are kept in the ranking (Pratt), the conservative choice when treatments
    tie in some groups; two treatments with identical results get p = 1.
    """
    import warnings

    import scikit_posthocs

    with warnings.catch_warnings():
        # scipy warns (0/0 in its normal approximation) for identical pairs and returns p = 1
        warnings.simplefilter("ignore", RuntimeWarning)
        pvalues = scikit_posthocs.posthoc_wilcoxon(
            matrix.to_numpy().T, zero_method="pratt", p_adjust="holm"
        )
    return pd.DataFrame(pvalues.to_numpy(), index=matrix.columns, columns=matrix.columns)


def compare(
    matrix: pd.DataFrame, alpha: float = 0.05, posthoc: str = "nemenyi"
) -> ComparisonResult:
    """Friedman test over the groups, then the chosen post-hoc test if it is significant."""
    import scikit_posthocs
    import scipy.stats

    if posthoc not in POSTHOC_TESTS:
        raise ValueError(f"unknown post-hoc test {posthoc!r}; known: {sorted(POSTHOC_TESTS)}")
    treatments = list(matrix.columns)
    n_groups, n_treatments = matrix.shape
    ranks = average_ranks(matrix)
    statistic = pvalue = cd = float("nan")
    pvalues = pd.DataFrame(np.nan, index=treatments, columns=treatments)
    posthoc_run = False
    if n_treatments < 3 or n_groups < 2:
        note = (
            f"no test: the Friedman test needs at least 3 treatments and 2 groups, "
            f"got {n_treatments} and {n_groups}"
        )
    elif np.all(matrix.to_numpy() == matrix.to_numpy()[:, :1]):
        statistic, pvalue = 0.0, 1.0
        note = "every treatment scores the same in every group: no differences to test"
    else:
        statistic, pvalue = (float(v) for v in scipy.stats.friedmanchisquare(*matrix.to_numpy().T))
        if posthoc == "nemenyi":
            cd = nemenyi_critical_difference(n_treatments, n_groups, alpha)
        if pvalue < alpha:
            if posthoc == "nemenyi":
                values = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy()).to_numpy()
                pvalues = pd.DataFrame(values, index=treatments, columns=treatments)
            else:
                pvalues = wilcoxon_holm(matrix)
            posthoc_run = True
            note = f"Friedman p={pvalue:.3g} < {alpha}: {POSTHOC_TESTS[posthoc]} post-hoc test"
        else:
            note = f"Friedman p={pvalue:.3g} >= {alpha}: not significant, no post-hoc test"
    table = (
        pd.DataFrame(
            {
                "treatment": treatments,
                "mean_accuracy": matrix.mean(axis=0).to_numpy(),
                "std_accuracy": matrix.std(axis=0, ddof=1).to_numpy() if n_groups > 1 else np.nan,
                "mean_rank": ranks.to_numpy(),
                "n_groups": n_groups,
            }
        )
        .sort_values(["mean_rank", "treatment"], kind="stable")
        .reset_index(drop=True)
    )
    return ComparisonResult(
        table, pvalues, statistic, pvalue, cd, n_groups, posthoc, posthoc_run, note
    )


def comparison_table(result: ComparisonResult) -> pd.DataFrame:
    """The per-treatment table with the test results and the post-hoc p-values as columns."""
    table = result.table.copy()
    table["friedman_statistic"] = result.friedman_statistic
    table["friedman_pvalue"] = result.friedman_pvalue
    table["posthoc_test"] = POSTHOC_TESTS[result.posthoc] if result.posthoc_run else "none"
    table["critical_difference"] = result.critical_difference
    order = list(table["treatment"])
    pvalues = result.pvalues.loc[order, order].add_prefix("p_vs_").reset_index(drop=True)
    return pd.concat([table, pvalues], axis=1)


def configuration_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Every configuration: mean and std over groups of its median-over-seeds accuracy, and its
    mean rank among all configurations within a group."""
    medians = median_over_seeds(results)
    medians["rank"] = medians.groupby(list(GROUP))["accuracy"].rank(
        ascending=False, method="average"
    )
    summary = (
        medians.groupby(list(FACTORS), dropna=False, sort=True)
        .agg(
            mean_accuracy=("accuracy", "mean"),
            std_accuracy=("accuracy", "std"),
            mean_rank=("rank", "mean"),
            n_groups=("accuracy", "size"),
        )
        .reset_index()
    )
    return summary.sort_values(["mean_rank", *FACTORS], kind="stable").reset_index(drop=True)


#: How the paper (and its authors' analysis notebook) heads the factors in its tables.
PAPER_FACTOR_NAMES = {
    "gen": "GEN",
    "k": "k",
    "norm_pre": "NORMpre",
    "norm_post": "NORMpost",
    "norm_inf": "NORMinf",
    "agg": "AGG",
    "m": "m",
}


def paper_table(results: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    """A comparison in the IMPRINT paper's table layout (its Table 1 and the tables of Figures
    7-9), built as the authors' analysis notebook builds them.

    Among every configuration that passes the comparison's ``where`` (and ``models`` /
    ``tasks``), each one's median accuracy over seeds is ranked within each group, then
    averaged over groups (:func:`configuration_summary`). One row per treatment: for compared
    ``factors``, each level combination's configuration with the best mean rank over all
    levels of the other factors, whose winning levels fill the remaining columns (the
    notebook's "best in group"); for named ``configurations``, the best-ranked configuration
    each filter selects. Unlike the CD comparison's ``best_of``, which takes the best level per
    group, one configuration stands for a treatment in every group: the paper's choice.

    Columns: ``description``, the compared factors, ``mean_rank``, ``mean_accuracy``,
    ``std_accuracy`` and ``stderr_accuracy`` over groups, ``n_groups``, then the other factors.
    Rows by mean rank (named configurations in the config's order).
    """
    for column in ("model", "task"):
        if f"{column}s" in spec:
            results = results[results[column].isin(spec[f"{column}s"])]
    results = _select(results, spec.get("where", {}))
    summary = configuration_summary(results)
    summary["stderr_accuracy"] = summary["std_accuracy"] / np.sqrt(summary["n_groups"])
    if "configurations" in spec:
        compared: list[str] = []
        rows = []
        for label, configuration in spec["configurations"].items():
            chosen = _select(summary, configuration)
            if chosen.empty:
                raise ValueError(f"configuration {label!r} selects no results")
            rows.append(chosen.iloc[[0]].assign(description=label))  # summary is rank-sorted
        table = pd.concat(rows, ignore_index=True)
    else:
        compared = list(spec["factors"])
        table = summary.groupby(compared, dropna=False, sort=False).head(1)
        table = table.assign(description="best in group").reset_index(drop=True)
    others = [factor for factor in FACTORS if factor not in compared]
    columns = [
        "description",
        *compared,
        "mean_rank",
        "mean_accuracy",
        "std_accuracy",
        "stderr_accuracy",
        "n_groups",
        *others,
    ]
    return table[columns].reset_index(drop=True)


def paper_table_latex(table: pd.DataFrame, caption: str) -> str:
    """:func:`paper_table` as a LaTeX ``table`` (booktabs rules), headed and rounded to two
    decimals as in the paper, to set beside it."""
    shown = table.rename(
        columns={
            **PAPER_FACTOR_NAMES,
            "description": "Description",
            "mean_rank": "Avg. Rank",
            "mean_accuracy": "Avg. Acc.",
            "std_accuracy": "Std",
            "stderr_accuracy": "Stderr",
            "n_groups": "Count",
        }
    )
    shown = shown.astype({name: "object" for name in ("k", "m") if name in shown}).fillna("-")
    text = [name for name in shown.columns if not pd.api.types.is_numeric_dtype(shown[name])]
    return (
        shown.style.hide(axis="index")
        .format(precision=2)
        .format_index(escape="latex", axis=1)
        .format(escape="latex", subset=text)
        .to_latex(hrules=True, caption=_latex_escape(caption), position="t")
    )


#: LaTeX's special characters: pandas escapes cells and headers, not the caption.
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(character, character) for character in text)


def nc1_summary(nc1_rows: pd.DataFrame) -> pd.DataFrame:
    """NC1 per (model, task) and variant (where the table has one): mean and std over seeds."""
    keys = [*GROUP, *(["variant"] if "variant" in nc1_rows else [])]
    return (
        nc1_rows.groupby(keys, sort=True)
        .agg(
            nc1=("nc1", "mean"),
            nc1_std=("nc1", "std"),
            n_seeds=("seed", "size"),
            n_labels=("n_labels", "first"),
        )
        .reset_index()
    )


def gen_time_summary(gen_time: pd.DataFrame) -> pd.DataFrame:
    """GEN wall time per (gen, k) across groups: within a group, the mean over seeds and
    norm_pre; across groups, mean, median, min and max. Rows in the grid's GEN order, then k."""
    from imprint.gen import GEN_METHODS

    per_group = (
        gen_time.groupby([*GROUP, "gen", "k"], dropna=False)["gen_time_s"].mean().reset_index()
    )
    summary = (
        per_group.groupby(["gen", "k"], dropna=False)["gen_time_s"]
        .agg(mean_s="mean", median_s="median", min_s="min", max_s="max", n_groups="size")
        .reset_index()
    )
    order = summary["gen"].map({gen: index for index, gen in enumerate(GEN_METHODS)})
    return (
        summary.assign(_order=order)
        .sort_values(["_order", "k"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


#: The configuration the NC1-vs-gain study compares k-means with the mean under: L2 NORM
#: everywhere and AGG max (the paper's Qi et al. setting).
GAIN_SETTING = {"norm_pre": "l2", "norm_post": "l2", "norm_inf": "l2", "agg": "max"}


def nc1_vs_gain(
    results: pd.DataFrame,
    nc1_rows: pd.DataFrame,
    k_values: Sequence[int],
    tasks: Sequence[str],
) -> pd.DataFrame:
    """The IMPRINT paper's central claim, testable on any run: the higher a task's NC1 (the
    less collapsed its classes), the more k-means proxies gain over one mean per class.

    One row per (model, task, k): ``nc1`` (mean over seeds of the given NC1 rows), the median
    accuracy over seeds of GEN mean and of GEN k-means with k (both under
    :data:`GAIN_SETTING`), their difference ``gain``, and per k the Spearman correlation of NC1
    and gain over all (model, task) points with its p-value (scipy.stats.spearmanr; NaN with
    fewer than 3 points or constant values).
    """
    from scipy.stats import spearmanr

    chosen = results[results["task"].isin(tasks)]
    for column, level in GAIN_SETTING.items():
        chosen = chosen[chosen[column] == level]
    medians = median_over_seeds(chosen)
    mean = medians[medians["gen"] == "mean"].set_index(list(GROUP))["accuracy"]
    collapse = nc1_rows[nc1_rows["task"].isin(tasks)].groupby(list(GROUP))["nc1"].mean()
    frames = []
    for k in k_values:
        kmeans = medians[(medians["gen"] == "kmeans") & (medians["k"] == k)]
        frame = pd.DataFrame(
            {
                "mean_accuracy": mean,
                "kmeans_accuracy": kmeans.set_index(list(GROUP))["accuracy"],
                "nc1": collapse,
            }
        )
        frame = frame.dropna().reset_index()
        frame.insert(2, "k", k)
        frame["gain"] = frame["kmeans_accuracy"] - frame["mean_accuracy"]
        rho, pvalue = float("nan"), float("nan")
        if len(frame) >= 3 and frame["nc1"].nunique() > 1 and frame["gain"].nunique() > 1:
            rho, pvalue = (float(v) for v in spearmanr(frame["nc1"], frame["gain"]))
        frame["spearman_rho"], frame["spearman_pvalue"], frame["n_points"] = rho, pvalue, len(frame)
        frames.append(frame)
    columns = [
        *GROUP,
        "k",
        "nc1",
        "mean_accuracy",
        "kmeans_accuracy",
        "gain",
        "spearman_rho",
        "spearman_pvalue",
        "n_points",
    ]
    return (
        pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    )


def lowshot_summary(
    results: pd.DataFrame, paper: Mapping[str, Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """Qi et al.'s Tables 1-2 from a low-shot table: per (model, task, scope, init,
    embedding_dim, method, n_shot), the mean and standard deviation over seeds of the novel-
    and all-class accuracy, at the final epoch for methods that train.

    ``paper``: per low-shot task, published accuracies to set beside this run's (the task's
    ``paper`` entry: percent per metric and method, one value per n of ``n_shot``); with any,
    the columns ``paper_novel_accuracy`` and ``paper_all_accuracy`` (fractions, empty where
    nothing was published) follow the run's."""
    from imprint.lowshot_methods import LOWSHOT_METHODS

    # tables written before the embedding layer have no embedding_dim column
    layer = ["embedding_dim"] if "embedding_dim" in results else []
    keys = ["model", "task", "scope", "init", *layer, "method", "n_shot"]
    final = results.groupby(keys + ["seed"], dropna=False)["epoch"].transform("max")
    last = results[results["epoch"].isna() | (results["epoch"] == final)]
    summary = (
        last.groupby(keys, dropna=False)
        .agg(
            novel_accuracy_mean=("novel_accuracy", "mean"),
            novel_accuracy_std=("novel_accuracy", "std"),
            all_accuracy_mean=("all_accuracy", "mean"),
            all_accuracy_std=("all_accuracy", "std"),
            epoch=("epoch", "max"),
            n_seeds=("seed", "nunique"),
        )
        .reset_index()
    )
    order = {method: position for position, method in enumerate(LOWSHOT_METHODS)}
    summary["method_order"] = summary["method"].map(order)
    summary = summary.sort_values(
        ["model", "task", "scope", "init", *layer, "method_order", "n_shot"]
    )
    summary = summary.drop(columns="method_order").reset_index(drop=True)
    if any(paper.values() if paper else []):
        for metric in ("novel_accuracy", "all_accuracy"):
            summary[f"paper_{metric}"] = [
                published_accuracy(paper.get(task), metric, method, n)
                for task, method, n in zip(
                    summary["task"], summary["method"], summary["n_shot"], strict=True
                )
            ]
    return summary


def published_accuracy(
    paper: Mapping[str, Any] | None, metric: str, method: str, n_shot: int
) -> float:
    """A published accuracy as a fraction (NaN where the paper has none for this n)."""
    if not paper or method not in paper.get(metric, {}) or n_shot not in paper["n_shot"]:
        return float("nan")
    value = paper[metric][method][paper["n_shot"].index(n_shot)]
    return float("nan") if value is None else value / 100
