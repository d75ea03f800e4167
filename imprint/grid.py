"""The imprinting grid of one (FM, task, seed): every GEN × k × NORM × AGG × m configuration.

Work is shared wherever the result does not depend on a factor: embeddings are normalised once
per NORMpre; GEN work shared across k runs once per (class, NORMpre) (k-means for kmeans and kls,
k-medoids' dissimilarities and BUILD, FPS, the least-squares factorisation; see
:class:`imprint.gen.GenCache`); and one inner-product matrix per proxy set serves NORMpost none
and l2, every NORMinf, AGG and m (only NORMpost quantile needs its own; see :mod:`imprint.agg`).
Scoring runs on the CPU or a CUDA device (``device``), in float32 or float64 (``dtype``); GEN
runs in float64, k-means and farthest-point sampling on the same device (k-medoids, covmax and
least squares on the CPU: they are a small share of a job or sequential code).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imprint.agg import SCALINGS, TestEmbeddings, predict_all
from imprint.gen import GenCache, gen_method, generate_proxies, import_backends
from imprint.norm import normalize_embeddings, normalize_proxies

#: Columns of a result table, factors first. Deterministic for a fixed seed.
FACTORS = ("gen", "k", "norm_pre", "norm_post", "norm_inf", "agg", "m")
RESULT_COLUMNS = (*FACTORS, "n_proxies", "accuracy")
#: Columns of a GEN timing table: GEN time depends on (gen, k, norm_pre) only, and it is a
#: measurement of the machine, so it lives apart from the (reproducible) results.
TIMING_COLUMNS = ("gen", "k", "norm_pre", "n_proxies", "gen_time_s")


@dataclass(frozen=True)
class Grid:
    """The factor levels to cross; ``k`` applies to GEN methods that use it
    (:data:`imprint.gen.K_METHODS`) only and ``m`` to ``agg: mnn`` only."""

    gen: Sequence[str]
    k: Sequence[int] = (1,)
    norm_pre: Sequence[str] = ("l2",)
    norm_post: Sequence[str] = ("l2",)
    norm_inf: Sequence[str] = ("l2",)
    agg: Sequence[str] = ("max",)
    m: Sequence[int] = (1,)
    ls_lambda: float = 1e-4
    #: where the engine runs (scoring, k-means, FPS) and the precision of scoring (not factors:
    #: they do not define a configuration)
    device: str = "auto"
    dtype: str = "float32"
    #: "paper": k-means and k-medoids as the IMPRINT authors' code runs them (imprint.gen)
    compat: str = "none"

    @classmethod
    def from_config(cls, section: Mapping[str, Any], ls_lambda: float) -> Grid:
        # device, dtype and compat where the section has them (a validated config always
        # does), else this class's defaults, which tests/test_lists_agree.py checks against
        # the schema's
        engine = {key: section[key] for key in ("device", "dtype", "compat") if key in section}
        return cls(**{key: tuple(section[key]) for key in FACTORS}, ls_lambda=ls_lambda, **engine)

    def variants(self) -> list[tuple[str, int]]:
        """``(agg, m)`` pairs; ``m`` is 0 for max, which has none."""
        out: list[tuple[str, int]] = []
        for agg in self.agg:
            out.extend([(agg, m) for m in self.m] if agg == "mnn" else [(agg, 0)])
        return out

    def configurations(self) -> list[tuple]:
        """Every configuration as a tuple of :data:`FACTORS` levels (k None where GEN has no k,
        m None for max), in the order of :func:`run_grid`'s rows."""
        return [
            (gen, k, norm_pre, norm_post, norm_inf, agg, m if agg == "mnn" else None)
            for norm_pre in self.norm_pre
            for gen in self.gen
            for k in self.k_levels(gen)
            for norm_post in self.norm_post
            for norm_inf in self.norm_inf
            for agg, m in self.variants()
        ]

    def k_levels(self, gen: str) -> Sequence[int | None]:
        """The k of ``gen``'s configurations: the grid's, or None for a method without k."""
        return self.k if gen_method(gen).uses_k else (None,)

    def size(self) -> int:
        gens = sum(len(self.k_levels(gen)) for gen in self.gen)
        return (
            gens
            * len(self.norm_pre)
            * len(self.norm_post)
            * len(self.norm_inf)
            * len(self.variants())
        )


