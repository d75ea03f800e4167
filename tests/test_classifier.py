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
    # compat "paper" changes k-means (kmeans, kls) and k-medoids only; "none" covers the rest
    gens = list(GEN_METHODS) if compat == "none" else ["kmeans", "kls", "kmedoids"]
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
    # norm_pre x (all, mean, ls + 7 k-methods x 2 k), or x (3 k-methods x 2 k)
    assert len(timing) == (2 * (3 + 7 * 2) if compat == "none" else 2 * 3 * 2)
    assert (timing["gen_time_s"] >= 0).all()
    # 2 NORMpre x 3 NORMpost x 2 NORMinf x (max, mnn m=1, mnn m=4) per GEN and k
    assert len(table) == 36 * (3 + 7 * 2 if compat == "none" else 3 * 2)
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
