"""k-means on the CPU or a CUDA device: scikit-learn's ``KMeans`` algorithm in PyTorch.

GEN ``kmeans`` and ``kls`` cluster every class for every k; on a GPU that work belongs beside
the scoring, which already runs there. This module runs, step for step, what
``sklearn.cluster.KMeans(n_clusters=k, random_state=seed, n_init="auto")`` runs on dense data
(scikit-learn 1.4+: one k-means++ initialisation, Lloyd iterations):

- the data are centred on their mean (scikit-learn's precision step), the centres shifted back;
- greedy k-means++: the first centre drawn uniformly, then for each further centre
  ``2 + int(log k)`` candidates drawn with probability proportional to the squared distance to
  the nearest chosen centre, the candidate that lowers the potential most kept;
- Lloyd iterations until the labels stop changing ("strict convergence") or the summed squared
  centre shift is at most ``tol`` × the mean per-feature variance, at most ``max_iter`` times;
  an empty cluster is moved to the point farthest from its centre; after a stop on the shift
  tolerance the labels are recomputed from the final centres.

The random draws come from the same ``numpy.random.RandomState(seed)`` calls in the same order,
so with float64 on the CPU the clusterings are scikit-learn's except where floating-point
rounding breaks a near-tie differently (tests/test_kmeans.py measures how often, and that the
inertia is the same on average). Written by hand because scikit-learn runs on the CPU only and
no maintained PyTorch k-means follows its algorithm; the point is the same clustering on any
device, not a new one.

Everything runs in float64: in float32 Lloyd iterations drift apart from float64 ones through
rounding alone, and GEN's results must not depend on ``imprinting.dtype``. The per-cluster sums
use ``index_add_`` on the CPU (sequential, so reproducible) and a one-hot matrix product on CUDA,
whose atomic ``index_add_`` would make the sums, and so the centres, vary from run to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imprint.devices import resolve_device

#: scikit-learn's defaults for ``KMeans``.
MAX_ITER = 300
TOL = 1e-4


@dataclass(frozen=True)
class KMeansResult:
    """Centres ``[k, d]`` (numpy, float64), each sample's centre index ``[n]``, the inertia (sum
    of squared distances to the assigned centres) and the number of Lloyd iterations run."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int,
    device: str = "cpu",
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> KMeansResult:
    """k-means of the rows of ``x`` into ``k`` clusters, as scikit-learn's ``KMeans`` with
    ``random_state=seed`` finds them (see the module docstring), on ``device``."""
    import torch

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the number of samples), not {k}")
    where = resolve_device(device)
    random_state = np.random.RandomState(seed)
    tolerance = float(np.mean(np.var(x, axis=0))) * tol if tol else 0.0
    mean = x.mean(axis=0)  # in numpy, as scikit-learn centres: the same rounding
    data = torch.as_tensor(x - mean, device=where)
    sq_norms = (data * data).sum(dim=1)
    centers = _kmeans_plusplus(data, sq_norms, k, random_state)
    labels, centers, n_iter = _lloyd(data, centers, max_iter, tolerance)
    inertia = float(((data - centers[labels]) ** 2).sum())
    return KMeansResult(
        centers=centers.cpu().numpy() + mean,
        labels=labels.cpu().numpy(),
        inertia=inertia,
        n_iter=n_iter,
    )


def _squared_distances(points: Any, points_sq: Any, data: Any, data_sq: Any) -> Any:
    """``[len(points), n]`` squared Euclidean distances, as scikit-learn's
    ``euclidean_distances(..., squared=True)`` computes them (clipped at 0)."""
    distances = -2.0 * (points @ data.T)
    distances += points_sq[:, None]
    distances += data_sq[None, :]
    return distances.clamp_(min=0)


