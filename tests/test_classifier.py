import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from imprint import ImprintingClassifier
from imprint.gen import GEN_METHODS
from imprint.grid import Grid, run_grid


@parametrize_with_checks(
    [ImprintingClassifier(gen=gen, k=2, random_state=0) for gen in GEN_METHODS]
    + [
        ImprintingClassifier(gen="kmeans", k=3, agg="mnn", m=3, random_state=0),
        ImprintingClassifier(
            gen="kmeans",
            k=3,
            norm_pre="none",
            norm_post="quantile",
            norm_inf="none",
            random_state=0,
        ),
    ]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.5, random_state=0, stratify=y)


def test_works_in_cross_validation_and_beats_chance(digits):
    x, _, y, _ = digits
    scores = cross_val_score(ImprintingClassifier(gen="mean", random_state=0), x, y, cv=3)
    assert scores.mean() > 0.8


def test_params_round_trip():
    clf = ImprintingClassifier(gen="kmeans", k=5, agg="mnn", m=3, ls_lambda=0.5)
    params = clf.get_params()
    assert params["k"] == 5 and params["agg"] == "mnn" and params["ls_lambda"] == 0.5
    assert clone(clf).set_params(k=7).k == 7


def test_fitted_proxies_are_grouped_by_class_in_class_order(digits):
    x, _, y, _ = digits
    labels = np.where(y % 2 == 0, "even", "odd")
    clf = ImprintingClassifier(gen="kmeans", k=4, random_state=0).fit(x, labels)
    assert clf.proxies_.shape == (8, 64)
    np.testing.assert_array_equal(clf.proxy_labels_, ["even"] * 4 + ["odd"] * 4)
    np.testing.assert_allclose(np.linalg.norm(clf.proxies_, axis=1), 1.0)
    assert set(clf.predict(x[:10])) <= {"even", "odd"}


def test_invalid_parameters_are_rejected_by_name(digits):
    x, _, y, _ = digits
    with pytest.raises(ValueError, match="'gen' parameter"):
        ImprintingClassifier(gen="median").fit(x, y)
    with pytest.raises(ValueError, match="'k' parameter"):
        ImprintingClassifier(k=0).fit(x, y)
    with pytest.raises(ValueError, match="'m' parameter"):
        ImprintingClassifier(m=0).fit(x, y)
    with pytest.raises(ValueError, match="NaN"):
        ImprintingClassifier().fit(np.full((4, 2), np.nan), [0, 0, 1, 1])


@pytest.mark.parametrize("compat", ["none", "paper"])
def test_the_grid_gives_exactly_the_classifier_accuracy_for_every_configuration(digits, compat):
    x_train, x_test, y_train, y_test = digits
    # compat "paper" changes k-means (kmeans, kls), k-medoids, random and fps only; "none"
    # covers the rest
    paper_gens = ["random", "kmeans", "kmedoids", "fps", "kls"]
    gens = list(GEN_METHODS) if compat == "none" else paper_gens
    grid = Grid(
        compat=compat,
        gen=gens,
        k=[1, 3],
        norm_pre=["none", "l2"],
        norm_post=["none", "l2", "quantile"],
        norm_inf=["none", "l2"],
        agg=["max", "mnn"],
        m=[1, 4],
        ls_lambda=1e-3,
    )
    table, timing = run_grid(x_train, y_train, x_test, y_test, grid, seed=5)
    # norm_pre x (all, mean, ls + 7 k-methods x 2 k), or x (5 k-methods x 2 k)
    assert len(timing) == (2 * (3 + 7 * 2) if compat == "none" else 2 * 5 * 2)
    assert (timing["gen_time_s"] >= 0).all()
    # 2 NORMpre x 3 NORMpost x 2 NORMinf x (max, mnn m=1, mnn m=4) per GEN and k
    assert len(table) == 36 * (3 + 7 * 2 if compat == "none" else 5 * 2)
    # fit reads neither NORMinf nor AGG nor m (predict does): one fit per GEN, k and NORM, the
    # predict-time parameters set on it for each configuration
    fitted = {}
    for row in table.to_dict("records"):
        params = dict(
            gen=row["gen"],
            k=1 if pd.isna(row["k"]) else int(row["k"]),
            norm_pre=row["norm_pre"],
            norm_post=row["norm_post"],
            norm_inf=row["norm_inf"],
            agg=row["agg"],
            m=1 if pd.isna(row["m"]) else int(row["m"]),
        )
        fit_key = (params["gen"], params["k"], params["norm_pre"], params["norm_post"])
        if fit_key not in fitted:
            fitted[fit_key] = ImprintingClassifier(
                **params, ls_lambda=1e-3, random_state=5, compat=compat
            ).fit(x_train, y_train)
        clf = fitted[fit_key].set_params(**params)
        assert clf.score(x_test, y_test) == row["accuracy"], row
    # ... which a fresh fit with every parameter set confirms
    for params in ({"norm_inf": "none", "agg": "mnn", "m": 4}, {"norm_inf": "l2", "agg": "max"}):
        fresh = ImprintingClassifier(
            gen="kmeans", k=3, **params, ls_lambda=1e-3, random_state=5, compat=compat
        ).fit(x_train, y_train)
        shared = fitted[("kmeans", 3, "l2", "l2")]
        np.testing.assert_array_equal(fresh.proxies_, shared.proxies_)


