import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
import scipy.stats
from statsmodels.stats.multitest import multipletests

from imprint.figures import cd_diagram
from imprint.stats import (
    _check_defined,
    average_ranks,
    compare,
    comparison_matrix,
    comparison_table,
    configuration_summary,
    gen_time_summary,
    lowshot_summary,
    median_over_seeds,
    nc1_summary,
    nc1_vs_gain,
    nemenyi_critical_difference,
    paper_table,
    paper_table_latex,
    treatment_label,
    wilcoxon_holm,
)

# Four groups that rank three treatments the same way: a first, b second, c third.
CONSISTENT = pd.DataFrame(
    [[0.9, 0.8, 0.7], [0.6, 0.5, 0.4], [0.95, 0.9, 0.1], [0.7, 0.6, 0.5]], columns=list("abc")
)


def test_average_ranks_by_hand_with_ties():
    matrix = pd.DataFrame([[0.9, 0.8, 0.7], [0.5, 0.6, 0.6]], columns=["a", "b", "c"])
    np.testing.assert_allclose(average_ranks(matrix), [2.0, 1.75, 2.25])


def test_critical_difference_matches_demsar_table():
    # Demšar (2006), Table 5(a): q_0.05 = 2.569 for 4 classifiers.
    assert nemenyi_critical_difference(4, 10, 0.05) == pytest.approx(
        2.569 * np.sqrt(4 * 5 / (6 * 10)), abs=1e-3
    )


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


def test_friedman_and_nemenyi_by_hand():
    # Rank sums R = (4, 8, 12), N = 4 groups, k = 3 treatments:
    # chi2_F = 12 / (N k (k+1)) * sum(R^2) - 3 N (k+1) = 12/48 * 224 - 48 = 8, and with two
    # degrees of freedom p = exp(-chi2/2) = exp(-4).
    result = compare(CONSISTENT)
    assert result.friedman_statistic == pytest.approx(8.0)
    assert result.friedman_pvalue == pytest.approx(np.exp(-4.0))
    assert list(result.table["mean_rank"]) == [1.0, 2.0, 3.0]
    # Nemenyi: |R_i - R_j| / N over sqrt(k(k+1)/(6N)) = 1/sqrt(1/2) per rank step; the
    # studentized range statistic is that times sqrt(2), i.e. 2 for one step, 4 for two.
    expected = {("a", "b"): 2.0, ("b", "c"): 2.0, ("a", "c"): 4.0}
    for (first, second), q in expected.items():
        p = scipy.stats.studentized_range.sf(q, 3, np.inf)
        assert result.pvalues.loc[first, second] == pytest.approx(p, rel=1e-6)
    assert result.pvalues.loc["a", "c"] < 0.05 < result.pvalues.loc["a", "b"]
    assert result.posthoc_run and "Nemenyi" in result.note


def test_wilcoxon_holm_agrees_with_scipy_and_holm_by_hand():
    rng = np.random.default_rng(1)
    matrix = pd.DataFrame(rng.random((12, 4)) + [0, 0.05, 0.3, 0.6], columns=list("abcd"))
    pvalues = wilcoxon_holm(matrix)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    raw = np.array(
        [
            scipy.stats.wilcoxon(matrix.iloc[:, i], matrix.iloc[:, j], zero_method="pratt").pvalue
            for i, j in pairs
        ]
    )
    # Holm by hand: the i-th smallest of m p-values is multiplied by (m - i), then made
    # monotone (a running maximum) and capped at 1.
    order = np.argsort(raw)
    adjusted = np.empty_like(raw)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(raw) - rank) * raw[index])
        adjusted[index] = min(1.0, running)
    np.testing.assert_allclose(adjusted, multipletests(raw, method="holm")[1])
    for (i, j), expected in zip(pairs, adjusted, strict=True):
        assert pvalues.iloc[i, j] == pytest.approx(expected)
        assert pvalues.iloc[j, i] == pytest.approx(expected)
    assert (np.diag(pvalues) == 1).all()


def test_wilcoxon_holm_is_the_post_hoc_test_on_request():
    rng = np.random.default_rng(0)
    matrix = pd.DataFrame(rng.random((15, 4)) + [0, 0.1, 0.5, 0.6], columns=list("abcd"))
    result = compare(matrix, posthoc="wilcoxon_holm")
    assert result.posthoc_run and "Wilcoxon signed-rank + Holm" in result.note
    np.testing.assert_allclose(result.pvalues.to_numpy(), wilcoxon_holm(matrix).to_numpy())
    assert np.isnan(result.critical_difference)  # a CD belongs to Nemenyi only
    table = comparison_table(result)
    assert set(table["posthoc_test"]) == {"Wilcoxon signed-rank + Holm"}
    with pytest.raises(ValueError, match="unknown post-hoc test 'tukey'"):
        compare(matrix, posthoc="tukey")


