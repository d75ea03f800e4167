"""GEN: proxy generation, one or more weight vectors ("proxies") per class.

All methods work class by class in ascending label order; a class's randomness comes from a seed
derived from ``(random_state, class position)`` so that it does not depend on the other classes
(except with ``compat="paper"``, which draws as the IMPRINT authors' code does: see
:func:`generate_proxies`).
Methods that take ``k`` clip it to the class size: a class with at most ``k`` samples keeps all its
samples as proxies (for ``kls``: every sample becomes its own pseudo-class).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

# scikit-learn and kmedoids are imported where they are used: importing them takes about a
# second, which every statistics and figure job would pay only for GEN_METHODS. Whoever times
# GEN calls import_backends() first.

GEN_METHODS = (
    "all",
    "random",
    "mean",
    "kmeans",
    "kmedoids",
    "kmedoids_alternate",
    "covmax",
    "fps",
    "ls",
    "kls",
)
#: GEN methods whose number of proxies per class is set by ``k``; the others ignore it.
K_METHODS = frozenset(
    {"random", "kmeans", "kmedoids", "kmedoids_alternate", "covmax", "fps", "kls"}
)
#: ``imprinting.compat``: ``paper`` runs k-means, k-medoids, random and FPS as the IMPRINT
#: authors' code does (:func:`generate_proxies`).
COMPAT_MODES = ("none", "paper")
#: GEN methods that, with ``compat="paper"``, draw from one torch generator seeded once per
#: configuration and shared by the classes in label order (:func:`paper_draw`), as the authors'
#: code draws from torch's global generator: a class's draw depends on the classes before it.
PAPER_SEQUENTIAL_DRAWS = frozenset({"random", "fps"})


def class_seed(random_state: int, class_position: int) -> int:
    """Seed of one class's random choices, independent of every other class."""
    return int(np.random.SeedSequence([random_state, class_position]).generate_state(1)[0])


def gen_seed(random_state: int, class_position: int, compat: str = "none") -> int:
    """The seed a class's GEN uses: :func:`class_seed`, or with ``compat="paper"`` the job's seed
    itself for every class, as the IMPRINT authors' code seeds k-means and k-medoids."""
    return random_state if compat == "paper" else class_seed(random_state, class_position)


@dataclass(frozen=True)
class KMeansSplit:
    """k-means of one class: the centres and, per sample, the index of its centre."""

    centers: np.ndarray
    assignment: np.ndarray


def kmeans_split(
    x: np.ndarray, k: int, seed: int, compat: str = "none", device: str = "cpu"
) -> KMeansSplit:
    """Seeded k-means of one class (k clipped to the class size).

    By default :func:`imprint.kmeans.kmeans` on ``device``: scikit-learn's ``KMeans`` algorithm
    and random draws in PyTorch, float64. With ``compat="paper"`` scikit-learn's ``KMeans`` on
    float32 embeddings, as the IMPRINT authors ran it. With fewer distinct points than ``k``
    either returns duplicate centres (scikit-learn also a warning, silenced): the duplicates are
    kept, so a class always has ``min(k, n)`` centres.
    """
    n = len(x)
    if n <= k:
        return KMeansSplit(centers=x.copy(), assignment=np.arange(n))
    if compat != "paper":
        from imprint.kmeans import kmeans

        found = kmeans(x, k, seed, device=device)
        return KMeansSplit(centers=found.centers.astype(x.dtype), assignment=found.labels)
    with warnings.catch_warnings():
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(x.astype(np.float32))
    return KMeansSplit(centers=model.cluster_centers_.astype(x.dtype), assignment=model.labels_)


