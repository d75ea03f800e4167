import numpy as np
import pytest

from imprint.norm import l2_normalize, normalize_embeddings, normalize_proxies, quantile_normalize


def test_l2_scales_rows_to_unit_length_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]])


def test_quantile_maps_each_later_class_onto_the_values_imprinted_before_it():
    proxies = np.array([[1.0, 2.0, 3.0], [30.0, 10.0, 20.0], [0.0, 5.0, -1.0]])
    labels = np.array([0, 1, 2])
    out = quantile_normalize(proxies, labels)
    # First class unchanged.
    np.testing.assert_allclose(out[0], [1, 2, 3])
    # Reference {1,2,3}: linear quantiles at 1/6, 1/2, 5/6 are 4/3, 2, 8/3; mapped by rank.
    np.testing.assert_allclose(out[1], [8 / 3, 4 / 3, 2])
    # Reference now holds class 0 and the *normalised* class 1: {1, 4/3, 2, 2, 8/3, 3}.
    # Quantiles at 1/6, 1/2, 5/6 (positions 5/6, 5/2, 25/6): 23/18, 2, 49/18.
    np.testing.assert_allclose(out[2], [2, 49 / 18, 23 / 18])


def test_quantile_handles_several_proxies_per_class():
    proxies = np.array([[0.0, 1.0], [2.0, 3.0], [9.0, 5.0], [7.0, 8.0]])
    labels = np.array([0, 0, 1, 1])
    out = quantile_normalize(proxies, labels)
    # Reference {0,1,2,3}: quantiles at 1/4 and 3/4 are 0.75 and 2.25.
    np.testing.assert_allclose(out[2:], [[2.25, 0.75], [0.75, 2.25]])


@pytest.mark.parametrize("norm", ["none", "l2"])
def test_embedding_norms(norm):
    x = np.array([[3.0, 4.0]])
    expected = x if norm == "none" else [[0.6, 0.8]]
    np.testing.assert_allclose(normalize_embeddings(x, norm), expected)


def test_unknown_norms_are_rejected_by_name():
    with pytest.raises(ValueError, match="'l1'"):
        normalize_embeddings(np.ones((1, 2)), "l1")
    with pytest.raises(ValueError, match="'l1'"):
        normalize_proxies(np.ones((1, 2)), np.zeros(1), "l1")