def test_identical_treatments_get_p_one_under_wilcoxon():
    matrix = pd.DataFrame(
        {"a": [0.1, 0.5, 0.9, 0.3], "b": [0.1, 0.5, 0.9, 0.3], "c": [0.2, 0.6, 0.95, 0.4]}
    )
    pvalues = wilcoxon_holm(matrix)
    assert pvalues.loc["a", "b"] == 1.0


def test_non_significant_friedman_runs_no_post_hoc():
    matrix = pd.DataFrame([[1, 2, 3], [3, 2, 1], [2, 3, 1], [1, 3, 2]], columns=list("abc"))
    for posthoc in ("nemenyi", "wilcoxon_holm"):
        result = compare(matrix, posthoc=posthoc)
        assert result.friedman_pvalue >= 0.05 and not result.posthoc_run
        assert "not significant" in result.note and result.pvalues.isna().all().all()
        assert set(comparison_table(result)["posthoc_test"]) == {"none"}


def test_cd_diagram_draws_bars_only_after_a_significant_friedman_test():
    # b and c tie in every group, a is always best: significant, b and c joined by a bar.
    significant = compare(
        pd.DataFrame(
            {
                "a": [0.9, 0.8, 0.7, 0.9, 0.8, 0.9, 0.7, 0.8],
                "b": [0.5, 0.4, 0.3, 0.5, 0.4, 0.5, 0.3, 0.4],
                "c": [0.5, 0.4, 0.3, 0.5, 0.4, 0.5, 0.3, 0.4],
            }
        )
    )
    assert significant.posthoc_run
    _, artists = cd_diagram(significant, "t")
    assert len(artists["crossbars"]) >= 1 and len(artists["markers"]) == 3
    not_significant = compare(
        pd.DataFrame([[1, 2, 3], [3, 2, 1], [2, 3, 1], [1, 3, 2]], columns=list("abc"))
    )
    fig, artists = cd_diagram(not_significant, "t")
    assert artists["crossbars"] == [] and len(artists["markers"]) == 3
    assert "no post-hoc test, so no bars" in fig.axes[0].get_title()
    too_few = compare(pd.DataFrame({"a": [1.0, 2.0], "b": [2.0, 3.0]}))
    assert cd_diagram(too_few, "t")[1]["crossbars"] == []


def test_too_few_treatments_or_identical_results_are_reported_not_tested():
    assert "no test" in compare(pd.DataFrame({"a": [1, 2], "b": [2, 3]})).note
    same = compare(pd.DataFrame({"a": [1, 2], "b": [1, 2], "c": [1, 2]}))
    assert same.friedman_pvalue == 1.0 and "same" in same.note


def results_frame():
    rows = []
    for task in ["t1", "t2"]:
        # Skewed seed noise: the median (the noise-free value) differs from the mean.
        for seed, noise in [(0, 0.0), (1, 0.02), (2, -0.10)]:
            for gen, k, base in [("mean", None, 0.5), ("kmeans", 2, 0.6), ("kmeans", 5, 0.7)]:
                for norm_post, bonus in [("none", 0.0), ("l2", 0.1)]:
                    rows.append(
                        dict(
                            model="m",
                            task=task,
                            seed=seed,
                            gen=gen,
                            k=k,
                            norm_pre="l2",
                            norm_post=norm_post,
                            norm_inf="l2",
                            agg="max",
                            m=None,
                            accuracy=base + bonus + noise,
                        )
                    )
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


def methods_spec(**extra):
    return {
        "configurations": {
            "Qi": {"gen": "mean", "norm_post": "l2"},
            "ours": {"gen": "kmeans", "k": 5, "norm_post": "l2"},
            "plain": {"gen": "mean", "norm_post": "none"},
        },
        **extra,
    }


def test_named_configurations_are_compared_in_the_configured_order():
    matrix = comparison_matrix(results_frame(), "methods", methods_spec())
    assert list(matrix.columns) == ["Qi", "ours", "plain"]
    np.testing.assert_allclose(matrix.to_numpy(), [[0.6, 0.8, 0.5], [0.6, 0.8, 0.5]])
    # A configuration may leave a factor open if the comparison maximises over it.
    spec = {
        "configurations": {"mean": {"gen": "mean"}, "k5": {"gen": ["kmeans"], "k": [5]}},
        "best_of": ["norm_post"],
    }
    np.testing.assert_allclose(
        comparison_matrix(results_frame(), "m", spec).to_numpy(), [[0.6, 0.8], [0.6, 0.8]]
    )


