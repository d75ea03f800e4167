"""Statistics over result tables: medians over seeds, ranks, Friedman + Nemenyi, CD diagrams.

A *group* is one (model, task): the blocks of the Friedman test. A *treatment* is a combination of
the compared factors. Within a group, a treatment's score is its median accuracy over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from imprint.grid import FACTORS

GROUP = ("model", "task")
SHORT_NAMES = {"norm_pre": "pre", "norm_post": "post", "norm_inf": "inf"}


def median_over_seeds(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (group, configuration): the median accuracy over seeds."""
    keys = [*GROUP, *FACTORS]
    return (results.groupby(keys, dropna=False, sort=True)["accuracy"].median().reset_index())


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


def comparison_matrix(results: pd.DataFrame, name: str, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Groups × treatments matrix of median-over-seeds accuracies for one comparison.

    ``spec``: ``factors`` (compared), ``where`` (filters), ``best_of`` (factors maximised over per
    group and treatment, the paper's "best NORM per row"). Every other factor must be constant
    after filtering, so that a treatment is one well-defined configuration.
    """
    factors = list(spec["factors"])
    best_of = list(spec.get("best_of", []))
    selected = results
    for factor, condition in spec.get("where", {}).items():
        selected = selected[_matches(selected[factor], condition)]
    if selected.empty:
        raise ValueError(f"comparison {name!r} selects no results; check its 'where'")
    medians = median_over_seeds(selected)
    for factor in FACTORS:
        if factor in factors or factor in best_of:
            continue
        per_cell = medians.groupby([*GROUP, *factors], dropna=False)[factor].nunique(dropna=False)
        if (per_cell > 1).any():
            raise ValueError(
                f"comparison {name!r}: factor {factor!r} still varies after 'where'; fix it in "
                f"'where', compare it in 'factors' or maximise over it in 'best_of'"
            )
    medians["treatment"] = [treatment_label(row, factors) for row in medians.to_dict("records")]
    best = medians.groupby([*GROUP, "treatment"], sort=True)["accuracy"].max()
    matrix = best.unstack("treatment")
    return matrix.dropna(axis=0, how="any")


@dataclass
class ComparisonResult:
    table: pd.DataFrame  # one row per treatment
    pvalues: pd.DataFrame  # pairwise post-hoc p-values (NaN where no test was run)
    friedman_statistic: float
    friedman_pvalue: float
    critical_difference: float
    n_groups: int
    note: str


def average_ranks(matrix: pd.DataFrame) -> pd.Series:
    """Mean rank per treatment, rank 1 = highest accuracy in a group, ties share the mean rank."""
    return matrix.rank(axis=1, ascending=False, method="average").mean(axis=0)


def nemenyi_critical_difference(n_treatments: int, n_groups: int, alpha: float) -> float:
    """Demšar's (2006) critical difference of mean ranks for the Nemenyi test."""
    q = scipy.stats.studentized_range.ppf(1 - alpha, n_treatments, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(n_treatments * (n_treatments + 1) / (6 * n_groups)))


def compare(matrix: pd.DataFrame, alpha: float = 0.05) -> ComparisonResult:
    """Friedman test over the groups, then the Nemenyi post-hoc test if it is significant."""
    import scikit_posthocs

    treatments = list(matrix.columns)
    n_groups, n_treatments = matrix.shape
    ranks = average_ranks(matrix)
    statistic = pvalue = cd = float("nan")
    pvalues = pd.DataFrame(np.nan, index=treatments, columns=treatments)
    if n_treatments < 3 or n_groups < 2:
        note = (f"no test: the Friedman test needs at least 3 treatments and 2 groups, "
                f"got {n_treatments} and {n_groups}")
    elif np.all(matrix.to_numpy() == matrix.to_numpy()[:, :1]):
        statistic, pvalue = 0.0, 1.0
        note = "every treatment scores the same in every group: no differences to test"
    else:
        statistic, pvalue = (float(v) for v in
                             scipy.stats.friedmanchisquare(*matrix.to_numpy().T))
        cd = nemenyi_critical_difference(n_treatments, n_groups, alpha)
        if pvalue < alpha:
            posthoc = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy())
            pvalues = pd.DataFrame(posthoc.to_numpy(), index=treatments, columns=treatments)
            note = f"Friedman p={pvalue:.3g} < {alpha}: Nemenyi post-hoc test"
        else:
            note = f"Friedman p={pvalue:.3g} >= {alpha}: not significant, no post-hoc test"
    table = pd.DataFrame({
        "treatment": treatments,
        "mean_accuracy": matrix.mean(axis=0).to_numpy(),
        "std_accuracy": matrix.std(axis=0, ddof=1).to_numpy() if n_groups > 1 else np.nan,
        "mean_rank": ranks.to_numpy(),
        "n_groups": n_groups,
    }).sort_values(["mean_rank", "treatment"], kind="stable").reset_index(drop=True)
    return ComparisonResult(table, pvalues, statistic, pvalue, cd, n_groups, note)


def comparison_table(result: ComparisonResult) -> pd.DataFrame:
    """The per-treatment table with the test results and the post-hoc p-values as columns."""
    table = result.table.copy()
    table["friedman_statistic"] = result.friedman_statistic
    table["friedman_pvalue"] = result.friedman_pvalue
    table["critical_difference"] = result.critical_difference
    order = list(table["treatment"])
    pvalues = result.pvalues.loc[order, order].add_prefix("p_vs_").reset_index(drop=True)
    return pd.concat([table, pvalues], axis=1)


def draw_cd_diagram(
    result: ComparisonResult,
    title: str,
    path,
    alpha: float = 0.05,
    file_format: str | None = None,
) -> None:
    """Critical-difference diagram (scikit-posthocs) of a comparison, saved to ``path``.

    Treatments joined by a bar are not significantly different. Without a significant Friedman
    test every treatment is joined; with too few treatments the ranks alone are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scikit_posthocs

    ranks = result.table.set_index("treatment")["mean_rank"]
    significance = result.pvalues.fillna(1.0)
    height = 1.2 + 0.22 * len(ranks)
    fig, ax = plt.subplots(figsize=(8, height))
    scikit_posthocs.critical_difference_diagram(
        ranks, significance, ax=ax, alpha=alpha,
        cd=None if np.isnan(result.critical_difference) else result.critical_difference,
        label_props={"fontsize": 8},
    )
    ax.set_title(f"{title}\n{result.note}; {result.n_groups} groups (model × task); "
                 "mean rank, 1 = best", fontsize=9, pad=28)
    fig.tight_layout()
    # No creation date in PDFs, so that equal results give equal files.
    metadata = {"CreationDate": None} if (file_format or str(path)).endswith("pdf") else None
    fig.savefig(path, format=file_format, metadata=metadata)
    plt.close(fig)


def configuration_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Every configuration: mean and std over groups of its median-over-seeds accuracy, and its
    mean rank among all configurations within a group."""
    medians = median_over_seeds(results)
    medians["rank"] = medians.groupby(list(GROUP))["accuracy"].rank(ascending=False,
                                                                     method="average")
    summary = medians.groupby(list(FACTORS), dropna=False, sort=True).agg(
        mean_accuracy=("accuracy", "mean"),
        std_accuracy=("accuracy", "std"),
        mean_rank=("rank", "mean"),
        n_groups=("accuracy", "size"),
    ).reset_index()
    return summary.sort_values(["mean_rank", *FACTORS], kind="stable").reset_index(drop=True)


def nc1_summary(nc1_rows: pd.DataFrame) -> pd.DataFrame:
    """NC1 per (model, task): mean and std over seeds."""
    return nc1_rows.groupby(list(GROUP), sort=True).agg(
        nc1=("nc1", "mean"), nc1_std=("nc1", "std"), n_seeds=("seed", "size"),
        n_labels=("n_labels", "first")).reset_index()