@dataclass
class GenCache:
    """Work that GEN calls on the same (normalised) embeddings share.

    :meth:`prepare` runs a method's shared work for every class and every k of ``k_values`` at
    once; :func:`generate_proxies` then reads it. k-means: one clustering per (class, k), used by
    kmeans and kls. k-medoids: the dissimilarity matrix once per class, BUILD once at the largest
    k (BUILD is greedy, so the BUILD medoids for k are the first k of those for the largest k)
    and each k's FasterPAM swap phase from that prefix. FPS: greedy from a start that does not
    depend on k, so its k points are the first k of the largest k's; covmax: one ranking of a
    class's samples, whose first k are its k points. Least squares: the Gram matrix is
    factorised once for ls and every k of kls. k-means and FPS run on ``device``.
    """

    k_values: tuple[int, ...] = ()
    compat: str = "none"
    #: where k-means and farthest-point sampling run (``imprinting.device``)
    device: str = "cpu"
    kmeans: dict[tuple[int, int], KMeansSplit] = field(default_factory=dict)
    #: (gen, class position, k) -> indices of the class's samples that become proxies
    selected: dict[tuple[str, int, int], np.ndarray] = field(default_factory=dict)
    gram_factor: Any = None

    def prepare(
        self, x: np.ndarray, y: np.ndarray, gen: str, random_state: int
    ) -> dict[int, float]:
        """Run the shared work of ``gen`` (kmeans/kls, kmedoids, fps, covmax) for every class and k;
        returns, per k, the seconds of that work a run for k alone would have needed."""
        seconds = dict.fromkeys(self.k_values, 0.0)
        paper = self.compat == "paper"
        for position, label in enumerate(np.unique(y)):
            samples = x[y == label]
            seed = class_seed(random_state, position)
            if gen in ("kmeans", "kls"):
                kmeans_seed = gen_seed(random_state, position, self.compat)
                for k in self.k_values:
                    start = time.perf_counter()
                    self.kmeans[(position, k)] = kmeans_split(
                        samples, k, kmeans_seed, self.compat, self.device
                    )
                    seconds[k] += time.perf_counter() - start
            elif gen == "kmedoids" and paper:  # the authors' alternating k-medoids, per k
                for k, (chosen, elapsed) in alternating_for_each_k(samples, self.k_values).items():
                    self.selected[(gen, position, k)] = chosen
                    seconds[k] += elapsed
            elif gen == "kmedoids":
                medoids, setup, swaps = kmedoids_for_each_k(samples, self.k_values, seed)
                for k, chosen in medoids.items():
                    self.selected[(gen, position, k)] = chosen
                    seconds[k] += setup + swaps.get(k, 0.0)
            elif gen == "fps" and paper:
                pass  # drawn class after class from one generator (paper_draw), not per class
            elif gen in ("fps", "covmax"):
                # Greedy orders: each k's points are the first k of one order per class
                start = time.perf_counter()
                n = len(samples)
                largest = max([k for k in self.k_values if k < n], default=0)
                if gen == "covmax":
                    order = covmax_order(samples)
                elif largest:
                    order = farthest_point_sampling(
                        samples, largest, np.random.default_rng(seed), self.device
                    )
                else:
                    order = None  # every k keeps all samples
                for k in self.k_values:
                    self.selected[(gen, position, k)] = order[:k] if k < n else np.arange(n)
                elapsed = time.perf_counter() - start
                for k in self.k_values:
                    seconds[k] += elapsed
        return seconds


#: GEN methods with work that :meth:`GenCache.prepare` shares across k.
SHARED_ACROSS_K = frozenset({"kmeans", "kls", "kmedoids", "fps", "covmax"})


def import_backends(gen_methods: Sequence[str] = GEN_METHODS, compat: str = "none") -> None:
    """Import the libraries these GEN methods use now, so that GEN timings do not include their
    import; only theirs: scikit-learn alone takes 1-2 s, which a grid without them (or a job
    of a few milliseconds' work) need not pay."""
    if "kmedoids" in gen_methods:
        import kmedoids  # noqa: F401
        import sklearn.metrics  # noqa: F401
    if compat == "paper" and {"kmeans", "kls"} & set(gen_methods):
        import sklearn.cluster  # noqa: F401