def test_named_configuration_errors_name_the_configuration():
    spec = methods_spec()
    spec["configurations"]["ls"] = {"gen": "ls"}
    with pytest.raises(ValueError, match="configuration 'ls' selects no results"):
        comparison_matrix(results_frame(), "methods", spec)
    spec = {"configurations": {"mean": {"gen": "mean"}, "k5": {"gen": "kmeans", "k": 5}}}
    with pytest.raises(ValueError, match="'norm_post' still varies after 'configurations'"):
        comparison_matrix(results_frame(), "methods", spec)


def test_models_and_tasks_restrict_the_groups():
    matrix = comparison_matrix(results_frame(), "methods", methods_spec(tasks=["t2"]))
    assert list(matrix.index) == [("m", "t2")]
    with pytest.raises(ValueError, match="no group"):
        results = results_frame()
        results = results[
            ~((results["task"] == "t1") & (results["gen"] == "mean"))
            & ~((results["task"] == "t2") & results["k"].eq(5).fillna(False))
        ]
        comparison_matrix(results, "methods", methods_spec())


def test_gen_time_summary_by_hand():
    rows = [
        ("m", "t1", 0, "kmeans", 2, "none", 1.0),
        ("m", "t1", 1, "kmeans", 2, "none", 3.0),
        ("m", "t1", 0, "kmeans", 2, "l2", 2.0),
        ("m", "t2", 0, "kmeans", 2, "none", 10.0),
        ("m", "t1", 0, "mean", None, "none", 0.5),
        ("m", "t2", 0, "mean", None, "none", 0.7),
    ]
    table = pd.DataFrame(
        rows, columns=["model", "task", "seed", "gen", "k", "norm_pre", "gen_time_s"]
    ).astype({"k": "Int64"})
    summary = gen_time_summary(table)
    assert list(summary["gen"]) == ["mean", "kmeans"]  # GEN_METHODS order
    kmeans = summary.iloc[1]
    # t1: mean of 1, 3, 2 = 2; t2: 10. Across groups: mean 6, median 6, min 2, max 10.
    assert (
        kmeans["mean_s"],
        kmeans["median_s"],
        kmeans["min_s"],
        kmeans["max_s"],
        kmeans["n_groups"],
    ) == (6.0, 6.0, 2.0, 10.0, 2)
    assert summary.iloc[0]["mean_s"] == pytest.approx(0.6)


def test_treatment_labels_skip_factors_that_do_not_apply():
    assert treatment_label({"gen": "mean", "k": pd.NA}, ["gen", "k"]) == "mean"
    assert treatment_label({"agg": "mnn", "m": 5}, ["agg", "m"]) == "mnn m=5"
    assert (
        treatment_label({"norm_pre": "l2", "norm_post": "quantile"}, ["norm_pre", "norm_post"])
        == "pre=l2 post=quantile"
    )


def test_configuration_summary_ranks_within_groups():
    summary = configuration_summary(results_frame())
    best = summary.iloc[0]
    assert (best["gen"], best["k"], best["norm_post"]) == ("kmeans", 5, "l2")
    assert best["mean_rank"] == 1.0 and best["n_groups"] == 2
    assert best["mean_accuracy"] == pytest.approx(0.8)


def gain_tables():
    """2 models x 3 tasks, 3 seeds; mean and k-means accuracies chosen so that the gains are
    known: median over seeds of the k-means rows minus that of the mean rows."""
    rows, nc1_rows = [], []
    setting = {"norm_pre": "l2", "norm_post": "l2", "norm_inf": "l2", "agg": "max", "m": pd.NA}
    # (model, task): (NC1, gain of k-means over the mean)
    known = {("a", "t1"): (0.1, 0.00), ("a", "t2"): (1.0, 0.05), ("a", "t3"): (3.0, 0.02)}
    known |= {("b", "t1"): (0.5, 0.01), ("b", "t2"): (2.0, 0.08), ("b", "t3"): (9.0, 0.20)}
    nc1_of = {key: nc1 for key, (nc1, _) in known.items()}
    gain_of = {key: gain for key, (_, gain) in known.items()}
    for (model, task), gain in gain_of.items():
        for seed, noise in enumerate((0.0, 0.3, -0.1)):  # medians: the noise-free values
            base = 0.6 + noise
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "seed": seed,
                    "gen": "mean",
                    "k": pd.NA,
                    **setting,
                    "accuracy": base,
                }
            )
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "seed": seed,
                    "gen": "kmeans",
                    "k": 5,
                    **setting,
                    "accuracy": base + gain,
                }
            )
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "seed": seed,
                    "gen": "kmeans",
                    "k": 5,
                    **{**setting, "norm_post": "none"},
                    "accuracy": 0.0,
                }
            )  # not L2: ignored
            nc1_rows.append(
                {"model": model, "task": task, "seed": seed, "nc1": nc1_of[(model, task)]}
            )
    results = pd.DataFrame(rows).astype({"k": "Int64", "m": "Int64"})
    return results, pd.DataFrame(nc1_rows), nc1_of, gain_of


