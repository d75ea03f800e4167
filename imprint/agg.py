"""AGG: turning proxy activations into class predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

AGG_METHODS = ("max", "mnn")

#: Added to distances before taking 1/distance so that a test point equal to a proxy gets a large
#: finite vote instead of a division by zero (the IMPRINT reference implementation does the same).
DISTANCE_EPS = 1e-10


def class_max(similarity: np.ndarray, proxy_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Per class, the largest similarity over its proxies: ``[n, P] -> [n, C]``.

    ``proxy_class`` must be sorted ascending with every class 0..C-1 present.
    """
    starts = np.searchsorted(proxy_class, np.arange(n_classes))
    return np.maximum.reduceat(similarity, starts, axis=1)


def mnn_votes(
    nearest_class: np.ndarray, nearest_distance: np.ndarray, n_classes: int
) -> np.ndarray:
    """Sum of 1/distance votes per class from each row's nearest proxies: ``[n, m] -> [n, C]``."""
    n = len(nearest_class)
    flat = (np.arange(n)[:, None] * n_classes + nearest_class).ravel()
    weights = (1.0 / (nearest_distance + DISTANCE_EPS)).ravel()
    return np.bincount(flat, weights=weights, minlength=n * n_classes).reshape(n, n_classes)


def predict_variants(
    x: np.ndarray,
    proxies: np.ndarray,
    proxy_class: np.ndarray,
    n_classes: int,
    variants: Sequence[tuple[str, int]],
    chunk_size: int = 2048,
    max_chunk_elements: int = 2**24,
) -> dict[tuple[str, int], np.ndarray]:
    """Predicted class positions of ``x`` for every ``(agg, m)`` in ``variants`` at once.

    - ``("max", _)``: the class whose best proxy has the largest inner product with the embedding.
    - ``("mnn", m)``: the m proxies nearest in Euclidean distance (m clipped to the number of
      proxies) vote for their class, each vote weighted by 1/distance.

    Ties go to the lowest class position. One inner-product matrix per chunk of test rows serves
    all variants (distances come from it via ‖x‖² + ‖p‖² − 2⟨x, p⟩). Chunks hold at most
    ``chunk_size`` rows and ``max_chunk_elements`` scores (128 MiB in float64), so that memory
    stays bounded even with tens of thousands of proxies (GEN all).
    """
    order = np.argsort(proxy_class, kind="stable")
    proxies, proxy_class = proxies[order], proxy_class[order]
    for agg, _ in variants:
        if agg not in AGG_METHODS:
            raise ValueError(f"unknown AGG method {agg!r}; expected one of {AGG_METHODS}")
    m_values = sorted({min(m, len(proxies)) for agg, m in variants if agg == "mnn"})
    proxy_sq_norm = np.einsum("ij,ij->i", proxies, proxies)
    chunk_size = max(1, min(chunk_size, max_chunk_elements // max(len(proxies), 1)))
    results: dict[tuple[str, int], list[np.ndarray]] = {v: [] for v in variants}
    for start in range(0, len(x), chunk_size):
        rows = x[start : start + chunk_size]
        similarity = rows @ proxies.T
        if any(agg == "max" for agg, _ in variants):
            prediction = class_max(similarity, proxy_class, n_classes).argmax(axis=1)
            for variant in variants:
                if variant[0] == "max":
                    results[variant].append(prediction)
        if not m_values:
            continue
        sq_distance = np.einsum("ij,ij->i", rows, rows)[:, None] + proxy_sq_norm - 2 * similarity
        distance = np.sqrt(np.maximum(sq_distance, 0.0))
        m_max = m_values[-1]
        nearest = np.argpartition(distance, m_max - 1, axis=1)[:, :m_max]
        nearest_distance = np.take_along_axis(distance, nearest, axis=1)
        by_distance = np.argsort(nearest_distance, axis=1, kind="stable")
        nearest = np.take_along_axis(nearest, by_distance, axis=1)
        nearest_distance = np.take_along_axis(nearest_distance, by_distance, axis=1)
        for m in m_values:
            votes = mnn_votes(proxy_class[nearest[:, :m]], nearest_distance[:, :m], n_classes)
            prediction = votes.argmax(axis=1)
            for variant in variants:
                if variant[0] == "mnn" and min(variant[1], len(proxies)) == m:
                    results[variant].append(prediction)
    return {
        v: np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        for v, parts in results.items()
    }
