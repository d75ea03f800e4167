"""GEN: proxy generation, one or more weight vectors ("proxies") per class.

All methods work class by class in ascending label order; a class's randomness comes from a seed
derived from ``(random_state, class position)`` so that it does not depend on the other classes.
Methods that take ``k`` clip it to the class size: a class with at most ``k`` samples keeps all its
samples as proxies (for ``kls``: every sample becomes its own pseudo-class).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

# scikit-learn and kmedoids are imported where they are used: importing them takes about a
# second, which every statistics and figure job would pay only for GEN_METHODS. Whoever times
# GEN calls import_backends() first.

GEN_METHODS = ("all", "random", "mean", "kmeans", "kmedoids", "covmax", "fps", "ls", "kls")
#: GEN methods whose number of proxies per class is set by ``k``; the others ignore it.
K_METHODS = frozenset({"random", "kmeans", "kmedoids", "covmax", "fps", "kls"})


def class_seed(random_state: int, class_position: int) -> int:
    """Seed of one class's random choices, independent of every other class."""
    return int(np.random.SeedSequence([random_state, class_position]).generate_state(1)[0])


@dataclass(frozen=True)
class KMeansSplit:
    """k-means of one class: the centres and, per sample, the index of its centre."""

    centers: np.ndarray
    assignment: np.ndarray


def kmeans_split(x: np.ndarray, k: int, seed: int) -> KMeansSplit:
    """Seeded scikit-learn k-means of one class (k clipped to the class size).

    With fewer distinct points than ``k`` scikit-learn returns duplicate centres (and a warning
    that we silence): the duplicates are kept, so a class always has ``min(k, n)`` centres.
    """
    n = len(x)
    if n <= k:
        return KMeansSplit(centers=x.copy(), assignment=np.arange(n))
    with warnings.catch_warnings():
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(x)
    return KMeansSplit(centers=model.cluster_centers_.astype(x.dtype), assignment=model.labels_)


def import_backends() -> None:
    """Import the libraries GEN uses now, so that GEN timings do not include their import."""
    import kmedoids  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.metrics  # noqa: F401


def covariance_scores(x: np.ndarray) -> np.ndarray:
    """Column sums of the sample-by-sample covariance matrix (``torch.cov(x)`` in IMPRINT).

    Each sample is treated as a variable observed over the d embedding dimensions; the score of a
    sample is the sum of its covariances with all samples of the class. Computed without forming
    the n×n matrix.
    """
    centered = x - x.mean(axis=1, keepdims=True)
    return centered @ centered.sum(axis=0) / max(x.shape[1] - 1, 1)