def test_nc1_vs_gain_pairs_each_groups_nc1_with_its_k_means_gain():
    results, nc1_rows, nc1_of, gain_of = gain_tables()
    table = nc1_vs_gain(results, nc1_rows, [5], ["t1", "t2", "t3"])
    assert len(table) == 6 and set(table["k"]) == {5}
    for row in table.to_dict("records"):
        key = (row["model"], row["task"])
        assert row["nc1"] == pytest.approx(nc1_of[key])
        assert row["mean_accuracy"] == pytest.approx(0.6)
        assert row["gain"] == pytest.approx(gain_of[key])
    # Ranks of NC1: 1 3 5 2 4 6; of gain: 1 4 3 2 5 6. d = 0 -1 2 0 -1 0, sum d^2 = 6:
    # rho = 1 - 6 * 6 / (6 * 35) = 29/35.
    assert table["spearman_rho"].iloc[0] == pytest.approx(29 / 35)
    assert 0 < table["spearman_pvalue"].iloc[0] < 0.1 and (table["n_points"] == 6).all()


def test_nc1_vs_gain_leaves_out_tasks_and_k_not_asked_for():
    results, nc1_rows, _, _ = gain_tables()
    table = nc1_vs_gain(results, nc1_rows, [5, 7], ["t1", "t2"])
    assert set(table["task"]) == {"t1", "t2"} and set(table["k"]) == {5}


def test_cd_bars_join_exactly_the_treatments_the_post_hoc_test_does_not_separate():
    # 20 groups: a and b trade first place, c and d trade third: Nemenyi separates {a, b} from
    # {c, d} (rank difference 2 > CD 1.05) but neither pair within.
    rows = [[0.9, 0.89, 0.5, 0.49] if g % 2 else [0.89, 0.9, 0.49, 0.5] for g in range(20)]
    result = compare(pd.DataFrame(rows, columns=list("abcd")))
    ranks = result.table.set_index("treatment")["mean_rank"]
    assert list(ranks[list("abcd")]) == [1.5, 1.5, 3.5, 3.5]
    _, artists = cd_diagram(result, "t")
    spans = sorted(
        (min(line.get_xdata()), max(line.get_xdata()))
        for bars in artists["crossbars"]
        for line in bars
    )
    assert spans == [(1.5, 1.5), (3.5, 3.5)]  # one bar per pair, none across the pairs


def test_the_comparison_tables_p_value_columns_line_up_with_its_rows():
    rng = np.random.default_rng(4)
    matrix = pd.DataFrame(rng.random((12, 4)) + [0.6, 0.0, 0.3, 0.1], columns=list("wxyz"))
    result = compare(matrix)
    table = comparison_table(result).set_index("treatment")
    assert list(table.index) != list("wxyz")  # rows are in rank order, not column order
    for row in "wxyz":
        for column in "wxyz":
            expected = 1.0 if row == column else result.pvalues.loc[row, column]
            assert table.loc[row, f"p_vs_{column}"] == pytest.approx(expected), (row, column)


def paper_results() -> pd.DataFrame:
    """Two groups; per group the best GEN for NORMpre none differs (mean in g1, kmeans in g2),
    but mean has the better mean rank over both."""
    accuracy = {
        ("g1", "none", "mean"): 0.9,
        ("g1", "none", "kmeans"): 0.5,
        ("g1", "l2", "mean"): 0.7,
        ("g1", "l2", "kmeans"): 0.8,
        ("g2", "none", "mean"): 0.4,
        ("g2", "none", "kmeans"): 0.6,
        ("g2", "l2", "mean"): 0.75,
        ("g2", "l2", "kmeans"): 0.3,
    }
    rows = [
        dict(
            model="m",
            task=task,
            seed=seed,
            gen=gen,
            k=5 if gen == "kmeans" else pd.NA,
            norm_pre=pre,
            norm_post="l2",
            norm_inf="l2",
            agg="max",
            m=pd.NA,
            n_proxies=1,
            accuracy=value + (0.01 if seed else -0.01),  # the median over seeds is the value
        )
        for (task, pre, gen), value in accuracy.items()
        for seed in (0, 1)
    ]
    return pd.DataFrame(rows).astype({"k": "Int64", "m": "Int64"})


