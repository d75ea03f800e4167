"""The imprinting grid of one (FM, task, seed): every GEN × k × NORM × AGG × m configuration.

Work is shared wherever the result does not depend on a factor: embeddings are normalised once
per NORMpre/NORMinf, each class is clustered once per (k, NORMpre) and the clustering serves both
k-means and k-least-squares, and one inner-product matrix per (proxies, NORMinf) serves every AGG
and m.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imprint.agg import predict_variants
from imprint.gen import K_METHODS, class_seed, generate_proxies, import_backends, kmeans_split
from imprint.norm import normalize_embeddings, normalize_proxies

#: Columns of a result table, factors first. Deterministic for a fixed seed.
FACTORS = ("gen", "k", "norm_pre", "norm_post", "norm_inf", "agg", "m")
RESULT_COLUMNS = (*FACTORS, "n_proxies", "accuracy")
#: Columns of a GEN timing table: GEN time depends on (gen, k, norm_pre) only, and it is a
#: measurement of the machine, so it lives apart from the (reproducible) results.
TIMING_COLUMNS = ("gen", "k", "norm_pre", "n_proxies", "gen_time_s")


@dataclass(frozen=True)
class Grid:
    """The factor levels to cross; ``k`` applies to :data:`imprint.gen.K_METHODS` only and ``m``
    to ``agg: mnn`` only."""

    gen: Sequence[str]
    k: Sequence[int] = (1,)
    norm_pre: Sequence[str] = ("l2",)
    norm_post: Sequence[str] = ("l2",)
    norm_inf: Sequence[str] = ("l2",)
    agg: Sequence[str] = ("max",)
    m: Sequence[int] = (1,)
    ls_lambda: float = 1e-4

    @classmethod
    def from_config(cls, section: Mapping[str, Any], ls_lambda: float) -> Grid:
        keys = ("gen", "k", "norm_pre", "norm_post", "norm_inf", "agg", "m")
        return cls(**{key: tuple(section[key]) for key in keys}, ls_lambda=ls_lambda)

    def variants(self) -> list[tuple[str, int]]:
        """``(agg, m)`` pairs; ``m`` is 0 for max, which has none."""
        out: list[tuple[str, int]] = []
        for agg in self.agg:
            out.extend([(agg, m) for m in self.m] if agg == "mnn" else [(agg, 0)])
        return out

    def size(self) -> int:
        gens = sum(len(self.k) if g in K_METHODS else 1 for g in self.gen)
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
    wall time of GEN alone, k-means included for kmeans and kls). Labels must be 0..C-1. ``k`` is
    empty for GEN methods without k, ``m`` for ``agg: max``. The accuracies are identical to
    fitting :class:`imprint.ImprintingClassifier` with ``random_state=seed`` for each
    configuration, but work is shared (see the module docstring).
    """
    import_backends()
    train_x = np.asarray(train_x, dtype=np.float64)
    test_x = np.asarray(test_x, dtype=np.float64)
    n_classes = int(train_y.max()) + 1
    variants = grid.variants()
    tests = {norm: normalize_embeddings(test_x, norm) for norm in grid.norm_inf}
    needs_kmeans = any(g in ("kmeans", "kls") for g in grid.gen)
    rows, timings = [], []
    for norm_pre in grid.norm_pre:
        x = normalize_embeddings(train_x, norm_pre)
        cache, kmeans_seconds = {}, {}
        if needs_kmeans:
            for k in grid.k:
                start = time.perf_counter()
                for position in range(n_classes):
                    members = x[train_y == position]
                    cache[(position, k)] = kmeans_split(members, k, class_seed(seed, position))
                kmeans_seconds[k] = time.perf_counter() - start
        for gen in grid.gen:
            for k in grid.k if gen in K_METHODS else (None,):
                start = time.perf_counter()
                proxies, proxy_class = generate_proxies(
                    x, train_y, gen, k or 1, grid.ls_lambda, seed, kmeans_cache=cache
                )
                gen_time = time.perf_counter() - start
                if gen in ("kmeans", "kls"):
                    gen_time += kmeans_seconds[k]
                timings.append((gen, k, norm_pre, len(proxies), gen_time))
                for norm_post in grid.norm_post:
                    weights = normalize_proxies(proxies, proxy_class, norm_post)
                    for norm_inf, test in tests.items():
                        predictions = predict_variants(
                            test, weights, proxy_class, n_classes, variants
                        )
                        for (agg, m), predicted in predictions.items():
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
                                    float(np.mean(predicted == test_y)),
                                )
                            )
    results = pd.DataFrame(rows, columns=list(RESULT_COLUMNS)).astype({"k": "Int64", "m": "Int64"})
    timing = pd.DataFrame(timings, columns=list(TIMING_COLUMNS)).astype({"k": "Int64"})
    return results, timing