def covariance_scores(x: np.ndarray) -> np.ndarray:
    """Column sums of the sample-by-sample covariance matrix (``torch.cov(x)`` in IMPRINT).

    Each sample is treated as a variable observed over the d embedding dimensions; the score of a
    sample is the sum of its covariances with all samples of the class. Computed without forming
    the n×n matrix.
    """
    centered = x - x.mean(axis=1, keepdims=True)
    return centered @ centered.sum(axis=0) / max(x.shape[1] - 1, 1)


def covmax_order(x: np.ndarray) -> np.ndarray:
    """Sample indices by descending :func:`covariance_scores`, ties in sample order: covmax's
    k proxies are the first k."""
    return np.argsort(-covariance_scores(x), kind="stable")


def farthest_point_sampling(
    x: np.ndarray, k: int, rng: np.random.Generator, device: str = "cpu"
) -> np.ndarray:
    """Indices of k samples chosen greedily, each farthest (Euclidean) from those already chosen.

    Written by hand: neither scikit-learn nor SciPy offers it, and the greedy loop is a few lines.
    Starts from a uniformly random sample (drawn on the CPU, so the same on every device). Runs
    in PyTorch on ``device``, in float64; distances as ‖x − c‖ of the difference, not from inner
    products, whose cancellation would reorder near ties.
    """
    import torch

    from imprint.devices import resolve_device

    data = torch.as_tensor(np.asarray(x, dtype=np.float64), device=resolve_device(device))
    first = int(rng.integers(len(x)))
    chosen = torch.empty(k, dtype=torch.int64, device=data.device)
    chosen[0] = first
    nearest = torch.linalg.vector_norm(data - data[first], dim=1)
    # The loop stays on the device (no per-step copy to the host): argmax is the first largest.
    for step in range(1, k):
        chosen[step] = torch.argmax(nearest)
        torch.minimum(
            nearest, torch.linalg.vector_norm(data - data[chosen[step]], dim=1), out=nearest
        )
    return chosen.cpu().numpy()


def paper_generator(seed: int) -> Any:
    """A torch CPU generator in the state ``torch.manual_seed(seed)`` leaves the global one in
    (same Mersenne Twister stream), so that compat-paper draws do not touch global state."""
    import torch

    return torch.Generator().manual_seed(seed)


def paper_draw(
    samples: np.ndarray, gen: str, k: int, generator: Any, replay: bool = False
) -> np.ndarray:
    """Indices of one class's random or FPS proxies as the IMPRINT authors' ``select_proxies``
    chooses them, drawing from ``generator`` (shared by the classes in label order):

    - fewer than k samples, or one: every sample, and nothing is drawn;
    - random: ``torch.randperm(n)[:k]``, in that order;
    - fps: the start ``torch.randint(n, (1,))``, then their greedy loop (float32 ``torch.cdist``
      to the chosen set, remaining indices in the order of their ``set`` difference), so that
      near ties break as theirs do.

    ``replay=True`` only advances ``generator`` past the class's draw (``samples`` need just
    their number of rows): what the classes before an added class drew.
    """
    import torch

    n = len(samples)
    if n < k or n == 1:
        return np.arange(n)
    if gen == "random":
        return torch.randperm(n, generator=generator)[:k].numpy()
    if gen != "fps":
        raise ValueError(f"compat 'paper' draws for random and fps only, not {gen!r}")
    start = int(torch.randint(n, (1,), generator=generator).item())
    if replay:
        return np.empty(0, dtype=np.int64)
    # Transcribed from their farthest_point_sampling rather than reusing ours: its float32
    # distances and the iteration order of a Python set decide near ties there.
    data = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    selected = [start]
    for _ in range(1, k):
        remaining = list(set(range(n)) - set(selected))
        distances = torch.cdist(data[remaining], data[selected]).min(dim=1).values
        selected.append(remaining[int(distances.argmax())])
    return np.asarray(selected, dtype=np.int64)