def test_the_paper_table_takes_per_row_the_configuration_with_the_best_mean_rank():
    table = paper_table(paper_results(), {"factors": ["norm_pre"], "best_of": ["gen", "k"]})
    assert list(table.columns[:8]) == [
        "description",
        "norm_pre",
        "mean_rank",
        "mean_accuracy",
        "std_accuracy",
        "stderr_accuracy",
        "n_groups",
        "gen",
    ]
    # ranks in g1: none/mean 1, l2/kmeans 2, l2/mean 3, none/kmeans 4; in g2: l2/mean 1,
    # none/kmeans 2, none/mean 3, l2/kmeans 4
    row = table.set_index("norm_pre").loc["none"]
    assert row["gen"] == "mean" and row["mean_rank"] == 2.0  # not g2's per-group best, kmeans
    assert row["mean_accuracy"] == pytest.approx(0.65)
    assert row["std_accuracy"] == pytest.approx(np.std([0.9, 0.4], ddof=1))
    assert row["stderr_accuracy"] == pytest.approx(np.std([0.9, 0.4], ddof=1) / np.sqrt(2))
    assert row["n_groups"] == 2 and row["description"] == "best in group"
    assert table.set_index("norm_pre").loc["l2", "gen"] == "mean"
    assert list(table["norm_pre"]) == ["l2", "none"]  # by mean rank (tied: factor order)


def test_the_paper_table_of_named_configurations_keeps_their_order_and_best_match():
    spec = {
        "configurations": {
            "any k-means": {"gen": "kmeans"},
            "Qi et al.": {"gen": "mean", "norm_pre": "l2"},
        }
    }
    table = paper_table(paper_results(), spec)
    assert list(table["description"]) == ["any k-means", "Qi et al."]
    # k-means: l2 (ranks 2, 4) and none (4, 2) tie at 3.0; the factor order breaks the tie
    assert table.loc[0, "mean_rank"] == 3.0 and table.loc[0, "norm_pre"] == "l2"
    assert table.loc[1, "mean_accuracy"] == pytest.approx((0.7 + 0.75) / 2)


def test_the_paper_tables_latex_has_the_papers_headers_and_two_decimals():
    table = paper_table(paper_results(), {"factors": ["norm_pre"], "best_of": ["gen", "k"]})
    latex = paper_table_latex(table, "NORM_pre & co")
    assert "\\caption{NORM\\_pre \\& co}" in latex
    assert "Description & NORMpre & Avg. Rank & Avg. Acc. & Std & Stderr & Count & GEN" in latex
    assert "best in group & none & 2.00 & 0.65 &" in latex
    assert "\\toprule" in latex and "\\bottomrule" in latex


def test_the_comparison_table_has_its_columns_and_values_by_hand():
    result = compare(CONSISTENT)
    table = comparison_table(result)
    assert list(table.columns) == [
        "treatment",
        "mean_accuracy",
        "std_accuracy",
        "mean_rank",
        "n_groups",
        "friedman_statistic",
        "friedman_pvalue",
        "posthoc_test",
        "critical_difference",
        "p_vs_a",
        "p_vs_b",
        "p_vs_c",
    ]
    a = table.iloc[0]
    assert a["treatment"] == "a" and a["n_groups"] == 4 and result.n_groups == 4
    assert a["mean_accuracy"] == pytest.approx((0.9 + 0.6 + 0.95 + 0.7) / 4)
    assert a["std_accuracy"] == pytest.approx(np.std([0.9, 0.6, 0.95, 0.7], ddof=1))
    assert a["friedman_statistic"] == pytest.approx(8.0)
    assert a["friedman_pvalue"] == pytest.approx(np.exp(-4.0))
    assert a["posthoc_test"] == "Nemenyi"
    # Demšar's CD for 3 treatments, 4 groups: q_0.05 = 2.343 (Table 5(a)).
    assert a["critical_difference"] == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 4)), abs=1e-3)
    # Two groups: the standard deviation over them; one group: none.
    two = compare(CONSISTENT.iloc[:2]).table.set_index("treatment")
    assert two.loc["a", "std_accuracy"] == pytest.approx(np.std([0.9, 0.6], ddof=1))
    one = compare(CONSISTENT.iloc[:1]).table
    assert one["std_accuracy"].isna().all() and (one["n_groups"] == 1).all()


def test_a_p_value_equal_to_alpha_is_not_significant():
    pvalue = compare(CONSISTENT).friedman_pvalue
    at_alpha = compare(CONSISTENT, alpha=pvalue)
    assert not at_alpha.posthoc_run and "not significant" in at_alpha.note
    assert compare(CONSISTENT, alpha=pvalue * 1.001).posthoc_run


def test_identical_results_have_friedman_statistic_zero_and_no_post_hoc():
    same = compare(pd.DataFrame({"a": [1, 2], "b": [1, 2], "c": [1, 2]}))
    assert same.friedman_statistic == 0.0 and same.friedman_pvalue == 1.0
    assert same.note.startswith("every treatment scores the same in every group")
    assert same.posthoc_run is False and same.pvalues.isna().all().all()


