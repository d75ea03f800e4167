import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
import scipy.stats

from imprint.stats import (
    average_ranks,
    compare,
    comparison_matrix,
    configuration_summary,
    nemenyi_critical_difference,
    treatment_label,
)


def test_average_ranks_by_hand_with_ties():
    matrix = pd.DataFrame([[0.9, 0.8, 0.7], [0.5, 0.6, 0.6]], columns=["a", "b", "c"])
    np.testing.assert_allclose(average_ranks(matrix), [2.0, 1.75, 2.25])


def test_critical_difference_matches_demsar_table():
    # Demšar (2006), Table 5(a): q_0.05 = 2.569 for 4 classifiers.
    assert nemenyi_critical_difference(4, 10, 0.05) == pytest.approx(
        2.569 * np.sqrt(4 * 5 / (6 * 10)), abs=1e-3)


def test_friedman_and_nemenyi_agree_with_scipy_and_scikit_posthocs():
    rng = np.random.default_rng(0)
    matrix = pd.DataFrame(rng.random((15, 4)) + [0, 0.1, 0.5, 0.6], columns=list("abcd"))
    result = compare(matrix, alpha=0.05)
    expected = scipy.stats.friedmanchisquare(*matrix.to_numpy().T)
    assert result.friedman_statistic == pytest.approx(expected.statistic)
    assert result.friedman_pvalue == pytest.approx(expected.pvalue)
    assert result.friedman_pvalue < 0.05
    posthoc = scikit_posthocs.posthoc_nemenyi_friedman(matrix.to_numpy())
    np.testing.assert_allclose(result.pvalues.to_numpy(), posthoc.to_numpy())
    table = result.table.set_index("treatment")
    np.testing.assert_allclose(table.loc[list("abcd"), "mean_accuracy"], matrix.mean())
    np.testing.assert_allclose(table.loc[list("abcd"), "mean_rank"], average_ranks(matrix))


def test_non_significant_friedman_runs_no_post_hoc():
    matrix = pd.DataFrame([[1, 2, 3], [3, 2, 1], [2, 3, 1], [1, 3, 2]], columns=list("abc"))
    result = compare(matrix)
    assert result.friedman_pvalue >= 0.05
    assert "not significant" in result.note and result.pvalues.isna().all().all()


def test_too_few_treatments_or_identical_results_are_reported_not_tested():
    assert "no test" in compare(pd.DataFrame({"a": [1, 2], "b": [2, 3]})).note
    same = compare(pd.DataFrame({"a": [1, 2], "b": [1, 2], "c": [1, 2]}))
    assert same.friedman_pvalue == 1.0 and "same" in same.note


def results_frame():
    rows = []
    for task in ["t1", "t2"]:
        for seed, noise in [(0, 0.0), (1, 0.02), (2, -0.02)]:
            for gen, k, base in [("mean", None, 0.5), ("kmeans", 2, 0.6), ("kmeans", 5, 0.7)]:
                for norm_post, bonus in [("none", 0.0), ("l2", 0.1)]:
                    rows.append(dict(model="m", task=task, seed=seed, gen=gen, k=k,
                                     norm_pre="l2", norm_post=norm_post, norm_inf="l2",
                                     agg="max", m=None, accuracy=base + bonus + noise))
    return pd.DataFrame(rows).astype({"k": "Int64", "m": "Int64"})


def test_comparison_matrix_takes_median_over_seeds_and_best_of():
    spec = {"factors": ["gen", "k"], "best_of": ["norm_post"]}
    matrix = comparison_matrix(results_frame(), "gen", spec)
    assert list(matrix.columns) == ["kmeans k=2", "kmeans k=5", "mean"]
    np.testing.assert_allclose(matrix.to_numpy(), [[0.7, 0.8, 0.6], [0.7, 0.8, 0.6]])


def test_where_filters_and_keeps_methods_without_k():
    spec = {"factors": ["gen", "k"], "where": {"k": {"max": 2}, "norm_post": ["l2"]}}
    matrix = comparison_matrix(results_frame(), "gen", spec)
    assert list(matrix.columns) == ["kmeans k=2", "mean"]


def test_a_factor_left_varying_or_an_empty_selection_is_an_error():
    with pytest.raises(ValueError, match="'norm_post' still varies"):
        comparison_matrix(results_frame(), "gen", {"factors": ["gen", "k"]})
    with pytest.raises(ValueError, match="selects no results"):
        comparison_matrix(results_frame(), "x", {"factors": ["gen"], "where": {"gen": ["fps"]}})


def test_treatment_labels_skip_factors_that_do_not_apply():
    assert treatment_label({"gen": "mean", "k": pd.NA}, ["gen", "k"]) == "mean"
    assert treatment_label({"agg": "mnn", "m": 5}, ["agg", "m"]) == "mnn m=5"
    assert treatment_label({"norm_pre": "l2", "norm_post": "quantile"},
                           ["norm_pre", "norm_post"]) == "pre=l2 post=quantile"


def test_configuration_summary_ranks_within_groups():
    summary = configuration_summary(results_frame())
    best = summary.iloc[0]
    assert (best["gen"], best["k"], best["norm_post"]) == ("kmeans", 5, "l2")
    assert best["mean_rank"] == 1.0 and best["n_groups"] == 2
    assert best["mean_accuracy"] == pytest.approx(0.8)