def least_squares_proxies(
    x: np.ndarray, groups: np.ndarray, ls_lambda: float, gram_factor: Any = None
) -> np.ndarray:
    """Closed-form least-squares classifier weights, one row per group (class or pseudo-class).

    ``W = (1/G) Mᵀ (XᵀX/N + λI)⁻¹`` with M the group means and G the number of groups, i.e. the
    ridge regression ``min_W (1/N)‖X Wᵀ − Y‖² + λ‖W‖²`` of one-hot targets Y in which every group
    counts equally (exact for balanced groups), as derived for IMPRINT (arXiv:2503.06385).
    Written out rather than with ``sklearn.linear_model.Ridge``, which weights groups by size.
    The Gram matrix does not depend on the groups: ``gram_factor`` (from :func:`gram_factor`)
    lets ls and every k of kls share one Cholesky factorisation.
    """
    group_ids = np.unique(groups)
    means = np.stack([x[groups == g].mean(axis=0) for g in group_ids])
    factor = gram_factor if gram_factor is not None else least_squares_factor(x, ls_lambda)
    return scipy.linalg.cho_solve(factor, means.T).T / len(group_ids)


def least_squares_factor(x: np.ndarray, ls_lambda: float) -> Any:
    """Cholesky factorisation of ``XᵀX/N + λI`` (symmetric positive definite for λ > 0)."""
    n, d = x.shape
    gram = x.T @ x / n + ls_lambda * np.eye(d, dtype=x.dtype)
    return scipy.linalg.cho_factor(gram)


def alternating_kmedoids(x: np.ndarray, k: int, max_iter: int = 300) -> np.ndarray:
    """k-medoids as scikit-learn-extra's ``KMedoids(n_clusters=k)`` runs with its defaults, the
    IMPRINT authors' choice: Euclidean distances, ``init="heuristic"`` (the k points of smallest
    total distance to all others), ``method="alternate"`` (assign every point to its nearest
    medoid, move each medoid to the member of smallest total distance within its cluster, if
    that is smaller; until nothing moves or ``max_iter``). Returns the medoids' indices, sorted.

    Written out (a dozen lines, following scikit-learn-extra's steps and tie-breaking) because
    scikit-learn-extra is unmaintained and does not install with current numpy; the kmedoids
    package's ``alternating`` runs the same algorithm but not the same initialisation, and
    tests/test_gen.py checks the two agree from the same start.
    """
    return alternating_for_each_k(x, [k], max_iter)[k][0]


def alternating_for_each_k(
    x: np.ndarray, k_values, max_iter: int = 300
) -> dict[int, tuple[np.ndarray, float]]:
    """:func:`alternating_kmedoids` for every k, sharing the distance matrix: per k the sorted
    medoid indices (all samples where k >= their number) and the seconds it took, the distance
    matrix counted for every k."""
    from sklearn.metrics import pairwise_distances

    start = time.perf_counter()
    distances = pairwise_distances(x) if any(k < len(x) for k in k_values) else None
    shared = time.perf_counter() - start
    found = {}
    for k in k_values:
        start = time.perf_counter()
        if k >= len(x):
            chosen = np.arange(len(x))
        else:
            medoids = np.argpartition(distances.sum(axis=1), k - 1)[:k]
            chosen = np.sort(alternate_from(distances, medoids, max_iter))
        found[k] = (chosen, shared + time.perf_counter() - start)
    return found