def test_min_and_max_in_where_bound_k_and_keep_methods_without_it():
    def columns(where):
        return list(
            comparison_matrix(
                results_frame(), "gen", {"factors": ["gen", "k"], "where": where}
            ).columns
        )

    l2 = {"norm_post": ["l2"]}
    assert columns({**l2, "k": {"min": 5}}) == ["kmeans k=5", "mean"]
    assert columns({**l2, "k": {"min": 2}}) == ["kmeans k=2", "kmeans k=5", "mean"]
    assert columns({**l2, "k": {"min": 2, "max": 2}}) == ["kmeans k=2", "mean"]
    assert columns({**l2, "k": {"min": 3, "max": 5}}) == ["kmeans k=5", "mean"]
    assert columns({**l2, "k": {"max": 5}}) == ["kmeans k=2", "kmeans k=5", "mean"]


def test_a_group_missing_a_treatment_is_dropped_not_the_treatment():
    results = results_frame()
    results = results[~((results["task"] == "t1") & results["k"].eq(5).fillna(False))]
    matrix = comparison_matrix(results, "methods", methods_spec())
    assert list(matrix.columns) == ["Qi", "ours", "plain"] and list(matrix.index) == [("m", "t2")]
    results = results[~((results["task"] == "t2") & (results["gen"] == "mean"))]
    with pytest.raises(
        ValueError,
        match=r"no group \(model × task\) has results for every "
        r"treatment \(Qi, ours, plain\)",
    ):
        comparison_matrix(results, "methods", methods_spec())


def test_the_models_key_restricts_the_groups():
    results = pd.concat([results_frame(), results_frame().assign(model="n", accuracy=0.1)])
    matrix = comparison_matrix(results, "methods", methods_spec(models=["n"]))
    assert list(matrix.index) == [("n", "t1"), ("n", "t2")]
    table = paper_table(results, methods_spec(models=["n"], tasks=["t2"]))
    assert (table["n_groups"] == 1).all() and (table["mean_accuracy"] == 0.1).all()


def test_errors_name_the_comparison_and_where_the_factor_is_left_open():
    with pytest.raises(
        ValueError, match="comparison 'gen': factor 'norm_post' still varies after 'where'; fix"
    ):
        comparison_matrix(results_frame(), "gen", {"factors": ["gen", "k"]})
    spec = {"configurations": {"mean": {"gen": "mean"}, "k5": {"gen": "kmeans", "k": 5}}}
    with pytest.raises(
        ValueError,
        match="comparison 'mine': factor 'norm_post' still varies after 'configurations'",
    ):
        comparison_matrix(results_frame(), "mine", spec)


def test_a_factor_that_is_empty_in_some_rows_and_set_in_others_still_varies():
    medians = pd.DataFrame(
        {"model": "m", "task": "t", "treatment": "x", "gen": "kmeans", "k": [pd.NA, 5]}
    ).astype({"k": "Int64"})
    for factor in ("norm_pre", "norm_post", "norm_inf", "agg", "m"):
        medians[factor] = "l2" if factor != "m" else pd.NA
    with pytest.raises(ValueError, match="factor 'k' still varies"):
        _check_defined(medians, "c", ["gen"], [], "where")
    _check_defined(medians, "c", ["gen"], ["k"], "where")  # maximised over: fine


def test_medians_over_seeds_are_one_sorted_row_per_configuration():
    results = results_frame().sample(frac=1.0, random_state=0)  # rows in any order
    medians = median_over_seeds(results)
    assert len(medians) == 2 * 3 * 2  # tasks x (mean, kmeans k=2, k=5) x norm_post
    keys = ["task", "gen", "k", "norm_post"]
    assert medians[keys].equals(medians.sort_values(keys)[keys].reset_index(drop=True))
    # the noise (0, +0.02, -0.10) has median 0: the mean would be 0.027 lower
    row = medians[(medians["gen"] == "mean") & (medians["norm_post"] == "l2")].iloc[0]
    assert row["accuracy"] == pytest.approx(0.6)


def test_treatment_labels_show_integer_k_and_go_on_after_an_empty_factor():
    factors = ["gen", "k", "norm_post"]
    assert treatment_label({"gen": "kmeans", "k": 5.0, "norm_post": "l2"}, factors) == (
        "kmeans k=5 post=l2"
    )
    assert treatment_label({"gen": "mean", "k": np.nan, "norm_post": "l2"}, factors) == (
        "mean post=l2"
    )
    assert treatment_label({"agg": "mnn", "m": 3.0}, ["agg", "m"]) == "mnn m=3"


def test_summaries_have_exactly_their_columns():
    assert list(configuration_summary(results_frame()).columns) == [
        "gen",
        "k",
        "norm_pre",
        "norm_post",
        "norm_inf",
        "agg",
        "m",
        "mean_accuracy",
        "std_accuracy",
        "mean_rank",
        "n_groups",
    ]
    gen_time = pd.DataFrame(
        [("m", "t", 0, "mean", None, "l2", 0.5)],
        columns=["model", "task", "seed", "gen", "k", "norm_pre", "gen_time_s"],
    ).astype({"k": "Int64"})
    assert list(gen_time_summary(gen_time).columns) == [
        "gen",
        "k",
        "mean_s",
        "median_s",
        "min_s",
        "max_s",
        "n_groups",
    ]


