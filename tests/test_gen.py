import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from imprint.gen import (
    GEN_METHODS,
    K_METHODS,
    SHARED_ACROSS_K,
    GenCache,
    covariance_scores,
    farthest_point_sampling,
    generate_proxies,
    least_squares_proxies,
)
from imprint.medoids import (
    alternate_from,
    alternating_kmedoids,
    kmedoids_for_each_k,
    pam_build,
    transpose_in_place,
)


def rows(a):
    """Rows as a sorted list of tuples, to compare proxy sets regardless of order."""
    return sorted(map(tuple, np.round(np.asarray(a), 9)))


@pytest.fixture
def two_class_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = np.repeat([0, 1], 20)
    return x, y


def test_all_keeps_every_sample_in_class_order():
    x = np.array([[1.0], [2.0], [3.0]])
    y = np.array([1, 0, 1])
    proxies, labels = generate_proxies(x, y, "all")
    np.testing.assert_array_equal(proxies, [[2.0], [1.0], [3.0]])
    np.testing.assert_array_equal(labels, [0, 1, 1])


def test_mean_is_the_class_mean():
    x = np.array([[0.0, 0.0], [2.0, 4.0], [10.0, 10.0]])
    y = np.array([0, 0, 1])
    proxies, labels = generate_proxies(x, y, "mean")
    np.testing.assert_allclose(proxies, [[1.0, 2.0], [10.0, 10.0]])
    np.testing.assert_array_equal(labels, [0, 1])


def test_mean_is_the_mean_of_a_skewed_class_not_its_median_or_midrange():
    # median [2, 2], midrange [5, 2]: a near relative of the mean gives another proxy
    x = np.array([[0.0, 0.0], [2.0, 4.0], [10.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    y = np.array([0, 0, 0, 1, 1])
    proxies, _ = generate_proxies(x, y, "mean")
    np.testing.assert_allclose(proxies, [[4.0, 2.0], [2.0, 2.0]])


def test_random_draws_k_distinct_samples_of_the_class_deterministically(two_class_data):
    x, y = two_class_data
    proxies, labels = generate_proxies(x, y, "random", k=3, random_state=7)
    assert proxies.shape == (6, 5)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    for proxy, label in zip(proxies, labels, strict=True):
        assert any(np.array_equal(proxy, sample) for sample in x[y == label])
    assert len(set(map(tuple, proxies[:3]))) == 3
    again, _ = generate_proxies(x, y, "random", k=3, random_state=7)
    other, _ = generate_proxies(x, y, "random", k=3, random_state=8)
    np.testing.assert_array_equal(proxies, again)
    assert not np.array_equal(proxies, other)


def test_kmeans_finds_the_two_clusters_of_a_class():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0], [5.0, 5.0]])
    y = np.array([0, 0, 0, 0, 1])
    proxies, labels = generate_proxies(x, y, "kmeans", k=2, random_state=0)
    assert rows(proxies[labels == 0]) == [(0.0, 0.5), (10.0, 0.5)]
    np.testing.assert_array_equal(proxies[labels == 1], [[5.0, 5.0]])


def test_kmedoids_returns_the_central_sample_of_each_cluster():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    y = np.zeros(6, dtype=int)
    proxies, _ = generate_proxies(x, y, "kmedoids", k=2, random_state=0)
    assert rows(proxies) == [(1.0,), (11.0,)]


