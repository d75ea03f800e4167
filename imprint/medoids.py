"""k-medoids for GEN: FasterPAM with a hand-written BUILD shared across k (``kmedoids``), and
the alternating k-medoids of the IMPRINT authors' code (``kmedoids_alternate``).

Both share work across the k of a grid: one dissimilarity matrix per class, one BUILD at the
largest k (its first k medoids are BUILD's for k) or one distance matrix for the alternating
iterations. :mod:`imprint.gen` registers the two GEN methods that call these.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


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