def test_spearman_needs_three_points_and_varying_nc1_and_gain():
    results, nc1_rows, _, _ = gain_tables()
    results, nc1_rows = results[results["model"] == "a"], nc1_rows[nc1_rows["model"] == "a"]

    def rho(results, nc1_rows, tasks=("t1", "t2", "t3")):
        table = nc1_vs_gain(results, nc1_rows, [5], list(tasks))
        return table["spearman_rho"].iloc[0], table["n_points"].iloc[0]

    rho_two, points = rho(results, nc1_rows, ["t1", "t2"])
    assert np.isnan(rho_two) and points == 2  # 2 points: no correlation
    # 3 points: NC1 0.1 < 1 < 3, gains 0, 0.05, 0.02: ranks (1 2 3) and (1 3 2), rho = 1/2
    assert rho(results, nc1_rows) == (pytest.approx(0.5), 3)
    # Two distinct values, tied ranks (1, 2.5, 2.5) against (1, 3, 2) or the reverse:
    # Pearson's r of the ranks = 1.5 / sqrt(1.5 * 2) = sqrt(3) / 2.
    two_nc1_levels = nc1_rows.assign(nc1=nc1_rows["nc1"].where(nc1_rows["task"] != "t3", 1.0))
    assert rho(results, two_nc1_levels)[0] == pytest.approx(np.sqrt(3) / 2)
    kmeans_t3 = (results["task"] == "t3") & (results["gen"] == "kmeans")
    two_gain_levels = results.assign(
        accuracy=results["accuracy"].where(~kmeans_t3, results["accuracy"] + 0.03)
    )  # gains 0, 0.05, 0.05
    assert rho(two_gain_levels, nc1_rows)[0] == pytest.approx(np.sqrt(3) / 2)
    constant_nc1 = nc1_rows.assign(nc1=1.0)
    assert np.isnan(rho(results, constant_nc1)[0])


def test_nc1_vs_gain_without_k_values_is_an_empty_table_with_the_columns():
    results, nc1_rows, _, _ = gain_tables()
    table = nc1_vs_gain(results, nc1_rows, [], ["t1"])
    assert table.empty and list(table.columns) == [
        "model",
        "task",
        "k",
        "nc1",
        "mean_accuracy",
        "kmeans_accuracy",
        "gain",
        "spearman_rho",
        "spearman_pvalue",
        "n_points",
    ]


def test_the_paper_tables_where_and_empty_configurations():
    spec = {"factors": ["norm_pre"], "best_of": ["gen", "k"], "where": {"gen": ["kmeans"]}}
    table = paper_table(paper_results(), spec)
    assert set(table["gen"]) == {"kmeans"}
    with pytest.raises(ValueError, match="configuration 'ls' selects no results"):
        paper_table(paper_results(), {"configurations": {"ls": {"gen": "ls"}}})


def test_the_paper_table_keeps_a_level_combination_without_k():
    table = paper_table(paper_results(), {"factors": ["gen", "k"], "best_of": ["norm_pre"]})
    assert list(table["gen"]) == ["mean", "kmeans"]  # mean (k empty) ranks first
    assert table["k"].isna().tolist() == [True, False]


def test_the_paper_tables_latex_escapes_cells_and_marks_empty_factors():
    spec = {"configurations": {"Qi_et al. & co": {"gen": "mean", "norm_pre": "l2"}}}
    latex = paper_table_latex(paper_table(paper_results(), spec), "c")
    assert "\\begin{table}[t]" in latex
    assert "Qi\\_et al. \\& co &" in latex
    # k and m do not apply to GEN mean with AGG max: shown as "-"
    row = next(line for line in latex.splitlines() if line.startswith("Qi"))
    assert row.rstrip(" \\").split(" & ")[-7:] == ["mean", "-", "l2", "l2", "l2", "max", "-"]