DETERMINISTIC = [  # every GEN whose proxies do not depend on float rounding of a random draw
    {"gen": gen, "k": 3, "norm_pre": pre, "norm_post": post, "norm_inf": inf, "agg": agg, "m": 4}
    for gen in ("all", "mean", "covmax", "ls", "kmeans", "kmedoids", "fps", "kls")
    for pre in ("none", "l2")
    for post in ("none", "l2", "quantile")
    for inf in ("none", "l2")
    for agg in ("max", "mnn")
]


def test_float32_and_float64_scoring_agree_on_at_least_999_of_1000_points(digits):
    x_train, x_test, y_train, _ = digits
    # 5394 distinct points (noisy copies), so that one disagreement is 0.02%, not 0.11%
    rng = np.random.default_rng(0)
    x_test = np.concatenate([x_test + rng.normal(scale=0.5, size=x_test.shape) for _ in range(6)])
    worst, fitted = 1.0, {}
    for params in DETERMINISTIC:
        # fit does not read dtype, norm_inf, agg or m (predict does): one fit per GEN and NORM
        fit_key = (params["gen"], params["norm_pre"], params["norm_post"])
        if fit_key not in fitted:
            fitted[fit_key] = ImprintingClassifier(**params, random_state=0).fit(x_train, y_train)
        clf = fitted[fit_key].set_params(**params)
        single = clf.set_params(dtype="float32").predict(x_test)
        double = clf.set_params(dtype="float64").predict(x_test)
        worst = min(worst, np.mean(single == double))
    assert worst >= 0.999


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_and_cpu_predict_the_same_up_to_ties(digits):
    x_train, x_test, y_train, _ = digits
    for params in DETERMINISTIC:
        cpu = ImprintingClassifier(**params, device="cpu", random_state=0).fit(x_train, y_train)
        cuda = clone(cpu).set_params(device="cuda").fit(x_train, y_train)
        assert np.mean(cpu.predict(x_test) == cuda.predict(x_test)) >= 0.999, params


# --- scores, probabilities and growing a fitted classifier (the `imprint` command's API) ---

SCORED = [
    {"gen": gen, "k": 3, "norm_post": post, "norm_inf": inf, "agg": agg, "m": m}
    for gen in ("mean", "kmeans", "all", "ls")
    for post in ("none", "l2", "quantile")
    for inf in ("none", "l2")
    for agg, m in (("max", 1), ("mnn", 1), ("mnn", 5))
]