def run_grid(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    grid: Grid,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of every configuration of ``grid`` and the time of every GEN run.

    Returns the results (one row per configuration, columns :data:`RESULT_COLUMNS`) and the GEN
    timings (one row per (gen, k, norm_pre), columns :data:`TIMING_COLUMNS`; ``gen_time_s`` is the
    wall time of GEN alone, with the work shared across k that a run for this k alone would
    need: k-means for kmeans and kls, k-medoids' dissimilarities and BUILD, FPS). Labels must
    be 0..C-1. ``k`` is empty for GEN methods without k, ``m`` for ``agg: max``. The accuracies
    are identical to fitting :class:`imprint.ImprintingClassifier` with ``random_state=seed``
    and the grid's ``device`` and ``dtype`` for each configuration, but work is shared (see the
    module docstring).
    """
    import torch

    import_backends(grid.gen, grid.compat)
    train_x = np.asarray(train_x, dtype=np.float64)
    train_y = np.asarray(train_y)
    test = TestEmbeddings(test_x, grid.device, grid.dtype)
    test_y = torch.as_tensor(np.asarray(test_y), device=test.device)
    gen_device = test.device.type  # k-means and FPS run beside the scoring
    n_classes = int(train_y.max()) + 1
    variants = grid.variants()
    rescaled = [norm for norm in grid.norm_post if norm in SCALINGS]
    rows, timings = [], []
    for norm_pre in grid.norm_pre:
        x = normalize_embeddings(train_x, norm_pre)
        cache = GenCache(k_values=tuple(grid.k), compat=grid.compat, device=gen_device)
        shared_seconds = {}  # per method (kls shares kmeans' clusterings), then per k
        for gen in grid.gen:
            shared = gen_method(gen).shared_work
            if shared is not None and shared not in shared_seconds:
                shared_seconds[shared] = cache.prepare(x, train_y, shared, seed)
        for gen in grid.gen:
            shared = gen_method(gen).shared_work
            for k in grid.k_levels(gen):
                start = time.perf_counter()
                proxies, proxy_class = generate_proxies(
                    x,
                    train_y,
                    gen,
                    k or 1,
                    grid.ls_lambda,
                    seed,
                    cache=cache,
                    compat=grid.compat,
                    device=gen_device,
                )
                gen_time = time.perf_counter() - start
                if shared is not None:
                    gen_time += shared_seconds[shared][k]
                timings.append((gen, k, norm_pre, len(proxies), gen_time))
                predictions = predict_all(
                    test, proxies, proxy_class, n_classes, variants, rescaled, grid.norm_inf
                )
                if "quantile" in grid.norm_post:
                    quantile = normalize_proxies(proxies, proxy_class, "quantile")
                    found = predict_all(
                        test, quantile, proxy_class, n_classes, variants, ["none"], grid.norm_inf
                    )
                    predictions |= {("quantile", *key[1:]): v for key, v in found.items()}
                for norm_post in grid.norm_post:
                    for norm_inf in grid.norm_inf:
                        for agg, m in variants:
                            predicted = predictions[(norm_post, norm_inf, agg, m)]
                            correct = int((predicted == test_y).sum())
                            rows.append(
                                (
                                    gen,
                                    k,
                                    norm_pre,
                                    norm_post,
                                    norm_inf,
                                    agg,
                                    m if agg == "mnn" else None,
                                    len(proxies),
                                    correct / len(test_y),
                                )
                            )
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype({"k": "Int64", "m": "Int64"})
    timing = pd.DataFrame(timings, columns=list(TIMING_COLUMNS)).astype({"k": "Int64"})
    return results, timing