def test_nc1_summary_by_hand():
    rows = pd.DataFrame(
        [
            ("m", "t2", 0, "papyan", 2.0, 3),
            ("m", "t2", 1, "papyan", 4.0, 3),
            ("m", "t2", 2, "papyan", 9.0, 3),
            ("m", "t2", 0, "imprint_code", 1.0, 3),
            ("m", "t1", 0, "papyan", 0.5, 2),
        ],
        columns=["model", "task", "seed", "variant", "nc1", "n_labels"],
    )
    summary = nc1_summary(rows)
    assert list(summary.columns) == [
        "model",
        "task",
        "variant",
        "nc1",
        "nc1_std",
        "n_seeds",
        "n_labels",
    ]
    assert list(zip(summary["task"], summary["variant"], strict=True)) == [
        ("t1", "papyan"),
        ("t2", "imprint_code"),
        ("t2", "papyan"),
    ]
    t2 = summary.iloc[2]
    assert t2["nc1"] == pytest.approx(5.0) and t2["nc1_std"] == pytest.approx(
        np.std([2, 4, 9], ddof=1)
    )
    assert t2["n_seeds"] == 3 and t2["n_labels"] == 3 and summary.iloc[0]["n_labels"] == 2
    # a table without variants: one row per group
    plain = nc1_summary(rows[rows["variant"] == "papyan"].drop(columns="variant"))
    assert list(plain.columns) == ["model", "task", "nc1", "nc1_std", "n_seeds", "n_labels"]
    assert list(plain["nc1"]) == pytest.approx([0.5, 5.0])


def lowshot_rows():
    """Two seeds of imprint (no epochs) and imprint_ft (seed 0 trained 3 epochs, seed 1 two),
    at n_shot 1 and 5, plus rand_noft at n_shot 1."""
    rows = []
    for n_shot in (5, 1):
        for seed, (start, end) in enumerate([(0.1, 0.5), (0.3, 0.9)]):
            epochs = [0, 1, 2] if seed == 0 else [0, 1]
            for epoch in epochs:
                value = end if epoch == epochs[-1] else start
                rows.append(
                    dict(
                        seed=seed,
                        method="imprint_ft",
                        epoch=epoch,
                        n_shot=n_shot,
                        novel_accuracy=value + n_shot,
                        all_accuracy=value / 2,
                    )
                )
            rows.append(
                dict(
                    seed=seed,
                    method="imprint",
                    epoch=pd.NA,
                    n_shot=n_shot,
                    novel_accuracy=start,
                    all_accuracy=start + seed,
                )
            )
    rows.append(
        dict(
            seed=0, method="rand_noft", epoch=pd.NA, n_shot=1, novel_accuracy=0.0, all_accuracy=0.4
        )
    )
    table = pd.DataFrame(rows).assign(model="m", task="t", scope="full", init="mean")
    return table.astype({"epoch": "Int64"})


def test_the_lowshot_summary_takes_each_seeds_final_epoch_and_averages_over_seeds():
    summary = lowshot_summary(lowshot_rows())
    assert list(summary.columns) == [
        "model",
        "task",
        "scope",
        "init",
        "method",
        "n_shot",
        "novel_accuracy_mean",
        "novel_accuracy_std",
        "all_accuracy_mean",
        "all_accuracy_std",
        "epoch",
        "n_seeds",
    ]
    # Qi et al.'s order of methods, then n_shot
    assert list(zip(summary["method"], summary["n_shot"], strict=True)) == [
        ("rand_noft", 1),
        ("imprint", 1),
        ("imprint", 5),
        ("imprint_ft", 1),
        ("imprint_ft", 5),
    ]
    ft = summary.iloc[4]
    assert ft["novel_accuracy_mean"] == pytest.approx(0.7 + 5)  # the final epochs: 0.5, 0.9
    assert ft["novel_accuracy_std"] == pytest.approx(np.std([0.5, 0.9], ddof=1))
    assert ft["all_accuracy_mean"] == pytest.approx(0.35)
    assert ft["all_accuracy_std"] == pytest.approx(np.std([0.25, 0.45], ddof=1))
    assert ft["epoch"] == 2 and ft["n_seeds"] == 2
    imprint = summary.iloc[1]
    assert imprint["novel_accuracy_mean"] == pytest.approx(0.2)
    assert imprint["all_accuracy_mean"] == pytest.approx(0.7) and imprint["n_seeds"] == 2
    assert pd.isna(imprint["epoch"]) and np.isnan(summary.iloc[0]["novel_accuracy_std"])


def test_wilcoxon_holm_keeps_zero_differences_in_the_ranking():
    # a and b tie in 20 of 60 groups: Pratt's method ranks those zeros (then drops them),
    # Wilcoxon's original method drops them first: p 0.050 against 0.015 here.
    rng = np.random.default_rng(0)
    a = rng.random(60)
    b = a + np.r_[np.zeros(20), rng.normal(0.02, 0.05, 40)]
    c = a + 0.3
    pvalues = wilcoxon_holm(pd.DataFrame({"a": a, "b": b, "c": c}))
    raw = {
        method: scipy.stats.wilcoxon(a, b, zero_method=method).pvalue
        for method in ("pratt", "wilcox")
    }
    assert raw["pratt"] > 2 * raw["wilcox"]
    pratt = [
        scipy.stats.wilcoxon(x, y, zero_method="pratt").pvalue for x, y in [(a, b), (a, c), (b, c)]
    ]
    assert pvalues.loc["a", "b"] == pytest.approx(multipletests(pratt, method="holm")[1][0])