def test_the_argmax_of_the_class_scores_is_the_prediction(digits):
    x_train, x_test, y_train, _ = digits
    fitted = {}
    for params in SCORED:
        # fit reads neither NORMinf nor AGG nor m: one fit per GEN and NORMpost
        key = (params["gen"], params["norm_post"])
        if key not in fitted:
            fitted[key] = ImprintingClassifier(**params, random_state=0).fit(x_train, y_train)
        clf = fitted[key].set_params(**params)
        scores = clf.class_scores(x_test)
        assert scores.shape == (len(x_test), 10)
        np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], clf.predict(x_test))
        np.testing.assert_array_equal(clf.predict_proba(x_test).argmax(1), scores.argmax(1))


def test_class_scores_by_hand_for_unequal_proxy_counts():
    """max: each class's best cosine (L2 everywhere), not the sum or mean of its proxies';
    mnn: the m nearest proxies' 1/distance votes per class."""
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [-1.0, 0.2]])
    y = np.array([0, 0, 0, 1, 1])
    clf = ImprintingClassifier(gen="all", random_state=0).fit(x, y)
    test = np.array([[3.0, 1.0]])
    unit = test / np.linalg.norm(test)
    cosines = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ unit[0]
    np.testing.assert_allclose(
        clf.class_scores(test)[0], [cosines[:3].max(), cosines[3:].max()], rtol=1e-12
    )
    mnn = clf.set_params(agg="mnn", m=2)
    distances = np.linalg.norm(x / np.linalg.norm(x, axis=1, keepdims=True) - unit, axis=1)
    nearest = np.argsort(distances)[:2]
    votes = np.zeros(2)
    np.add.at(votes, y[nearest], 1 / (distances[nearest] + 1e-10))
    np.testing.assert_allclose(mnn.class_scores(test)[0], votes, rtol=1e-9)
    np.testing.assert_allclose(mnn.predict_proba(test)[0], votes / votes.sum(), rtol=1e-9)


def test_class_max_takes_the_maximum_with_equal_proxy_counts(digits):
    """k-means with k > 1 (every class k proxies): scores equal the per-class max of the
    proxy cosines computed by hand (a sum or mean would differ)."""
    x_train, x_test, y_train, _ = digits
    clf = ImprintingClassifier(gen="kmeans", k=4, random_state=0).fit(x_train, y_train)
    unit = x_test[:50] / np.linalg.norm(x_test[:50], axis=1, keepdims=True)
    per_proxy = unit @ clf.proxies_.T
    expected = per_proxy.reshape(50, 10, 4).max(axis=2)
    np.testing.assert_allclose(clf.class_scores(x_test[:50]), expected, rtol=1e-10)
    assert not np.allclose(per_proxy.reshape(50, 10, 4).mean(axis=2), expected)


