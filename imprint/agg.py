"""AGG: turning proxy activations into class predictions, on the CPU or a CUDA device.

One engine serves the grid runner and :class:`imprint.ImprintingClassifier`: PyTorch tensors, so
that the same code runs on both devices. For one proxy set it computes one inner-product matrix
per chunk of test rows and derives from it every variant that is a rescaling of it:

- NORMpost ``l2`` scales each proxy's column by 1/‖p‖, NORMinf ``l2`` each test row by 1/‖x‖.
  A positive row scale does not change which class has the largest score, so AGG max with NORMinf
  ``l2`` is AGG max without it (a zero row scores 0 everywhere either way).
- Euclidean distances follow from the same product and the norms:
  ‖x' − p'‖² = ‖x'‖² + ‖p'‖² − 2⟨x', p'⟩, with x' = s_x·x and p' = s_p·p; every m of mnn comes
  from one top-m of them, and after NORMpost ``l2`` (‖p'‖ = 1) one top-m serves every NORMinf.

Only NORMpost ``quantile``, which changes the proxies' values, needs its own product. Test rows
are processed in chunks sized to the device's memory; CUDA out-of-memory halves the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from imprint.devices import resolve_device, resolve_dtype

AGG_METHODS = ("max", "mnn")
#: The NORMpost / NORMinf values that rescale the inner-product matrix instead of changing it.
SCALINGS = ("none", "l2")
#: Added to distances before taking 1/distance so that a test point equal to a proxy gets a large
#: finite vote instead of a division by zero (the IMPRINT reference implementation does the same).
DISTANCE_EPS = 1e-10
#: Score-matrix elements per chunk on the CPU (64 MiB in float32): large enough for BLAS to run
#: at full speed, small enough that a 60,000-proxy GEN all stays within a few hundred MiB.
CPU_CHUNK_ELEMENTS = 2**24


class TestEmbeddings:
    """Test embeddings on the engine's device and dtype, with their squared norms: moved and
    reduced once per job, then scored against every proxy set."""

    __test__ = False  # not a pytest test class

    def __init__(self, x: np.ndarray, device: str = "auto", dtype: str = "float32"):
        import torch

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.x = torch.as_tensor(np.ascontiguousarray(x), device=self.device).to(self.dtype)
        self.sq_norm = (self.x * self.x).sum(dim=1)
        self.inv_norm = _inverse_norm(self.sq_norm)

    def __len__(self) -> int:
        return len(self.x)

    def max_chunk_elements(self) -> int:
        """Score-matrix elements per chunk: a fixed size on the CPU; on CUDA a share of the free
        memory (about six matrices of a chunk's size are alive at once)."""
        import torch

        if self.device.type != "cuda":
            return CPU_CHUNK_ELEMENTS
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(CPU_CHUNK_ELEMENTS, free // (8 * self.x.element_size()))


def _inverse_norm(sq_norm):
    """1/‖v‖ for L2 normalisation; a zero vector keeps scale 1 (it stays the zero vector)."""
    import torch

    norm = sq_norm.sqrt()
    return torch.where(norm > 0, 1.0 / torch.where(norm > 0, norm, 1.0), 1.0)


def _class_max(scores, proxy_class, n_classes: int, equal_counts: bool):
    """Per class, the largest score over its proxies: ``[n, P] -> [n, C]`` (proxies sorted by
    class, every class present)."""
    import torch

    if equal_counts:  # k proxies per class: a reshape, no scatter
        return scores.view(len(scores), n_classes, -1).amax(dim=2)
    out = torch.full((len(scores), n_classes), -torch.inf, dtype=scores.dtype, device=scores.device)
    return out.scatter_reduce_(1, proxy_class.expand(len(scores), -1), scores, reduce="amax")


def predict_all(
    test: TestEmbeddings,
    proxies: np.ndarray,
    proxy_class: np.ndarray,
    n_classes: int,
    variants: Sequence[tuple[str, int]],
    proxy_norms: Sequence[str] = ("none",),
    test_norms: Sequence[str] = ("none",),
    chunk_rows: int | None = None,
) -> dict[tuple[str, str, str, int], Any]:
    """Predicted class positions of every test row for every (proxy norm, test norm, agg, m).

    ``proxies`` are the proxies before NORMpost; ``proxy_norms`` and ``test_norms`` are the
    NORMpost and NORMinf values to derive (each ``none`` or ``l2``, see the module docstring).
    ``variants``: ``("max", _)``, the class whose best proxy has the largest inner product;
    ``("mnn", m)``, the m proxies nearest in Euclidean distance (m clipped to the number of
    proxies) vote for their class, each vote weighted by 1/distance. Ties go to the lowest class
    position. Returns int64 tensors on the test embeddings' device.
    """
    import torch

    for agg, _ in variants:
        if agg not in AGG_METHODS:
            raise ValueError(f"unknown AGG method {agg!r}; expected one of {AGG_METHODS}")
    for norm in (*proxy_norms, *test_norms):
        if norm not in SCALINGS:
            raise ValueError(f"{norm!r} is not a rescaling; expected one of {SCALINGS}")
    order = np.argsort(proxy_class, kind="stable")
    counts = np.bincount(proxy_class, minlength=n_classes)
    p = torch.as_tensor(np.ascontiguousarray(proxies[order]), device=test.device).to(test.dtype)
    p_class = torch.as_tensor(proxy_class[order], device=test.device, dtype=torch.int64)
    p_sq_norm = (p * p).sum(dim=1)
    p_scale = {"none": torch.ones_like(p_sq_norm), "l2": _inverse_norm(p_sq_norm)}
    proxy_set = _ProxySet(
        p,
        p_class,
        p_sq_norm,
        p_scale,
        n_classes,
        bool((counts == counts[0]).all()),
        bool((p_sq_norm > 0).all()),
    )
    m_values = sorted({min(m, len(p)) for agg, m in variants if agg == "mnn"})
    has_max = any(agg == "max" for agg, _ in variants)
    rows = chunk_rows or max(1, test.max_chunk_elements() // max(len(p), 1))
    keys = [
        (post, inf, agg, m) for post in proxy_norms for inf in test_norms for agg, m in variants
    ]
    parts: dict[tuple[str, str, str, int], list] = {key: [] for key in keys}
    start = 0
    while start < len(test):
        stop = min(start + rows, len(test))
        try:
            chunk = _predict_chunk(
                test, start, stop, proxy_set, has_max, m_values, proxy_norms, test_norms
            )
        except torch.cuda.OutOfMemoryError:
            if rows == 1:
                raise
            torch.cuda.empty_cache()
            rows = max(1, rows // 2)  # answered by smaller chunks, not a crash
            continue
        for post, inf, agg, m in keys:
            found = chunk[(post, inf, agg, min(m, len(p)) if agg == "mnn" else 0)]
            parts[(post, inf, agg, m)].append(found)
        start = stop
    empty = torch.empty(0, dtype=torch.int64, device=test.device)
    return {key: torch.cat(found) if found else empty for key, found in parts.items()}


class _ProxySet(NamedTuple):
    """One proxy set on the device, sorted by class, with what every chunk reuses."""

    p: Any  # [P, d]
    p_class: Any  # [P] class positions, ascending
    p_sq_norm: Any  # [P] squared norms
    p_scale: dict[str, Any]  # NORMpost rescaling -> per-proxy factor
    n_classes: int
    equal_counts: bool  # every class has as many proxies (class max by a reshape)
    nonzero: bool  # no zero proxy: after NORMpost l2 every proxy has norm 1


def _predict_chunk(test, start, stop, proxy_set, has_max, m_values, proxy_norms, test_norms):
    import torch

    p, p_class, p_sq_norm, p_scale, n_classes, equal_counts, nonzero = proxy_set

    x = test.x[start:stop]
    product = x @ p.T
    out = {}
    for post in proxy_norms:
        scaled = product if post == "none" else product * p_scale[post]
        if has_max:
            prediction = _class_max(scaled, p_class, n_classes, equal_counts).argmax(dim=1)
            for inf in test_norms:  # a positive row scale keeps the argmax
                out[(post, inf, "max", 0)] = prediction
        if not m_values:
            continue
        p_sq = p_sq_norm * p_scale[post] ** 2
        unit = post == "l2" and nonzero
        if unit:
            # Every proxy has norm 1, so ‖p'‖² − 2⟨x', p'⟩ = 1 − 2s⟨x, p'⟩ ranks a row's proxies
            # as −⟨x, p'⟩ does for any row scale s > 0: one top-m serves every NORMinf.
            top_scores, top_nearest = torch.topk(scaled, m_values[-1], dim=1, sorted=True)
        for inf in test_norms:
            x_scale = (
                torch.ones_like(test.sq_norm[start:stop])
                if inf == "none"
                else test.inv_norm[start:stop]
            )
            x_sq = test.sq_norm[start:stop] * x_scale**2
            # Ranked by ‖p'‖² − 2⟨x', p'⟩: the row's own ‖x'‖² does not change which proxies are
            # nearest, and adding it first would cancel the small differences between proxies
            # in float32 (embeddings far from small proxies, as least squares' are).
            if unit:
                nearest = top_nearest
                nearest_key = torch.addcmul(
                    torch.ones((), dtype=x.dtype, device=x.device),
                    top_scores,
                    x_scale[:, None],
                    value=-2,
                )
            else:
                key = torch.addcmul(p_sq[None, :], scaled, x_scale[:, None], value=-2)  # one pass
                nearest_key, nearest = torch.topk(
                    key, m_values[-1], dim=1, largest=False, sorted=True
                )
                del key
            nearest_distance = (nearest_key + x_sq[:, None]).clamp_(min=0).sqrt_()
            nearest_class = p_class[nearest]
            weights = 1.0 / (nearest_distance + DISTANCE_EPS)
            for m in m_values:
                votes = torch.zeros(len(x), n_classes, dtype=weights.dtype, device=x.device)
                votes.scatter_add_(1, nearest_class[:, :m], weights[:, :m])
                out[(post, inf, "mnn", m)] = votes.argmax(dim=1)
    return out


def predict_variants(
    x: np.ndarray,
    proxies: np.ndarray,
    proxy_class: np.ndarray,
    n_classes: int,
    variants: Sequence[tuple[str, int]],
    chunk_size: int | None = None,
    device: str = "cpu",
    dtype: str = "float64",
) -> dict[tuple[str, int], np.ndarray]:
    """:func:`predict_all` for plain arrays and one setting: no rescaling, numpy out, keyed by
    ``(agg, m)``."""
    test = TestEmbeddings(x, device=device, dtype=dtype)
    found = predict_all(test, proxies, proxy_class, n_classes, variants, chunk_rows=chunk_size)
    return {(agg, m): found[("none", "none", agg, m)].cpu().numpy() for agg, m in variants}


def class_index(proxy_class: np.ndarray, n_classes: int) -> np.ndarray:
    """``[C, K]`` proxy indices per class, K the largest class's proxy count, shorter classes
    padded with ``P`` (one past the last proxy): :func:`class_scores` puts a ``-inf`` column
    there, so a gather and a max give each class's best score with the same ops whatever the
    counts (a gather instead of ``scatter_reduce``: it exports to ONNX)."""
    counts = np.bincount(proxy_class, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no proxies")
    index = np.full((n_classes, counts.max()), len(proxy_class), dtype=np.int64)
    for position in range(n_classes):
        members = np.flatnonzero(proxy_class == position)
        index[position, : len(members)] = members
    return index


def class_scores(x, proxies, proxy_scale, index, proxy_onehot, agg: str, m: int, norm_inf: str):
    """Per-class scores ``[n, C]`` of embeddings ``x`` ``[n, d]`` (torch tensors throughout):
    what the predictions of :func:`predict_all` are the argmax of (up to rounding ties).

    - ``agg="max"``: a class's largest inner product ⟨x', p'⟩ over its proxies, with
      x' = x/‖x‖ for NORMinf ``l2`` (else x) and p' = ``proxy_scale`` · p: with NORMpost and
      NORMinf ``l2`` the cosine similarity, in [-1, 1].
    - ``agg="mnn"``: the sum of 1/(distance + ε) over the class's proxies among the ``m``
      nearest to x' (0 for a class with none of them), the vote of :func:`predict_all`.

    ``proxies``: ``[P, d]`` before NORMpost's rescaling (quantile-normalised ones as they are);
    ``proxy_scale``: ``[P]`` (1/‖p‖ for NORMpost ``l2``, else ones); ``index``: see
    :func:`class_index`; ``proxy_onehot``: ``[P, C]``, 1 where a proxy belongs to a class.
    Only ops that export to ONNX (``imprint export``), no data-dependent branches.
    """
    import torch

    if agg not in AGG_METHODS:
        raise ValueError(f"unknown AGG method {agg!r}; expected one of {AGG_METHODS}")
    sq_norm = (x * x).sum(dim=1)
    x_scale = _inverse_norm(sq_norm) if norm_inf == "l2" else torch.ones_like(sq_norm)
    scaled = (x @ proxies.T) * proxy_scale
    if agg == "max":
        padded = torch.cat(
            [scaled * x_scale[:, None], torch.full_like(scaled[:, :1], -torch.inf)], 1
        )
        return padded[:, index].amax(dim=2)
    m = min(m, len(proxies))
    p_sq = (proxies * proxies).sum(dim=1) * proxy_scale**2
    # Ranked by predict_all's key (see _predict_chunk); the m distances then taken directly as
    # ‖x' − p'‖: from the key, cancellation leaves a batch-dependent residue where x' equals a
    # proxy, and 1/(distance + ε) would turn it into votes that differ by orders of magnitude.
    key = torch.addcmul(p_sq[None, :], scaled, x_scale[:, None], value=-2)
    nearest = torch.topk(key, m, dim=1, largest=False, sorted=True).indices
    near_proxies = (proxies * proxy_scale[:, None])[nearest]  # [n, m, d]
    distance = torch.linalg.vector_norm(
        x[:, None, :] * x_scale[:, None, None] - near_proxies, dim=2
    )
    weights = 1.0 / (distance + DISTANCE_EPS)
    return (weights[:, :, None] * proxy_onehot[nearest]).sum(dim=1)
