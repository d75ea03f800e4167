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


def test_l2_rescales_short_rows_up_as_well_as_long_rows_down():
    np.testing.assert_allclose(l2_normalize(np.array([[0.3, 0.4], [6.0, 8.0]])), [[0.6, 0.8]] * 2)


def test_proxy_norms_dispatch_by_name_and_leave_the_proxies_untouched():
    proxies = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [5.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(normalize_proxies(proxies, labels, "none"), proxies)
    np.testing.assert_allclose(normalize_proxies(proxies, labels, "l2"), l2_normalize(proxies))
    quantile = normalize_proxies(proxies, labels, "quantile")
    # class 1 onto the quantiles 0.25 and 0.75 of {3, 4, 1, 0}: 0.75 and 3.25, by rank
    np.testing.assert_allclose(quantile, [[3, 4], [1, 0], [0.75, 3.25], [3.25, 0.75]])
    np.testing.assert_array_equal(proxies, [[3, 4], [1, 0], [0, 2], [5, 1]])  # not in place


def test_quantile_of_integer_proxies_is_computed_in_floating_point():
    proxies = np.array([[3, 4], [1, 0], [0, 2], [5, 1]])
    np.testing.assert_allclose(
        quantile_normalize(proxies, np.array([0, 0, 1, 1])),
        [[3, 4], [1, 0], [0.75, 3.25], [3.25, 0.75]],
    )


def test_quantile_ties_keep_their_order_of_appearance_in_long_vectors():
    # 40 dimensions (beyond the sizes where numpy's default sort happens to be stable)
    reference = np.arange(40.0)
    tied = np.tile([1.0, 2.0], 20)  # twenty 1s and twenty 2s, interleaved
    out = quantile_normalize(np.stack([reference, tied]), np.array([0, 1]))
    targets = np.quantile(reference, (np.arange(40) + 0.5) / 40)
    ranks = np.empty(40, dtype=int)
    ranks[0::2] = np.arange(20)  # the 1s, left to right
    ranks[1::2] = np.arange(20, 40)  # then the 2s
    np.testing.assert_allclose(out[1], targets[ranks])