def test_probabilities_are_a_softmax_of_scaled_scores_and_sum_to_one(digits):
    x_train, x_test, y_train, _ = digits
    clf = ImprintingClassifier(proba_scale=7.0, random_state=0).fit(x_train, y_train)
    scores, proba = clf.class_scores(x_test), clf.predict_proba(x_test)
    expected = np.exp(7 * scores) / np.exp(7 * scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_two_classes_give_one_margin_per_sample(digits):
    x_train, x_test, y_train, _ = digits
    keep = y_train < 2
    for agg in ("max", "mnn"):
        clf = ImprintingClassifier(agg=agg, m=3, random_state=0).fit(x_train[keep], y_train[keep])
        scores = clf.class_scores(x_test)
        margin = clf.decision_function(x_test)
        difference = scores[:, 1] - scores[:, 0]
        expected = difference if agg == "max" else difference / scores.sum(axis=1)
        np.testing.assert_allclose(margin, expected)
        np.testing.assert_array_equal(clf.predict(x_test), np.where(margin > 0, 1, 0))


@pytest.mark.parametrize(
    "gen, compat",
    [
        *[(gen, "none") for gen in ("all", "random", "mean", "kmeans", "kmedoids", "covmax")],
        ("fps", "none"),
        ("random", "paper"),  # drawn after the classes before it: replayed from their sizes
        ("fps", "paper"),
    ],
)
@pytest.mark.parametrize("norm_post", ["none", "l2", "quantile"])
def test_adding_classes_gives_the_fit_on_all_of_them_and_leaves_the_others_alone(
    digits, gen, compat, norm_post
):
    x, _, y, _ = digits
    params = dict(gen=gen, k=3, norm_post=norm_post, random_state=4, compat=compat)
    full = ImprintingClassifier(**params).fit(x, y)
    grown = ImprintingClassifier(**params)
    grown.fit(x[y < 7], y[y < 7])
    before = grown.proxies_.copy(), grown.raw_proxies_.copy()
    grown.partial_fit(x[y >= 7], y[y >= 7])
    np.testing.assert_array_equal(grown.proxies_[: len(before[0])], before[0])
    np.testing.assert_array_equal(grown.raw_proxies_[: len(before[1])], before[1])
    np.testing.assert_array_equal(grown.proxies_, full.proxies_)
    np.testing.assert_array_equal(grown.classes_, full.classes_)
    np.testing.assert_array_equal(grown.class_counts_, np.bincount(y))


def test_extending_a_class_equals_fitting_it_on_all_its_samples(digits):
    x, _, y, _ = digits
    first, later = np.arange(len(y)) < 600, np.arange(len(y)) >= 600
    for gen, compat in [("mean", "none"), ("all", "none"), ("kmeans", "none"), ("fps", "none")] + [
        ("random", "paper"),
        ("fps", "paper"),
    ]:
        params = dict(gen=gen, k=3, random_state=1, compat=compat)
        full = ImprintingClassifier(**params).fit(x, y)
        grown = ImprintingClassifier(**params).fit(x[first], y[first])
        grown.partial_fit(x[later], y[later])
        by_class = [full.raw_proxies_[full.proxy_position_ == p] for p in range(10)]
        grown_by_class = [grown.raw_proxies_[grown.proxy_position_ == p] for p in range(10)]
        for expected, found in zip(by_class, grown_by_class, strict=True):
            if gen == "all":  # the same samples, in the order they were added
                np.testing.assert_array_equal(np.sort(found, axis=0), np.sort(expected, axis=0))
            else:  # a running mean: equal up to rounding
                np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-12)


def test_extending_a_class_that_needs_its_embeddings_says_how(digits):
    x, _, y, _ = digits
    clf = ImprintingClassifier(gen="kmeans", k=3, keep_embeddings=False, random_state=0)
    clf.fit(x[y < 5], y[y < 5])
    clf.partial_fit(x[y == 5], y[y == 5])  # a new class needs only its own samples
    assert list(clf.classes_) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="keep_embeddings=True"):
        clf.partial_fit(x[y == 1], y[y == 1])


def test_least_squares_solves_again_with_every_class(digits):
    x, _, y, _ = digits
    full = ImprintingClassifier(gen="ls", random_state=0).fit(x, y)
    grown = ImprintingClassifier(gen="ls", random_state=0).fit(x[y < 8], y[y < 8])
    grown.partial_fit(x[y >= 8], y[y >= 8])
    np.testing.assert_allclose(grown.proxies_, full.proxies_, rtol=1e-9, atol=1e-12)
    lean = ImprintingClassifier(gen="ls", keep_embeddings=False).fit(x[y < 8], y[y < 8])
    with pytest.raises(ValueError, match="solves for all classes together"):
        lean.partial_fit(x[y >= 8], y[y >= 8])


def test_string_classes_are_added_in_order_after_the_fitted_ones(digits):
    x, _, y, _ = digits
    names = np.asarray([f"digit {d}" for d in y])
    clf = ImprintingClassifier(random_state=0).fit(x[y > 2], names[y > 2])
    clf.partial_fit(x[y <= 2], names[y <= 2])
    assert list(clf.classes_[-3:]) == ["digit 0", "digit 1", "digit 2"]
    assert set(clf.predict(x[y == 0])) <= set(clf.classes_)
    assert np.mean(clf.predict(x[y == 0]) == "digit 0") > 0.9