def farthest_point_sampling(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k samples chosen greedily, each farthest (Euclidean) from those already chosen.

    Written by hand: neither scikit-learn nor SciPy offers it, and the greedy loop is a few lines.
    Starts from a uniformly random sample.
    """
    chosen = [int(rng.integers(len(x)))]
    nearest = np.linalg.norm(x - x[chosen[0]], axis=1)
    for _ in range(1, k):
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[nxt], axis=1))
    return np.asarray(chosen)


def least_squares_proxies(x: np.ndarray, groups: np.ndarray, ls_lambda: float) -> np.ndarray:
    """Closed-form least-squares classifier weights, one row per group (class or pseudo-class).

    ``W = (1/G) Mᵀ (XᵀX/N + λI)⁻¹`` with M the group means and G the number of groups, i.e. the
    ridge regression ``min_W (1/N)‖X Wᵀ − Y‖² + λ‖W‖²`` of one-hot targets Y in which every group
    counts equally (exact for balanced groups), as derived for IMPRINT (arXiv:2503.06385).
    Written out rather than with ``sklearn.linear_model.Ridge``, which weights groups by size.
    """
    n, d = x.shape
    group_ids = np.unique(groups)
    means = np.stack([x[groups == g].mean(axis=0) for g in group_ids])
    gram = x.T @ x / n + ls_lambda * np.eye(d, dtype=x.dtype)
    return scipy.linalg.solve(gram, means.T, assume_a="pos").T / len(group_ids)


def _select_indices(x: np.ndarray, gen: str, k: int, seed: int) -> np.ndarray:
    """Indices of the samples that become proxies for the sample-selecting GEN methods."""
    n = len(x)
    if gen == "all" or n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if gen == "random":
        return np.sort(rng.choice(n, size=k, replace=False))
    if gen == "covmax":
        return np.argsort(-covariance_scores(x), kind="stable")[:k]
    if gen == "fps":
        return farthest_point_sampling(x, k, rng)
    if gen == "kmedoids":
        import kmedoids
        from sklearn.metrics import pairwise_distances

        dissimilarity = pairwise_distances(x)
        result = kmedoids.fasterpam(dissimilarity, k, init="build", random_state=seed, n_cpu=1)
        return np.sort(np.asarray(result.medoids))
    raise AssertionError(gen)


def generate_proxies(
    x: np.ndarray,
    y: np.ndarray,
    gen: str,
    k: int = 1,
    ls_lambda: float = 1e-4,
    random_state: int = 0,
    kmeans_cache: dict[tuple[int, int], KMeansSplit] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Proxies ``[P, d]`` and their labels ``[P]`` (values of ``y``), in ascending label order.

    ``gen`` is one of :data:`GEN_METHODS`:

    - ``all``: every sample; ``random``: k samples drawn without replacement; ``mean``: the mean;
    - ``kmeans``: the centres of a seeded scikit-learn k-means; ``kmedoids``: FasterPAM medoids
      (BUILD initialisation, from the ``kmedoids`` package);
    - ``covmax``: the k samples with the largest :func:`covariance_scores`;
    - ``fps``: :func:`farthest_point_sampling` from a random start;
    - ``ls``: :func:`least_squares_proxies` over the classes (one proxy per class);
    - ``kls``: k-means splits every class into k pseudo-classes, then least squares over all of
      them; each proxy keeps its parent class's label.

    ``kmeans_cache`` lets callers share the k-means of a (class position, k) between ``kmeans``
    and ``kls`` (and across normalisations of the result); it is filled as a side effect.
    """
    if gen not in GEN_METHODS:
        raise ValueError(f"unknown GEN method {gen!r}; expected one of {GEN_METHODS}")
    if gen in K_METHODS and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    classes = np.unique(y)
    members = [np.flatnonzero(y == label) for label in classes]

    if gen == "ls":
        return least_squares_proxies(x, y, ls_lambda), classes.copy()

    def split(position: int) -> KMeansSplit:
        key = (position, k)
        if kmeans_cache is not None and key in kmeans_cache:
            return kmeans_cache[key]
        result = kmeans_split(x[members[position]], k, class_seed(random_state, position))
        if kmeans_cache is not None:
            kmeans_cache[key] = result
        return result

    if gen == "kls":
        pseudo_class = np.empty(len(y), dtype=np.int64)
        parent_labels = []
        for position, idx in enumerate(members):
            assignment = split(position).assignment
            # Empty clusters (only possible with duplicate points) get no pseudo-class.
            _, dense = np.unique(assignment, return_inverse=True)
            pseudo_class[idx] = len(parent_labels) + dense
            parent_labels.extend([classes[position]] * (dense.max() + 1))
        return least_squares_proxies(x, pseudo_class, ls_lambda), np.asarray(parent_labels)

    blocks = []
    for position, idx in enumerate(members):
        samples = x[idx]
        if gen == "mean":
            blocks.append(samples.mean(axis=0, keepdims=True))
        elif gen == "kmeans":
            blocks.append(split(position).centers)
        else:
            chosen = _select_indices(samples, gen, k, class_seed(random_state, position))
            blocks.append(samples[chosen])
    labels = np.concatenate([np.full(len(b), c) for b, c in zip(blocks, classes, strict=True)])
    return np.concatenate(blocks), labels