def _kmeans_plusplus(data: Any, sq_norms: Any, k: int, random_state: np.random.RandomState):
    """scikit-learn's greedy k-means++ (``sklearn.cluster._kmeans._kmeans_plusplus``) with
    unit sample weights: the same draws from ``random_state``, in the same order."""
    import torch

    n = len(data)
    n_local_trials = 2 + int(np.log(k))
    first = random_state.choice(n, p=np.ones(n) / n)
    chosen = [int(first)]
    closest = _squared_distances(
        data[first : first + 1], sq_norms[first : first + 1], data, sq_norms
    )[0]
    potential = float(closest.sum())
    for _ in range(1, k):
        draws = random_state.uniform(size=n_local_trials) * potential
        cumulative = torch.cumsum(closest, dim=0)
        candidates = torch.searchsorted(cumulative, torch.as_tensor(draws, device=data.device))
        candidates = candidates.clamp_(max=n - 1)
        to_candidates = _squared_distances(data[candidates], sq_norms[candidates], data, sq_norms)
        torch.minimum(closest[None, :], to_candidates, out=to_candidates)
        potentials = to_candidates.sum(dim=1)
        best = int(torch.argmin(potentials))
        potential = float(potentials[best])
        closest = to_candidates[best]
        chosen.append(int(candidates[best]))
    return data[torch.as_tensor(chosen, device=data.device)].clone()


def _lloyd(data: Any, centers: Any, max_iter: int, tolerance: float) -> tuple[Any, Any, int]:
    """scikit-learn's Lloyd loop (``_kmeans_single_lloyd``): labels, centres, iterations."""
    import torch

    labels_old = torch.full((len(data),), -1, dtype=torch.int64, device=data.device)
    strict = False
    iteration = 0
    for iteration in range(max_iter):  # noqa: B007 (the count is returned)
        labels = _assign(data, centers)
        new_centers = _update_centers(data, centers, labels)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if torch.equal(labels, labels_old):
            strict = True
            break
        if shift <= tolerance:
            break
        labels_old = labels
    if not strict:  # the labels of the final centres
        labels = _assign(data, centers)
    return labels, centers, iteration + 1


def _assign(data: Any, centers: Any) -> Any:
    """Each row's nearest centre (the first of equals), ranked by ‖c‖² − 2⟨x, c⟩ as
    scikit-learn ranks them (‖x‖² does not change a row's order)."""
    import torch

    key = torch.addmm((centers * centers).sum(dim=1)[None, :], data, centers.T, alpha=-2.0)
    return key.argmin(dim=1)


def _update_centers(data: Any, centers: Any, labels: Any) -> Any:
    """The mean of every cluster; an empty cluster takes the point farthest from its centre
    (scikit-learn's ``_relocate_empty_clusters_dense``), or, when all points sit on their
    centres, the largest cluster's centre (``_average_centers``)."""
    import torch

    k = len(centers)
    counts = torch.bincount(labels, minlength=k).to(data.dtype)
    if data.device.type == "cuda":  # deterministic: no atomics
        one_hot = torch.zeros(k, len(data), dtype=data.dtype, device=data.device)
        one_hot[labels, torch.arange(len(data), device=data.device)] = 1.0
        sums = one_hot @ data
    else:
        sums = torch.zeros_like(centers).index_add_(0, labels, data)
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty):
        distances = ((data - centers[labels]) ** 2).sum(dim=1)
        if float(distances.max()) > 0:
            # scikit-learn's choice and order among equally far points: numpy's argpartition
            host = distances.cpu().numpy()
            far = np.argpartition(host, -len(empty))[: -len(empty) - 1 : -1]
            for cluster, point in zip(empty.tolist(), far.tolist(), strict=True):
                old = int(labels[point])
                sums[old] -= data[point]
                counts[old] -= 1
                sums[cluster] = data[point]
                counts[cluster] = 1
    means = sums / counts.clamp(min=1)[:, None]
    return torch.where((counts > 0)[:, None], means, means[torch.argmax(counts)])