def test_covariance_scores_by_hand_and_against_numpy():
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    # Rows centred over their features, covariance over the 3 dimensions, column sums:
    np.testing.assert_allclose(covariance_scores(x), [1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(covariance_scores(x), np.cov(x).sum(axis=0))


def test_covmax_takes_the_largest_scores_ties_in_sample_order():
    x = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    proxies, _ = generate_proxies(x, np.zeros(3, dtype=int), "covmax", k=2)
    np.testing.assert_array_equal(proxies, [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class FirstIndex:
    """A stand-in random generator whose draw is always the first sample."""

    def integers(self, n):
        return 0


def test_farthest_point_sampling_by_hand():
    x = np.array([[0.0], [1.0], [10.0], [4.0]])
    # Start at 0; farthest is 10; then the point farthest from {0, 10} is 4.
    np.testing.assert_array_equal(farthest_point_sampling(x, 3, FirstIndex()), [0, 2, 3])


def plain_farthest_point_sampling(x, k, first):
    """The greedy loop written plainly in numpy, as GEN fps ran before it moved to PyTorch."""
    chosen = [first]
    nearest = np.linalg.norm(x - x[first], axis=1)
    for _ in range(1, k):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(x - x[chosen[-1]], axis=1))
    return chosen


@pytest.mark.parametrize("kind", ["gaussian", "coarse"])
def test_farthest_point_sampling_equals_the_plain_numpy_loop(kind):
    rng = np.random.default_rng(4)
    for trial in range(5):
        x = rng.normal(size=(300, 20))
        if kind == "coarse":  # many exactly equal distances: ties go to the first sample
            x = np.round(x)
        first = int(np.random.default_rng(trial).integers(300))
        expected = plain_farthest_point_sampling(x, 40, first)
        found = farthest_point_sampling(x, 40, np.random.default_rng(trial))
        np.testing.assert_array_equal(found, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
@pytest.mark.parametrize("gen", ["kmeans", "kls", "fps"])
def test_gen_on_cuda_gives_the_cpu_proxies_up_to_ties(gen):
    rng = np.random.default_rng(6)
    y = np.repeat(np.arange(4), 500)
    x = np.maximum(rng.normal(size=(2000, 64)) + y[:, None] * 0.2, 0)
    cpu = generate_proxies(x, y, gen, k=10, random_state=2, device="cpu")
    cuda = generate_proxies(x, y, gen, k=10, random_state=2, device="cuda")
    np.testing.assert_array_equal(cpu[1], cuda[1])
    np.testing.assert_allclose(cpu[0], cuda[0], rtol=1e-9, atol=1e-12)


def test_least_squares_matches_its_closed_form_and_ridge_on_balanced_classes(two_class_data):
    x, y = two_class_data
    lam = 0.3
    weights = least_squares_proxies(x, y, lam)
    n, d = x.shape
    means = np.stack([x[y == c].mean(axis=0) for c in (0, 1)])
    expected = means @ np.linalg.inv(x.T @ x / n + lam * np.eye(d)) / 2
    np.testing.assert_allclose(weights, expected)
    # With balanced classes this is ridge regression of one-hot targets with alpha = N·λ.
    ridge = Ridge(alpha=n * lam, fit_intercept=False).fit(x, np.eye(2)[y])
    np.testing.assert_allclose(weights, ridge.coef_)
    proxies, labels = generate_proxies(x, y, "ls", ls_lambda=lam)
    np.testing.assert_allclose(proxies, weights)
    np.testing.assert_array_equal(labels, [0, 1])


def test_kls_with_k_1_is_least_squares(two_class_data):
    x, y = two_class_data
    kls, labels = generate_proxies(x, y, "kls", k=1, ls_lambda=0.1, random_state=0)
    ls, _ = generate_proxies(x, y, "ls", ls_lambda=0.1)
    np.testing.assert_allclose(kls, ls)
    np.testing.assert_array_equal(labels, [0, 1])


def test_kls_splits_classes_into_pseudo_classes_labelled_by_parent(two_class_data):
    x, y = two_class_data
    proxies, labels = generate_proxies(x, y, "kls", k=3, ls_lambda=0.1, random_state=0)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1])
    # k >= class size: every sample is its own pseudo-class.
    small_x, small_y = x[[0, 1, 20, 21]], np.array([0, 0, 1, 1])
    proxies, labels = generate_proxies(small_x, small_y, "kls", k=5, ls_lambda=0.1)
    np.testing.assert_allclose(proxies, least_squares_proxies(small_x, np.arange(4), 0.1))


@pytest.mark.parametrize("gen", sorted(K_METHODS - {"kls"}))
def test_a_class_with_fewer_than_k_samples_keeps_all_its_samples(gen):
    x = np.array([[0.0, 1.0], [2.0, 3.0], [5.0, 5.0], [6.0, 6.0], [7.0, 7.0]])
    y = np.array([0, 0, 1, 1, 1])
    proxies, labels = generate_proxies(x, y, gen, k=3, random_state=0)
    assert rows(proxies[labels == 0]) == rows(x[:2])
    assert len(proxies[labels == 1]) == 3


@pytest.mark.parametrize("gen", GEN_METHODS)
def test_every_method_is_deterministic_for_a_fixed_seed(gen, two_class_data):
    x, y = two_class_data
    a = generate_proxies(x, y, gen, k=4, random_state=3)
    b = generate_proxies(x, y, gen, k=4, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_kmeans_with_duplicate_points_keeps_k_centres():
    x = np.zeros((6, 2))
    proxies, _ = generate_proxies(x, np.zeros(6, dtype=int), "kmeans", k=3, random_state=0)
    np.testing.assert_array_equal(proxies, np.zeros((3, 2)))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="'kmean'"):
        generate_proxies(np.ones((2, 2)), np.array([0, 1]), "kmean")
    with pytest.raises(ValueError, match="k must be >= 1"):
        generate_proxies(np.ones((2, 2)), np.array([0, 1]), "kmeans", k=0)


def separate_kmedoids(x, k, seed):
    """FasterPAM as one run for one k would do it: its own distances and BUILD."""
    import kmedoids
    from sklearn.metrics import pairwise_distances

    if len(x) <= k:
        return np.arange(len(x))
    result = kmedoids.fasterpam(pairwise_distances(x), k, init="build", random_state=seed, n_cpu=1)
    return np.sort(result.medoids)


K_VALUES = (1, 2, 3, 5, 8, 13, 30, 200)


@pytest.mark.parametrize("trial", range(6))
def test_shared_kmedoids_finds_the_medoids_of_a_separate_run_for_every_k(trial):
    rng = np.random.default_rng(trial)
    n, d = [(150, 8), (400, 32), (90, 4)][trial % 3]
    x = rng.normal(size=(n, d)) + 3 * rng.normal(size=(5, d))[rng.integers(5, size=n)]
    if trial >= 3:
        x = np.round(x)  # many tied distances
    medoids, setup, swaps = kmedoids_for_each_k(x, K_VALUES, seed=trial)
    assert setup >= 0 and set(swaps) == {k for k in K_VALUES if k < n}
    for k in K_VALUES:
        np.testing.assert_array_equal(medoids[k], separate_kmedoids(x, k, trial), err_msg=str(k))


@pytest.mark.parametrize(
    "kind", ["gaussian", "rounded", "duplicates", "binary", "integer matrix", "big"]
)
def test_pam_build_picks_the_packages_medoids_in_its_order(kind):
    """The hand-written BUILD against the kmedoids package's on data with many exact ties,
    duplicates (the package stops early), an asymmetric matrix with a non-zero diagonal, and
    a size where the kept-up gains have drifted through many updates."""
    import kmedoids
    from sklearn.metrics import pairwise_distances

    for trial in range(2 if kind == "big" else 12):
        rng = np.random.default_rng(trial)
        n, d = (1500, 64) if kind == "big" else (int(rng.integers(2, 200)), int(rng.integers(1, 9)))
        x = rng.normal(size=(n, d)) + 3 * rng.normal(size=(5, d))[rng.integers(5, size=n)]
        if kind == "rounded":
            x = np.round(x)
        if kind == "duplicates":
            x = x[rng.integers(max(1, n // 4), size=n)]
        if kind == "binary":  # a few distinct distances, so most gains tie exactly
            x = (x > 0).astype(float)
        dissimilarity = pairwise_distances(x)
        if kind == "integer matrix":
            dissimilarity = rng.integers(0, 4, size=(n, n)).astype(float)
        k = 100 if kind == "big" else int(rng.integers(1, n + 1))
        expected = np.asarray(kmedoids.pam_build(dissimilarity, k).medoids)
        np.testing.assert_array_equal(pam_build(dissimilarity, k), expected, err_msg=str(trial))
    with pytest.raises(ValueError, match="k must be in"):
        pam_build(dissimilarity, 0)


@pytest.mark.parametrize("n", [1, 7, 16, 23])
def test_transpose_in_place_transposes_any_square_size(n):
    original = np.random.default_rng(n).normal(size=(n, n))
    square = original.copy()
    transpose_in_place(square, block=5)  # diagonal blocks, full and ragged off-diagonal ones
    np.testing.assert_array_equal(square, original.T)
    assert square.flags.c_contiguous


@pytest.mark.filterwarnings("ignore:Seed will be ignored")  # it is not: it orders the swaps
def test_fasterpam_finds_the_same_medoids_in_column_major_layout():
    """What kmedoids_for_each_k relies on: only the layout changes, so even an asymmetric
    matrix (as float rounding can make Euclidean distances) gives the same medoids."""
    import kmedoids

    rng = np.random.default_rng(3)
    dissimilarity = rng.random((300, 300)) + rng.random((300, 300)).round()
    transposed = dissimilarity.copy()
    transpose_in_place(transposed)
    for k in (2, 7, 30):
        start = rng.choice(300, k, replace=False)
        expected = kmedoids.fasterpam(dissimilarity, start.copy(), random_state=k, n_cpu=1)
        found = kmedoids.fasterpam(transposed.T, start.copy(), random_state=k, n_cpu=1)
        np.testing.assert_array_equal(found.medoids, expected.medoids)
        assert found.loss == expected.loss


@pytest.mark.parametrize("gen", sorted(SHARED_ACROSS_K | {"ls"}))
def test_a_prepared_cache_gives_the_proxies_of_separate_runs(gen):
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [40, 25, 3])  # the last class is smaller than most k
    x = rng.normal(size=(len(y), 6)) + y[:, None]
    cache = GenCache(k_values=K_VALUES[:-1])
    seconds = cache.prepare(x, y, "kmeans" if gen == "kls" else gen, random_state=4)
    assert set(seconds) == set(K_VALUES[:-1]) and min(seconds.values()) >= 0
    for k in K_VALUES[:-1]:
        shared = generate_proxies(x, y, gen, k, 0.1, random_state=4, cache=cache)
        separate = generate_proxies(x, y, gen, k, 0.1, random_state=4)
        np.testing.assert_array_equal(shared[1], separate[1])
        np.testing.assert_allclose(shared[0], separate[0], rtol=1e-12, atol=1e-12)


def test_farthest_point_sampling_for_k_is_the_prefix_of_a_larger_k():
    x = np.random.default_rng(0).normal(size=(60, 3))
    longest = farthest_point_sampling(x, 20, np.random.default_rng(9))
    for k in (1, 5, 19):
        np.testing.assert_array_equal(
            farthest_point_sampling(x, k, np.random.default_rng(9)), longest[:k]
        )


@pytest.mark.parametrize("trial", range(4))
def test_the_authors_alternating_kmedoids_agrees_with_the_kmedoids_packages(trial):
    """An independent implementation of the same alternating algorithm, from the same start."""
    import kmedoids
    from sklearn.metrics import pairwise_distances

    rng = np.random.default_rng(trial)
    x = rng.normal(size=(120, 5)) + 4 * rng.normal(size=(4, 5))[rng.integers(4, size=120)]
    distances = pairwise_distances(x)
    for k in (2, 4, 7):
        start = np.argpartition(distances.sum(axis=1), k - 1)[:k]  # scikit-learn-extra's init
        ours = np.sort(alternate_from(distances, start))
        theirs = kmedoids.alternating(distances, start.copy(), max_iter=300)
        np.testing.assert_array_equal(ours, np.sort(theirs.medoids))
        np.testing.assert_array_equal(alternating_kmedoids(x, k), ours)


def test_the_heuristic_start_takes_the_points_of_smallest_total_distance():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    # Total distances 24, 21, 20, 28, 31: the start is {1, 2}. Point 2's cluster {2, 3, 4} has
    # in-cluster costs 17, 9, 10, so its medoid moves to 3; then nothing moves.
    assert list(alternating_kmedoids(x, 2)) == [1, 3]


def test_paper_compat_seeds_kmeans_as_the_authors_code():
    """Their call transcribed: KMeans(n_clusters=k, random_state=seed) on each class's float32
    embeddings, the same seed for every class."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(size=(120, 6)) + y[:, None] * 3
    proxies, labels = generate_proxies(x, y, "kmeans", k=4, random_state=7, compat="paper")
    for c in range(3):
        theirs = KMeans(n_clusters=4, random_state=7).fit(x[y == c].astype(np.float32))
        np.testing.assert_allclose(proxies[labels == c], theirs.cluster_centers_, rtol=1e-6)
    default, _ = generate_proxies(x, y, "kmeans", k=4, random_state=7)
    assert not np.allclose(default, proxies)  # per-class seeds by default: other clusterings


def test_paper_compat_runs_kmedoids_as_the_authors_alternating_kmedoids():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 50)
    x = rng.normal(size=(100, 4)) + y[:, None] * 2
    paper, _ = generate_proxies(x, y, "kmedoids", k=3, random_state=0, compat="paper")
    alternate, _ = generate_proxies(x, y, "kmedoids_alternate", k=3, random_state=0)
    np.testing.assert_array_equal(paper, alternate)
    for gen in ("mean", "covmax", "ls"):  # the deterministic methods do not change
        np.testing.assert_array_equal(
            generate_proxies(x, y, gen, k=3, random_state=0, compat="paper")[0],
            generate_proxies(x, y, gen, k=3, random_state=0)[0],
        )


def authors_select_proxies(data, method, k):
    """The random and fps branches of the IMPRINT authors' ``select_proxies`` and their
    ``farthest_point_sampling`` (src/proxy/selection.py), transcribed: torch's global
    generator, float32 data."""
    if len(data) < k or len(data) == 1:
        return data
    if method == "random":
        return data[torch.randperm(len(data))[:k]]
    selected_indices = [torch.randint(len(data), (1,)).item()]
    for _ in range(1, k):
        remaining_indices = list(set(range(len(data))) - set(selected_indices))
        distances = torch.cdist(data[remaining_indices], data[selected_indices]).min(dim=1).values
        selected_indices.append(remaining_indices[distances.argmax()])
    return data[selected_indices]


def authors_proxies(x, y, method, k, seed):
    """Their runner: ``set_all_seeds(seed)`` once per configuration, then each class in
    label order draws from the global generator."""
    torch.manual_seed(seed)
    data = torch.as_tensor(x, dtype=torch.float32)
    return [authors_select_proxies(data[y == c], method, k).numpy() for c in np.unique(y)]


@pytest.mark.parametrize("gen", ["random", "fps"])
@pytest.mark.parametrize("k", [1, 3, 7])
def test_paper_compat_draws_random_and_fps_as_the_authors_code(gen, k):
    rng = np.random.default_rng(11)
    # class sizes around k: fewer than k and a single sample draw nothing there, exactly k does
    sizes = [12, 1, 7, 5, 30, 3]
    y = np.repeat(np.arange(len(sizes)), sizes)
    x = (rng.normal(size=(len(y), 5)) + y[:, None]).astype(np.float32)
    theirs = authors_proxies(x, y, gen, k, seed=3)
    torch.manual_seed(123)  # ours neither reads nor moves the global generator
    state = torch.get_rng_state()
    proxies, labels = generate_proxies(x, y, gen, k=k, random_state=3, compat="paper")
    assert torch.equal(torch.get_rng_state(), state)
    for c, expected in enumerate(theirs):
        np.testing.assert_array_equal(proxies[labels == c].astype(np.float32), expected)
    # the draws chain: a class's draw depends on the classes before it, unlike the default
    later_alone, _ = generate_proxies(
        x[y == 4], y[y == 4], gen, k=k, random_state=3, compat="paper"
    )
    if k < 7:
        assert not np.array_equal(later_alone, proxies[labels == 4])


@pytest.mark.parametrize("gen", ["random", "fps"])
def test_paper_draws_and_a_grid_cache_give_the_same_proxies(gen):
    x, y = three_blobs(n_per_class=9)
    cache = GenCache(k_values=(2, 3), compat="paper")
    cache.prepare(x, y, gen, 5)
    for k in (2, 3):
        np.testing.assert_array_equal(
            generate_proxies(x, y, gen, k, random_state=5, cache=cache, compat="paper")[0],
            generate_proxies(x, y, gen, k, random_state=5, compat="paper")[0],
        )


# -- GenCache: what prepare stores and what its timings count ---------------------------------


def three_blobs(n_per_class=12, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n_per_class)
    return rng.normal(size=(len(y), d)) + 5 * y[:, None], y


@pytest.mark.parametrize("gen", ["kmeans", "kls", "kmedoids", "fps", "covmax"])
@pytest.mark.parametrize("compat", ["none", "paper"])
def test_prepared_work_is_what_generate_reads_without_computing_it_again(gen, compat, monkeypatch):
    import imprint.gen as gen_module

    x, y = three_blobs()
    fresh = {k: generate_proxies(x, y, gen, k, random_state=7, compat=compat) for k in (2, 3)}
    cache = GenCache(k_values=(2, 3), compat=compat)
    cache.prepare(x, y, gen, 7)

    def computed_again(*args, **kwargs):
        raise AssertionError("GEN recomputed work the cache holds")

    import imprint.medoids as medoids_module

    for name in ("kmeans_split", "farthest_point_sampling", "covariance_scores"):
        monkeypatch.setattr(gen_module, name, computed_again)
    for name in ("kmedoids_for_each_k", "alternating_for_each_k", "alternating_kmedoids"):
        monkeypatch.setattr(medoids_module, name, computed_again)
    for k in (2, 3):
        proxies, labels = generate_proxies(x, y, gen, k, random_state=7, cache=cache, compat=compat)
        np.testing.assert_allclose(proxies, fresh[k][0])
        np.testing.assert_array_equal(labels, fresh[k][1])


@pytest.mark.parametrize(
    "gen, compat, per_class",
    [
        ("kmeans", "none", 1.0),  # one clustering per k
        ("fps", "none", 1.0),  # one greedy order, counted for every k
        ("covmax", "none", 1.0),
        ("kmedoids", "none", 2.0),  # the shared matrix and BUILD, plus each k's swaps
        ("kmedoids", "paper", 2.0),  # the shared matrix, plus each k's iterations
    ],
)
def test_each_k_is_charged_the_shared_work_a_run_for_it_alone_would_need(
    gen, compat, per_class, monkeypatch
):
    import types

    import imprint.gen as gen_module
    import imprint.medoids as medoids_module

    ticks = iter(range(10**6))  # a clock that advances one second per reading
    clock = types.SimpleNamespace(perf_counter=lambda: next(ticks))
    monkeypatch.setattr(gen_module, "time", clock)
    monkeypatch.setattr(medoids_module, "time", clock)
    x, y = three_blobs()
    seconds = GenCache(k_values=(2, 3), compat=compat).prepare(x, y, gen, 0)
    assert seconds == {2: 3 * per_class, 3: 3 * per_class}  # three classes


def test_a_class_smaller_than_every_k_keeps_all_its_samples_without_shared_work():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0], [9.0, 9.0]])
    y = np.array([0, 0, 1, 1, 1, 1])
    for gen in ("fps", "covmax", "kmedoids"):
        cache = GenCache(k_values=(3, 4))
        cache.prepare(x, y, gen, 0)
        proxies, labels = generate_proxies(x, y, gen, 3, cache=cache)
        assert labels.tolist() == [0, 0, 1, 1, 1], gen  # class 0 (2 samples) keeps both
    found, setup, swaps = kmedoids_for_each_k(x[:2], [3, 4], 0)
    assert [found[k].tolist() for k in (3, 4)] == [[0, 1], [0, 1]]
    assert (setup, swaps) == (0.0, {})


def test_covariance_scores_are_numpys_row_covariances_summed_for_any_shape():
    rng = np.random.default_rng(5)
    for d in (2, 3, 17):  # d - 1 is the divisor: 1 at d = 2
        x = rng.normal(loc=rng.normal(size=(9, 1)) * 3, size=(9, d))  # rows with unequal means
        np.testing.assert_allclose(covariance_scores(x), np.cov(x).sum(axis=0), err_msg=str(d))


def test_the_alternating_kmedoids_start_from_the_k_smallest_distance_sums():
    from sklearn.metrics import pairwise_distances

    from imprint.medoids import alternating_for_each_k

    x, _ = three_blobs(seed=3)
    distances = pairwise_distances(x)
    start = np.sort(np.argsort(distances.sum(axis=1), kind="stable")[:4])
    # max_iter = 0: the start itself; one iteration: what alternate_from makes of it
    assert alternating_kmedoids(x, 4, max_iter=0).tolist() == start.tolist()
    ((chosen, _),) = alternating_for_each_k(x, [4], max_iter=1).values()
    assert chosen.tolist() == np.sort(alternate_from(distances, start, max_iter=1)).tolist()
    assert chosen.tolist() != start.tolist()  # the iteration moved a medoid
    # k at least the class size: every sample, without distances
    found = alternating_for_each_k(x[:3], [3, 5])
    assert [found[k][0].tolist() for k in (3, 5)] == [[0, 1, 2], [0, 1, 2]]


def test_an_empty_cluster_does_not_stop_the_others_moving():
    # Medoids 0 and 1 are the same point, so 1's cluster is empty; medoid 2's cluster
    # {2, 3, 4} moves to its middle point 3 in the same iteration.
    x = np.array([[0.0], [0.0], [10.0], [11.0], [12.0]])
    distances = np.abs(x - x.T)
    assert alternate_from(distances, np.array([0, 1, 2]), max_iter=1).tolist() == [0, 1, 3]


@pytest.mark.filterwarnings("ignore:Could not adhere to working_memory")
def test_kmedoids_fills_its_distance_matrix_from_every_chunk(monkeypatch):
    import sklearn.metrics

    x, _ = three_blobs(seed=2)
    whole = kmedoids_for_each_k(x, [2, 5], 0)[0]
    chunked = sklearn.metrics.pairwise_distances_chunked

    def small_chunks(data, working_memory=None, **kwargs):
        return chunked(data, working_memory=0.0001, **kwargs)  # a few rows per chunk

    monkeypatch.setattr(sklearn.metrics, "pairwise_distances_chunked", small_chunks)
    assert len(list(small_chunks(x))) > 3
    found = kmedoids_for_each_k(x, [2, 5], 0)[0]
    assert {k: v.tolist() for k, v in found.items()} == {k: v.tolist() for k, v in whole.items()}


@pytest.mark.parametrize(
    "gens, compat, imported, not_imported",
    [
        (["mean", "kmeans", "fps", "ls"], "none", [], ["sklearn", "kmedoids"]),
        (["kmedoids"], "none", ["kmedoids", "sklearn.metrics"], ["sklearn.cluster"]),
        (["kls"], "paper", ["sklearn.cluster"], ["kmedoids"]),
        (["kmeans"], "paper", ["sklearn.cluster"], ["kmedoids"]),
        (["mean", "fps"], "paper", [], ["sklearn"]),
        (["kmeans"], "none", [], ["sklearn"]),
    ],
)
def test_only_the_libraries_a_grids_gen_needs_are_imported(gens, compat, imported, not_imported):
    import json
    import subprocess
    import sys

    from imprint.gen import import_backends

    import_backends(gens, compat)  # here too, so that mutmut counts this test as reaching it
    code = (
        "import json, sys; from imprint.gen import import_backends; "
        f"import_backends({gens!r}, {compat!r}); print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    modules = set(json.loads(result.stdout))
    assert set(imported) <= modules and not set(not_imported) & modules, (gens, compat)


def test_pam_build_with_more_tied_candidates_than_a_block_and_k_equal_to_n():
    import kmedoids
    from sklearn.metrics import pairwise_distances

    # 1,100 copies of two points: the second medoid ties between 550 candidates, more than one
    # block of exact re-summation (PAM_BUILD_BLOCK = 512)
    x = np.repeat([[0.0], [1.0]], 550, axis=0)[np.random.default_rng(0).permutation(1100)]
    dissimilarity = pairwise_distances(x)
    expected = np.asarray(kmedoids.pam_build(dissimilarity, 2).medoids)
    np.testing.assert_array_equal(pam_build(dissimilarity, 2), expected)
    small = pairwise_distances(np.arange(5.0)[:, None] ** 2)
    np.testing.assert_array_equal(
        pam_build(small, 5), np.asarray(kmedoids.pam_build(small, 5).medoids)
    )


def test_generate_proxies_defaults_are_one_proxy_seed_0_and_ridge_1e_4(two_class_data):
    x, y = two_class_data
    assert len(generate_proxies(x, y, "kmeans")[0]) == 2  # k = 1 per class
    for gen, k in (("random", 3), ("kmeans", 3)):
        default = generate_proxies(x, y, gen, k)[0]
        np.testing.assert_array_equal(default, generate_proxies(x, y, gen, k, random_state=0)[0])
        assert not np.array_equal(default, generate_proxies(x, y, gen, k, random_state=1)[0])
    ridge = generate_proxies(x[:6], np.arange(6) % 2, "ls")[0]
    np.testing.assert_allclose(
        ridge, generate_proxies(x[:6], np.arange(6) % 2, "ls", ls_lambda=1e-4)[0]
    )
    assert not np.allclose(ridge, generate_proxies(x[:6], np.arange(6) % 2, "ls", ls_lambda=1)[0])


def test_generate_proxies_errors_name_the_problem(two_class_data):
    x, y = two_class_data
    with pytest.raises(ValueError, match="unknown compat mode 'ieee'; expected one of"):
        generate_proxies(x, y, "mean", compat="ieee")
    with pytest.raises(ValueError, match="the cache was prepared for compat 'none', not 'paper'"):
        generate_proxies(x, y, "kmeans", cache=GenCache(k_values=(1,)), compat="paper")
    with pytest.raises(ValueError, match="the cache was prepared on device 'cpu', not 'cuda'"):
        generate_proxies(x, y, "kmeans", cache=GenCache(k_values=(1,)), device="cuda")
    with pytest.raises(ValueError, match="unknown GEN method 'median'; expected one of"):
        generate_proxies(x, y, "median")
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        generate_proxies(x, y, "kmeans", k=0)


def test_a_cache_computes_the_least_squares_factor_and_each_clustering_once(
    two_class_data, monkeypatch
):
    import imprint.gen as gen_module

    x, y = two_class_data
    uncached = {gen: generate_proxies(x, y, gen, 3)[0] for gen in ("ls", "kls", "kmeans")}
    calls = {"least_squares_factor": 0, "kmeans_split": 0}
    for name in calls:
        original = getattr(gen_module, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(gen_module, name, counted)
    cache = GenCache(k_values=(3,))  # not prepared: generate_proxies fills it as it goes
    for gen in ("ls", "kls", "kmeans", "kls"):
        np.testing.assert_allclose(generate_proxies(x, y, gen, 3, cache=cache)[0], uncached[gen])
    assert calls == {"least_squares_factor": 1, "kmeans_split": 2}  # one per class


def test_random_proxies_are_distinct_samples():
    x = np.arange(10.0)[:, None]
    for seed in range(5):
        proxies, _ = generate_proxies(x, np.zeros(10, dtype=int), "random", k=9, random_state=seed)
        assert len(np.unique(proxies)) == 9, seed


@pytest.mark.parametrize("compat", ["none", "paper"])
def test_kmeans_split_keeps_the_embeddings_dtype_and_defaults_to_the_cpu(compat):
    from imprint.gen import kmeans_split

    x, _ = three_blobs()
    single = kmeans_split(x.astype(np.float32), 3, 0, compat)
    assert single.centers.dtype == np.float32 and single.assignment.shape == (len(x),)
    assert kmeans_split(x, 3, 0).centers.dtype == np.float64
    # k-means pseudo-classes under the authors' settings too: k proxies per class, each class's
    # own label, every pseudo-class its own members' least-squares proxy
    y = np.repeat([0, 1, 2], 12)
    proxies, labels = generate_proxies(x, y, "kls", 2, compat=compat)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert len(np.unique(proxies.round(9), axis=0)) == 6


def test_a_k_at_least_the_class_size_is_charged_only_the_shared_setup(monkeypatch):
    import types

    import imprint.medoids as medoids_module

    ticks = iter(range(10**6))
    clock = types.SimpleNamespace(perf_counter=lambda: next(ticks))
    monkeypatch.setattr(medoids_module, "time", clock)
    x, y = three_blobs()  # 12 samples per class: k = 20 keeps them all, with no swaps to time
    seconds = GenCache(k_values=(2, 20)).prepare(x, y, "kmedoids", 0)
    assert seconds == {2: 3 * 2.0, 20: 3 * 1.0}