def alternate_from(distances: np.ndarray, medoids: np.ndarray, max_iter: int = 300) -> np.ndarray:
    """The alternating k-medoids iterations of :func:`alternating_kmedoids` from ``medoids``."""
    medoids = np.array(medoids, copy=True)
    for _ in range(max_iter):
        previous = medoids.copy()
        nearest = np.argmin(distances[medoids, :], axis=0)
        for cluster in range(len(medoids)):
            members = np.flatnonzero(nearest == cluster)
            if len(members) == 0:
                continue
            costs = distances[np.ix_(members, members)].sum(axis=1)
            best = int(np.argmin(costs))
            if costs[best] < costs[np.argmax(members == medoids[cluster])]:
                medoids[cluster] = members[best]
        if np.array_equal(previous, medoids):
            break
    return medoids


def _select_indices(x: np.ndarray, gen: str, k: int, seed: int, device: str = "cpu") -> np.ndarray:
    """Indices of the samples that become proxies for the sample-selecting GEN methods."""
    n = len(x)
    if gen == "all" or n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if gen == "random":
        return np.sort(rng.choice(n, size=k, replace=False))
    if gen == "covmax":
        return covmax_order(x)[:k]
    if gen == "fps":
        return farthest_point_sampling(x, k, rng, device)
    if gen == "kmedoids":
        return kmedoids_for_each_k(x, [k], seed)[0][k]
    if gen == "kmedoids_alternate":
        return alternating_kmedoids(x, k)
    raise AssertionError(gen)


#: Row blocks of the dissimilarity matrix that :func:`pam_build` processes at once (bounds its
#: temporaries to a few times ``block x n`` floats).
PAM_BUILD_BLOCK = 512


def pam_build(dissimilarity: np.ndarray, k: int) -> np.ndarray:
    """The medoids that ``kmedoids.pam_build(dissimilarity, k)`` returns, in its order.

    Written by hand because the package's BUILD recomputes every candidate's gain from all n
    points at each of the k steps (k·n² work: 22 s at n = 6,000, k = 100); here the gains are
    kept up to date from the rows whose nearest medoid changed (about n² + n²·ln k): 1.1 s there.
    Ties must resolve exactly as in the package, which sums each gain sequentially in float64
    and keeps the first candidate with the smallest sum: candidates whose kept-up gain is within
    a rounding bound of the best are re-summed in the package's order (``np.cumsum`` is a
    sequential sum), and the first smallest wins. Like the package, it stops early (fewer than k
    medoids) when no candidate lowers the loss, e.g. when the rest are duplicates of medoids.
    """
    d = np.asarray(dissimilarity, dtype=np.float64)
    n = len(d)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], not {k}")
    # First medoid: the smallest column sum over the other points, summed row by row as the
    # package does (its diagonal entry skipped).
    column_sums = np.zeros(n)
    for j in range(n):
        row = d[j].copy()
        row[j] = 0.0
        column_sums += row
    medoids = [int(np.argmin(column_sums))]  # argmin: the first of equal sums
    near = d[:, medoids[0]].copy()  # the package keeps d[m, m] here, not 0, for the first
    diagonal = d.diagonal()
    # gain[i] = -near[i] + sum over j != i of min(0, d[j, i] - near[j])
    gain = np.zeros(n)
    for start in range(0, n, PAM_BUILD_BLOCK):
        rows = np.arange(start, min(start + PAM_BUILD_BLOCK, n))
        gain += _gain_terms(d, rows, near[rows]).sum(axis=0)
    gain += -near - np.minimum(0.0, diagonal - near)
    # Both the kept-up and the sequential sums are within about (n + k)·eps·loss of the true
    # sum; 1e-9·loss leaves a wide margin.
    tolerance = 1e-9 * max(float(near.sum()), np.finfo(float).tiny)
    for _ in range(1, k):
        candidates = np.flatnonzero(gain <= gain.min() + tolerance)
        exact = np.concatenate(
            [
                _sequential_gains(d, near, candidates[start : start + PAM_BUILD_BLOCK])
                for start in range(0, len(candidates), PAM_BUILD_BLOCK)
            ]
        )
        best, best_sum = int(candidates[np.argmin(exact)]), exact.min()  # the first smallest
        if best_sum >= 0:  # no candidate lowers the loss
            break
        column = d[:, best]
        changed = np.flatnonzero(column < near)
        changed = np.append(changed[changed != best], best)
        new_near = near.copy()
        new_near[changed] = column[changed]
        new_near[best] = 0.0
        for start in range(0, len(changed), PAM_BUILD_BLOCK):
            rows = changed[start : start + PAM_BUILD_BLOCK]
            delta = _gain_terms(d, rows, new_near[rows]) - _gain_terms(d, rows, near[rows])
            # A row's own column holds -near, not min(0, d[r, r] - near)
            own = np.arange(len(rows))
            delta[own, rows] = near[rows] - new_near[rows]
            gain += delta.sum(axis=0)
        near = new_near
        medoids.append(best)
    return np.asarray(medoids)


