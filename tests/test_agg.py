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


def test_max_alone_is_derived_for_every_normpost():
    # AGG max only (no mnn): both NORMpost rescalings still get their predictions. Proxy 1 has
    # the larger inner product, proxy 0 the larger cosine.
    proxies, proxy_class = np.array([[1.0, 0.0], [3.0, 3.0]]), np.array([0, 1])
    test = TestEmbeddings(np.array([[1.0, 0.1]]), device="cpu", dtype="float64")
    found = predict_all(test, proxies, proxy_class, 2, [("max", 0)], ["none", "l2"], ["none"])
    assert found[("none", "none", "max", 0)].tolist() == [1]
    assert found[("l2", "none", "max", 0)].tolist() == [0]


def test_a_zero_proxy_under_l2_normpost_stays_at_the_origin_for_mnn():
    # L2 leaves a zero proxy at zero, so it is not at distance 1 from the origin as unit proxies
    # are: x = (0.3, 0) is 0.3 from the zero proxy (class 1), 0.7 from (1, 0), 1.04 from (0, 1).
    proxies = np.array([[4.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    proxy_class = np.array([0, 1, 0])
    x = np.array([[0.3, 0.0], [0.9, 0.1]])
    test = TestEmbeddings(x, device="cpu", dtype="float64")
    variants = [("mnn", 1), ("mnn", 2)]
    found = predict_all(test, proxies, proxy_class, 2, variants, ["l2"], ["none"])
    normalised = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    for agg, m in variants:
        expected = brute_force(x, normalised, proxy_class, 2, agg, m)
        assert found[("l2", "none", agg, m)].tolist() == expected.tolist(), m
    assert found[("l2", "none", "mnn", 1)].tolist() == [1, 0]


def test_no_test_rows_give_empty_integer_predictions():
    test = TestEmbeddings(np.empty((0, 2)), device="cpu", dtype="float64")
    found = predict_all(test, np.eye(2), np.array([0, 1]), 2, [("max", 0), ("mnn", 1)])
    for prediction in found.values():
        assert prediction.shape == (0,) and str(prediction.dtype) == "torch.int64"


def test_the_default_chunks_cover_every_row_when_the_proxies_need_several():
    # 40,000 proxies: 2**24 score elements per chunk hold 419 rows, so 1,000 rows take three.
    rng = np.random.default_rng(0)
    proxies = rng.normal(size=(40_000, 2))
    proxy_class = np.arange(40_000) % 3
    x = rng.normal(size=(1_000, 2))
    default = predict_variants(x, proxies, proxy_class, 3, [("max", 0)])
    whole = predict_variants(x, proxies, proxy_class, 3, [("max", 0)], chunk_size=1_000)
    np.testing.assert_array_equal(default[("max", 0)], whole[("max", 0)])


def test_out_of_memory_on_a_single_row_is_raised_and_one_row_is_tried(monkeypatch):
    import torch

    from imprint import agg

    chunk = agg._predict_chunk
    calls = []

    def one_row_fits(test, start, stop, *args):
        calls.append(stop - start)
        assert len(calls) < 100, "the chunk never shrinks to one row"
        if stop - start > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return chunk(test, start, stop, *args)

    def nothing_fits(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    x, proxies, proxy_class = np.arange(6.0)[:, None], np.array([[0.0], [5.0]]), np.array([0, 1])
    monkeypatch.setattr(agg, "_predict_chunk", one_row_fits)
    found = predict_variants(x, proxies, proxy_class, 2, [("mnn", 1)], chunk_size=6)
    assert found[("mnn", 1)].tolist() == [0, 0, 0, 1, 1, 1] and calls[:3] == [6, 3, 1]
    monkeypatch.setattr(agg, "_predict_chunk", nothing_fits)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        predict_variants(x, proxies, proxy_class, 2, [("mnn", 1)], chunk_size=6)


def test_test_embeddings_default_to_float32_on_the_cpu_here_and_convert():
    import torch

    test = TestEmbeddings(np.ones((2, 3)))
    assert test.x.dtype == torch.float32 and test.device.type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        assert test.device.type == "cpu"
    assert TestEmbeddings(np.ones((2, 3)), device="cpu", dtype="float64").x.dtype == torch.float64


def test_predict_variants_scores_in_float64_by_default():
    # Proxies 1 - 2e-6 (class 0) and 1 + 1e-6 (class 1), x = 1: ranked by |p|^2 - 2<x, p> =
    # -1 + (p - 1)^2, i.e. -1 + 4e-12 against -1 + 1e-12. float64 resolves that (class 1 is
    # nearer); in float32 both are -1, and the tie goes to class 0.
    proxies, proxy_class = np.array([[1.0 - 2e-6], [1.0 + 1e-6]]), np.array([0, 1])
    found = predict_variants(np.array([[1.0]]), proxies, proxy_class, 2, [("mnn", 1)])
    assert found[("mnn", 1)].tolist() == [1]
    single = predict_variants(
        np.array([[1.0]]), proxies, proxy_class, 2, [("mnn", 1)], dtype="float32"
    )
    assert single[("mnn", 1)].tolist() == [0]


def test_unknown_agg_and_norm_errors_say_what_is_known():
    test = TestEmbeddings(np.ones((1, 1)), device="cpu")
    with pytest.raises(ValueError, match=r"unknown AGG method 'sum'; expected one of \('max', "):
        predict_all(test, np.ones((1, 1)), np.zeros(1, int), 1, [("sum", 0)])
    with pytest.raises(ValueError, match="'quantile' is not a rescaling; expected one of"):
        predict_all(test, np.ones((1, 1)), np.zeros(1, int), 1, [("max", 0)], ["quantile"])


# -- Where the reduction matters: data on which another reduction gives another answer --------


def max_against_sum_data(equal_counts: bool):
    """One test row x = (1, 0). Class 0's proxies score 1 and -1 (max 1, sum 0); class 1's
    score 0.6 and 0.6 (max 0.6, sum 1.2), and with unequal counts a third 0.6. AGG max must
    say class 0; a sum (or mean over padded slots, or a softmax-weighted sum) says class 1."""
    proxies = [[1.0, 0.0], [-1.0, 0.0], [0.6, 0.8], [0.6, -0.8]]
    proxy_class = [0, 0, 1, 1]
    if not equal_counts:
        proxies.append([0.6, 0.0])
        proxy_class.append(1)
    x = np.array([[1.0, 0.0], [0.0, 1.0]])  # row 1: class 1 (0.8 against 0)
    return x, np.array(proxies), np.array(proxy_class)


@pytest.mark.parametrize("equal_counts", [True, False])  # the reshape and the scatter path
@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_agg_max_takes_each_classes_best_proxy_not_the_sum(equal_counts, chunk_rows):
    x, proxies, proxy_class = max_against_sum_data(equal_counts)
    test = TestEmbeddings(x, device="cpu", dtype="float64")
    found = predict_all(
        test,
        proxies,
        proxy_class,
        2,
        [("max", 0)],
        proxy_norms=("none", "l2"),
        test_norms=("none", "l2"),
        chunk_rows=chunk_rows,
    )
    for key, predicted in found.items():
        np.testing.assert_array_equal(predicted.numpy(), [0, 1], err_msg=str(key))


@pytest.mark.parametrize("equal_counts", [True, False])
def test_the_estimators_class_scores_are_each_classes_best_proxy(equal_counts):
    import torch

    from imprint.agg import class_index, class_scores

    x, proxies, proxy_class = max_against_sum_data(equal_counts)
    scores = class_scores(
        torch.as_tensor(x),
        torch.as_tensor(proxies),
        torch.ones(len(proxies), dtype=torch.float64),
        torch.as_tensor(class_index(proxy_class, 2)),
        torch.nn.functional.one_hot(torch.as_tensor(proxy_class), 2).double(),
        "max",
        1,
        "none",
    )
    np.testing.assert_allclose(scores.numpy(), [[1.0, 0.6], [0.0, 0.8]])
