import numpy as np
import pytest

from imprint import nc1


def direct_nc1(x, y):
    """The definition, with d×d matrices and numpy's pseudo-inverse."""
    classes = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in classes])
    sigma_w = np.mean(
        [np.cov(x[y == c].T, bias=True).reshape(x.shape[1], -1) for c in classes], axis=0
    )
    centred = means - x.mean(axis=0)
    sigma_b = centred.T @ centred / len(classes)
    return np.trace(sigma_w @ np.linalg.pinv(sigma_b)) / len(classes)


def test_nc1_by_hand_in_one_dimension():
    # Class means 1 and 11 around the global mean 6: Σ_B = 25. Each class variance is 1.
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    assert nc1(x, y) == pytest.approx(1 / 25 / 2)


def test_nc1_matches_the_definition_with_a_pseudo_inverse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 7)) + np.repeat(rng.normal(scale=3, size=(4, 7)), 15, axis=0)
    y = np.repeat(np.arange(4), 15)
    assert nc1(x, y) == pytest.approx(direct_nc1(x, y), rel=1e-9)


def test_unbalanced_classes_follow_the_definition():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 3))
    y = np.array([0] * 5 + [1] * 10 + [2] * 15)
    x[y == 1] += 4
    assert nc1(x, y) == pytest.approx(direct_nc1(x, y), rel=1e-9)


def test_collapsed_classes_have_nc1_zero():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert nc1(x, np.array([0, 0, 1, 1])) == 0.0


def test_nc1_needs_two_classes():
    with pytest.raises(ValueError, match="at least two classes"):
        nc1(np.ones((3, 2)), np.zeros(3))


def authors_nc1(x, y):
    """The IMPRINT authors' code, transcribed (src/nc/neural_collapse.py): each class's samples
    centred on its mean minus the global mean, d×d matrices, a pseudo-inverse."""
    classes = np.unique(y)
    global_mean = x.mean(axis=0)
    centred_means = np.stack([x[y == c].mean(axis=0) - global_mean for c in classes])
    intra = []
    for index, c in enumerate(classes):
        centred = x[y == c] - centred_means[index]
        intra.append(centred.T @ centred / len(centred))
    inter = centred_means.T @ centred_means / len(classes)
    return np.trace(np.linalg.pinv(inter) @ np.mean(intra, axis=0)) / len(classes)


def test_the_imprint_code_variant_by_hand_in_one_dimension():
    # As above, but the global mean 6 adds 6² to Σ_W: (1 + 36) / 25 / 2.
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    assert nc1(x, y, variant="imprint_code") == pytest.approx(37 / 25 / 2)


def test_the_imprint_code_variant_matches_the_authors_computation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 6)) + 2 + np.repeat(rng.normal(scale=2, size=(4, 6)), 20, axis=0)
    y = np.repeat(np.arange(4), 20)
    code = nc1(x, y, variant="imprint_code")
    assert code == pytest.approx(authors_nc1(x, y), rel=1e-9)
    assert code > nc1(x, y)  # the global mean only ever adds
    centred = x - x.mean(axis=0)  # with a zero global mean both variants agree
    assert nc1(centred, y, variant="imprint_code") == pytest.approx(nc1(centred, y), rel=1e-9)


def test_an_unknown_variant_is_named():
    with pytest.raises(ValueError, match="'textbook'"):
        nc1(np.eye(2), np.array([0, 1]), variant="textbook")


def test_float32_embeddings_give_the_float64_value():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(60, 5)) * 1000 + 1e4).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    assert nc1(x, y) == pytest.approx(direct_nc1(x.astype(np.float64), y), rel=1e-9)


def test_many_more_dimensions_than_classes_keep_only_the_between_class_directions():
    # 3 classes in 40 dimensions: Σ_B has rank 2, the other 38 eigenvalues are rounding noise
    # that a pseudo-inverse must drop, as numpy's does
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(3), 15)
    x = rng.normal(size=(45, 40)) + 3 * rng.normal(size=(3, 40))[y]
    assert nc1(x, y) == pytest.approx(direct_nc1(x, y), rel=1e-8)
    # the cut-off is relative to the largest eigenvalue: the same at any scale
    assert nc1(x * 1e6, y) == pytest.approx(direct_nc1(x, y), rel=1e-6)


def test_classes_with_one_shared_mean_have_infinite_nc1():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert nc1(x, np.array([0, 0, 1, 1])) == float("inf")
