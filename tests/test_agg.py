import numpy as np
import pytest

from imprint.agg import TestEmbeddings, predict_all, predict_variants


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


def brute_force(x, proxies, proxy_class, n_classes, agg, m):
    """AGG written out plainly: explicit scores or distances for every pair."""
    if agg == "max":
        scores = x @ proxies.T
        per_class = np.stack([scores[:, proxy_class == c].max(axis=1) for c in range(n_classes)])
        return per_class.argmax(axis=0)
    distance = np.linalg.norm(x[:, None, :] - proxies[None, :, :], axis=2)
    predictions = []
    for row in distance:
        nearest = np.argsort(row, kind="stable")[:m]
        votes = np.zeros(n_classes)
        for index in nearest:
            votes[proxy_class[index]] += 1 / (row[index] + 1e-10)
        predictions.append(votes.argmax())
    return np.array(predictions)


def l2(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_every_rescaling_derived_from_one_product_equals_scoring_the_normalised_vectors():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5)) * rng.uniform(0.2, 5, size=(60, 1))
    proxies = rng.normal(size=(11, 5)) * rng.uniform(0.2, 5, size=(11, 1))
    proxy_class = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 1])  # unequal counts, unsorted
    variants = [("max", 0), ("mnn", 1), ("mnn", 3), ("mnn", 7)]
    test = TestEmbeddings(x, device="cpu", dtype="float64")
    found = predict_all(test, proxies, proxy_class, 3, variants, ["none", "l2"], ["none", "l2"])
    for post in ("none", "l2"):
        for inf in ("none", "l2"):
            p = l2(proxies) if post == "l2" else proxies
            q = l2(x) if inf == "l2" else x
            for agg, m in variants:
                expected = brute_force(q, p, proxy_class, 3, agg, m)
                np.testing.assert_array_equal(
                    found[(post, inf, agg, m)].numpy(), expected, err_msg=str((post, inf, agg, m))
                )


def test_running_out_of_device_memory_halves_the_chunk_instead_of_failing(monkeypatch):
    import torch

    from imprint import agg

    rng = np.random.default_rng(0)
    x, proxies = rng.normal(size=(50, 4)), rng.normal(size=(6, 4))
    proxy_class = np.repeat([0, 1, 2], 2)
    variants = [("max", 0), ("mnn", 2)]
    expected = predict_variants(x, proxies, proxy_class, 3, variants)
    chunk = agg._predict_chunk
    sizes = []

    def small_device(test, start, stop, *args):
        sizes.append(stop - start)
        if stop - start > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return chunk(test, start, stop, *args)

    monkeypatch.setattr(agg, "_predict_chunk", small_device)
    found = predict_variants(x, proxies, proxy_class, 3, variants, chunk_size=50)
    assert sizes[:4] == [50, 25, 12, 6] and max(sizes[4:]) <= 8
    for variant in variants:
        np.testing.assert_array_equal(found[variant], expected[variant])


def test_mnn_weights_votes_by_inverse_distance_not_its_square_or_a_count():
    # One proxy of class 1 at distance 1.0; two of class 0 at 1.5 and 1.6 (m = 3).
    # 1/d: 1.0 against 0.667 + 0.625 = 1.29 -> class 0. (1/d^2 would give 1.0 against 0.835.)
    proxies, proxy_class = np.array([[1.0], [1.5], [1.6]]), np.array([1, 0, 0])
    assert (
        predict_variants(np.array([[0.0]]), proxies, proxy_class, 2, [("mnn", 3)])[("mnn", 3)][0]
        == 0
    )
    # Class 1 at 0.5 (vote 2.0) against 1.29: class 1. (A plain count would say class 0.)
    proxies = np.array([[0.5], [1.5], [1.6]])
    assert (
        predict_variants(np.array([[0.0]]), proxies, proxy_class, 2, [("mnn", 3)])[("mnn", 3)][0]
        == 1
    )