def _sequential_gains(d: np.ndarray, near: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Each candidate's gain summed as the package sums it: ``-near[i]``, then
    ``min(0, d[j, i] - near[j])`` for j = 0..n-1 but i, one after the other (``np.cumsum`` along
    a row is sequential; the skipped term is set to 0, and adding 0 changes no sum)."""
    terms = np.minimum(d[:, candidates].T - near[None, :], 0.0)
    terms[np.arange(len(candidates)), candidates] = 0.0
    sequence = np.concatenate((-near[candidates, None], terms), axis=1)
    return np.cumsum(sequence, axis=1)[:, -1]


def _gain_terms(d: np.ndarray, rows: np.ndarray, near: np.ndarray) -> np.ndarray:
    """``min(0, d[r, i] - near[r])`` for the given rows r and every candidate i."""
    block = d[rows] - near[:, None]
    return np.minimum(block, 0.0, out=block)


def transpose_in_place(square: np.ndarray, block: int = 512) -> None:
    """Transpose a square C-ordered matrix in its own memory, block pair by block pair (numpy's
    ``.T`` is a view and ``ascontiguousarray(a.T)`` a second n x n copy)."""
    n = len(square)
    for i in range(0, n, block):
        rows = slice(i, min(i + block, n))
        square[rows, rows] = square[rows, rows].T.copy()
        for j in range(i + block, n, block):
            columns = slice(j, min(j + block, n))
            upper = square[rows, columns].copy()
            square[rows, columns] = square[columns, rows].T
            square[columns, rows] = upper.T


def kmedoids_for_each_k(
    x: np.ndarray, k_values, seed: int
) -> tuple[dict[int, np.ndarray], float, dict[int, float]]:
    """FasterPAM medoids (sorted sample indices) of ``x`` for every k in ``k_values``, each as
    ``kmedoids.fasterpam(D, k, init="build", random_state=seed)`` finds them, sharing the work
    between the k (``seed`` orders FasterPAM's swaps).

    Returns the medoids per k, the seconds of the shared work (dissimilarities and BUILD) and the
    seconds of each k's swap phase. The Euclidean dissimilarities stay float64: float32 would
    halve the memory traffic of BUILD and the swaps, but changes the medoids where distances
    (nearly) tie (measured), and these must equal a separate FasterPAM run's for every k.
    FasterPAM reads the matrix column by column, so it gets the same values in column-major
    layout (5x faster swaps at 6,000 points: 17 s to 3.5 s for 19 k), transposed in place.
    """
    import kmedoids
    from sklearn.metrics import pairwise_distances_chunked

    n = len(x)
    found = {k: np.arange(n) for k in k_values if k >= n}
    wanted = sorted({k for k in k_values if k < n})
    if not wanted:
        return found, 0.0, {}
    start = time.perf_counter()
    # Filled by row blocks: no n x n temporaries beside the matrix itself
    dissimilarity = np.empty((n, n), dtype=np.float64)
    row = 0
    for block in pairwise_distances_chunked(x, working_memory=256):
        dissimilarity[row : row + len(block)] = block
        row += len(block)
    build = pam_build(dissimilarity, wanted[-1])
    transpose_in_place(dissimilarity)
    column_major = dissimilarity.T  # the original values, each column contiguous
    setup = time.perf_counter() - start
    swaps = {}
    for k in wanted:
        start = time.perf_counter()
        with warnings.catch_warnings():
            # fasterpam warns that the seed is ignored when it is given start medoids, but it
            # does use it (to order the swaps), exactly as after its own BUILD.
            warnings.simplefilter("ignore", UserWarning)
            result = kmedoids.fasterpam(column_major, build[:k].copy(), random_state=seed, n_cpu=1)
        found[k] = np.sort(np.asarray(result.medoids))
        swaps[k] = time.perf_counter() - start
    return found, setup, swaps


def generate_proxies(
    x: np.ndarray,
    y: np.ndarray,
    gen: str,
    k: int = 1,
    ls_lambda: float = 1e-4,
    random_state: int = 0,
    cache: GenCache | None = None,
    compat: str = "none",
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Proxies ``[P, d]`` and their labels ``[P]`` (values of ``y``), in ascending label order.

    ``gen`` is one of :data:`GEN_METHODS`:

    - ``all``: every sample; ``random``: k samples drawn without replacement; ``mean``: the mean;
    - ``kmeans``: the centres of a seeded k-means (:func:`kmeans_split`); ``kmedoids``:
      FasterPAM medoids (BUILD initialisation, from the ``kmedoids`` package, see
      :func:`kmedoids_for_each_k`);
      ``kmedoids_alternate``: the alternating k-medoids of the authors' code
      (:func:`alternating_kmedoids`);
    - ``covmax``: the k samples with the largest :func:`covariance_scores`;
    - ``fps``: :func:`farthest_point_sampling` from a random start;
    - ``ls``: :func:`least_squares_proxies` over the classes (one proxy per class);
    - ``kls``: k-means splits every class into k pseudo-classes, then least squares over all of
      them; each proxy keeps its parent class's label.

    ``cache`` (a :class:`GenCache`) shares work between calls on the same ``x``: the k-means
    of a (class, k) between ``kmeans`` and ``kls``, k-medoids, FPS and covmax for all k of a
    class, the least-squares factorisation. The proxies are the same with or without it.

    ``device`` (``cpu``, ``cuda`` or ``auto``): where k-means and FPS run; the proxies are the
    same on every device up to floating-point ties.

    ``compat="paper"``: k-means (for kmeans and kls) and k-medoids as the IMPRINT authors' code
    runs them: scikit-learn's ``KMeans(n_clusters=k, random_state=seed)`` on float32 with the
    same seed for every class, ``kmedoids`` as ``kmedoids_alternate``, and ``random`` and
    ``fps`` from one torch generator seeded with ``random_state`` and drawn class after class
    (:func:`paper_draw`). Other methods are unchanged.
    """
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat mode {compat!r}; expected one of {COMPAT_MODES}")
    if cache is not None and cache.compat != compat:
        raise ValueError(f"the cache was prepared for compat {cache.compat!r}, not {compat!r}")
    if cache is not None and cache.device != device:
        raise ValueError(f"the cache was prepared on device {cache.device!r}, not {device!r}")
    if gen not in GEN_METHODS:
        raise ValueError(f"unknown GEN method {gen!r}; expected one of {GEN_METHODS}")
    if gen in K_METHODS and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    classes = np.unique(y)
    members = [np.flatnonzero(y == label) for label in classes]

    factor = None
    if gen in ("ls", "kls"):
        factor = cache.gram_factor if cache is not None else None
        if factor is None:
            factor = least_squares_factor(x, ls_lambda)
            if cache is not None:
                cache.gram_factor = factor
    if gen == "ls":
        return least_squares_proxies(x, y, ls_lambda, factor), classes.copy()

    if gen == "kls":
        pseudo_class = np.empty(len(y), dtype=np.int64)
        parent_labels = []
        for position, idx in enumerate(members):
            split = _kmeans_of_class(x[idx], k, random_state, position, compat, device, cache)
            # Empty clusters (only possible with duplicate points) get no pseudo-class.
            _, dense = np.unique(split.assignment, return_inverse=True)
            pseudo_class[idx] = len(parent_labels) + dense
            parent_labels.extend([classes[position]] * (dense.max() + 1))
        proxies = least_squares_proxies(x, pseudo_class, ls_lambda, factor)
        return proxies, np.asarray(parent_labels)

    if compat == "paper" and gen in PAPER_SEQUENTIAL_DRAWS:
        generator = paper_generator(random_state)
        blocks = [x[idx][paper_draw(x[idx], gen, k, generator)] for idx in members]
    else:
        blocks = [
            class_proxies(x[idx], gen, k, random_state, position, compat, device, cache)
            for position, idx in enumerate(members)
        ]
    labels = np.concatenate([np.full(len(b), c) for b, c in zip(blocks, classes, strict=True)])
    return np.concatenate(blocks), labels


#: GEN methods that imprint each class from its own samples alone (ls and kls solve for all
#: classes at once): with these a class can be added or extended without touching the others.
PER_CLASS_METHODS = tuple(gen for gen in GEN_METHODS if gen not in ("ls", "kls"))


def class_proxies(
    samples: np.ndarray,
    gen: str,
    k: int,
    random_state: int,
    position: int,
    compat: str = "none",
    device: str = "cpu",
    cache: GenCache | None = None,
    earlier_counts: Sequence[int] = (),
) -> np.ndarray:
    """The proxies of one class from its own ``samples`` (``gen`` one of
    :data:`PER_CLASS_METHODS`), seeded as :func:`generate_proxies` seeds the class at
    ``position`` in label order: what adding a class to a fitted classifier imprints.

    With ``compat="paper"``, random and FPS draw after the classes before it
    (:data:`PAPER_SEQUENTIAL_DRAWS`): ``earlier_counts``, the sizes of the ``position`` classes
    before it, replay their draws first."""
    if gen not in PER_CLASS_METHODS:
        raise ValueError(
            f"GEN {gen!r} imprints all classes together; per class: {PER_CLASS_METHODS}"
        )
    if compat == "paper" and gen in PAPER_SEQUENTIAL_DRAWS:
        if len(earlier_counts) != position:
            raise ValueError(
                f"compat 'paper' {gen} draws after the classes before position {position}: "
                f"their sizes are needed (got {len(earlier_counts)})"
            )
        generator = paper_generator(random_state)
        for count in earlier_counts:
            paper_draw(np.empty((count, 0)), gen, k, generator, replay=True)
        return samples[paper_draw(samples, gen, k, generator)]
    if gen == "mean":
        return samples.mean(axis=0, keepdims=True)
    if gen == "kmeans":
        return _kmeans_of_class(samples, k, random_state, position, compat, device, cache).centers
    if cache is not None and (gen, position, k) in cache.selected:
        return samples[cache.selected[(gen, position, k)]]
    method = "kmedoids_alternate" if gen == "kmedoids" and compat == "paper" else gen
    chosen = _select_indices(samples, method, k, class_seed(random_state, position), device)
    return samples[chosen]


def _kmeans_of_class(samples, k, random_state, position, compat, device, cache) -> KMeansSplit:
    """One class's k-means, from ``cache`` when it holds it (and stored there when it did not)."""
    key = (position, k)
    if cache is not None and key in cache.kmeans:
        return cache.kmeans[key]
    result = kmeans_split(samples, k, gen_seed(random_state, position, compat), compat, device)
    if cache is not None:
        cache.kmeans[key] = result
    return result
