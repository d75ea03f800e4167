"""The library behind the `imprint` command (imprint.app), in process: the head module that the
ONNX graph holds scores as the classifier does, and the rejection trade-off by hand."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from imprint import ImprintingClassifier
from imprint.app import UNKNOWN, head_module, rejection_tradeoff, scores_table


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize(
    "params",
    [
        {"gen": "kmeans", "k": 3},
        {"gen": "all", "agg": "mnn", "m": 5, "norm_inf": "none"},
        {"gen": "mean", "norm_pre": "none", "norm_post": "quantile", "norm_inf": "none"},
        {"gen": "ls", "norm_post": "none"},
    ],
)
def test_the_exported_head_scores_as_the_classifier(digits, params):
    x, y = digits
    clf = ImprintingClassifier(random_state=0, **params).fit(x[:1200], y[:1200])
    with torch.inference_mode():
        scores = head_module(clf, "float64")(torch.as_tensor(x[1200:])).numpy()
    np.testing.assert_allclose(scores, clf.class_scores(x[1200:]), rtol=1e-9, atol=1e-9)
    float32 = head_module(clf)(torch.as_tensor(x[1200:], dtype=torch.float32)).detach().numpy()
    assert np.mean(float32.argmax(1) == clf.predict(x[1200:])) >= 0.999


def test_predictions_list_the_top_classes_and_reject_below_a_threshold(digits):
    x, y = digits
    names = np.asarray([f"d{d}" for d in y])
    clf = ImprintingClassifier(random_state=0).fit(x[:1200], names[:1200])
    paths = [f"img{i}.png" for i in range(5)]
    table = scores_table(clf, x[1200:1205], paths, top=3)
    assert list(table["rank"]) == [1, 2, 3] * 5
    scores = clf.class_scores(x[1200:1205])
    first = table[table["rank"] == 1]
    assert list(first["class"]) == clf.predict(x[1200:1205]).tolist()
    np.testing.assert_allclose(first["score"], scores.max(1))
    assert (table.groupby("path")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()
    threshold = np.median(scores.max(1))
    rejected = scores_table(clf, x[1200:1205], paths, reject_below=threshold)
    assert list(rejected["class"] == UNKNOWN) == list(scores.max(1) < threshold)


def test_the_rejection_tradeoff_by_hand():
    known = np.array([0.9, 0.8, 0.3])
    correct = np.array([True, False, True])
    unknown = np.array([0.5, 0.2])
    table = rejection_tradeoff(known, correct, unknown).set_index("threshold")
    assert table.loc[-np.inf].tolist() == [2 / 3, 0.0, 0.0]
    assert table.loc[0.5].tolist() == [1 / 3, 1 / 3, 0.5]  # 0.3 rejected; 0.2 too
    assert table.loc[0.9].tolist() == [1 / 3, 2 / 3, 1.0]
