import numpy as np
import pytest

from imprint.agg import predict_variants


def test_max_picks_the_class_of_the_best_proxy():
    proxies = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    proxy_class = np.array([0, 1, 1])
    x = np.array([[0.9, 0.8], [1.0, 0.1]])
    # Row 0: class 0 scores 0.9, class 1 max(0.8, 1.02). Row 1: 1.0 against max(0.1, 0.66).
    out = predict_variants(x, proxies, proxy_class, 2, [("max", 0)])
    np.testing.assert_array_equal(out[("max", 0)], [1, 0])


def test_mnn_votes_with_inverse_distance_weights():
    proxies = np.array([[0.0], [2.0], [2.1], [2.2]])
    proxy_class = np.array([1, 0, 0, 0])
    x = np.array([[0.9]])
    # Distances 0.9 (class 1) and 1.1, 1.2, 1.3 (class 0).
    # m=1: class 1. m=2: 1/0.9=1.11 against 1/1.1=0.91 -> class 1.
    # m=3: 1.11 against 0.91+0.83=1.74 -> class 0.
    out = predict_variants(x, proxies, proxy_class, 2, [("mnn", 1), ("mnn", 2), ("mnn", 3)])
    assert [out[("mnn", m)][0] for m in (1, 2, 3)] == [1, 1, 0]


def test_m_larger_than_the_proxies_uses_them_all():
    proxies = np.array([[0.0], [1.0]])
    out = predict_variants(np.array([[0.2]]), proxies, np.array([0, 1]), 2, [("mnn", 50)])
    np.testing.assert_array_equal(out[("mnn", 50)], [0])


def test_a_test_point_equal_to_a_proxy_gets_its_class():
    proxies = np.array([[0.0], [1.0], [1.1]])
    out = predict_variants(np.array([[0.0]]), proxies, np.array([0, 1, 1]), 2, [("mnn", 3)])
    np.testing.assert_array_equal(out[("mnn", 3)], [0])


def test_ties_go_to_the_first_class():
    proxies = np.array([[1.0, 0.0], [1.0, 0.0]])
    out = predict_variants(
        np.array([[1.0, 0.0]]), proxies, np.array([0, 1]), 2, [("max", 0), ("mnn", 2)]
    )
    assert out[("max", 0)][0] == 0 and out[("mnn", 2)][0] == 0


def test_chunking_does_not_change_predictions():
    rng = np.random.default_rng(0)
    x, proxies = rng.normal(size=(101, 4)), rng.normal(size=(9, 4))
    proxy_class = np.repeat([0, 1, 2], 3)
    variants = [("max", 0), ("mnn", 1), ("mnn", 4)]
    whole = predict_variants(x, proxies, proxy_class, 3, variants)
    chunked = predict_variants(x, proxies, proxy_class, 3, variants, chunk_size=7)
    for variant in variants:
        np.testing.assert_array_equal(whole[variant], chunked[variant])


def test_unknown_agg_is_named():
    with pytest.raises(ValueError, match="'sum'"):
        predict_variants(np.ones((1, 1)), np.ones((1, 1)), np.zeros(1, int), 1, [("sum", 0)])
