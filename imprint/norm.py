"""NORM: normalisation of embeddings (pre-GEN, at inference) and of proxies (post-GEN)."""

from __future__ import annotations

import numpy as np

NORM_PRE = ("none", "l2")
NORM_POST = ("none", "l2", "quantile")
NORM_INF = ("none", "l2")


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Scale every row of ``x`` to unit Euclidean length.

    A zero row has no direction; it stays the zero vector rather than becoming NaN.
    """
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def quantile_normalize(proxies: np.ndarray, proxy_labels: np.ndarray) -> np.ndarray:
    """Quantile normalisation of proxies (Hosoda et al.), class by class in label order.

    Classes are imprinted one after the other in ascending label order. The first class keeps its
    proxies as they are. Every later proxy vector of dimension d is mapped rank-wise onto the
    distribution of all values of the proxies imprinted before it (already normalised): its
    smallest entry becomes the reference quantile at level 0.5/d, its i-th smallest the quantile at
    (i + 0.5)/d (linear interpolation), as in the IMPRINT reference implementation. Ties keep their
    order of appearance.
    """
    out = np.array(proxies, dtype=np.float64, copy=True)
    classes = np.unique(proxy_labels)
    for position, label in enumerate(classes[1:], start=1):
        rows = proxy_labels == label
        out[rows] = quantile_map(out[rows], out[np.isin(proxy_labels, classes[:position])])
    return out


def quantile_map(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each row of ``rows`` mapped rank-wise onto the distribution of the values of
    ``reference``: the step of :func:`quantile_normalize` for one class, given the proxies
    imprinted before it (also how a class added later is normalised)."""
    d = rows.shape[1]
    targets = np.quantile(reference, (np.arange(d) + 0.5) / d)
    ranks = np.argsort(np.argsort(rows, axis=1, kind="stable"), axis=1, kind="stable")
    return targets[ranks]


def normalize_embeddings(x: np.ndarray, norm: str) -> np.ndarray:
    """NORMpre / NORMinf: ``"none"`` or ``"l2"`` applied to every embedding."""
    if norm == "none":
        return x
    if norm == "l2":
        return l2_normalize(x)
    raise ValueError(f"unknown embedding normalisation {norm!r}; expected one of {NORM_PRE}")


def normalize_proxies(proxies: np.ndarray, proxy_labels: np.ndarray, norm: str) -> np.ndarray:
    """NORMpost: ``"none"``, ``"l2"`` (each proxy) or ``"quantile"``
    (see :func:`quantile_normalize`)."""
    if norm == "none":
        return proxies
    if norm == "l2":
        return l2_normalize(proxies)
    if norm == "quantile":
        return quantile_normalize(proxies, proxy_labels)
    raise ValueError(f"unknown proxy normalisation {norm!r}; expected one of {NORM_POST}")
