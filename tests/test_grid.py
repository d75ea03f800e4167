"""The grid runner (imprint.grid): which configurations it runs, the work it shares, what its GEN
timings count, and the dtypes it computes in. That its accuracies are the classifier's for every
configuration is tests/test_classifier.py's test."""

import time

import numpy as np
import pandas as pd
import pytest

from imprint import gen as gen_module
from imprint.grid import FACTORS, Grid, run_grid


def blobs(n_per_class=30, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(n_classes, 5))
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), 5))
    return x, y


def test_from_config_reads_every_factor_and_the_engine_settings():
    section = {
        "gen": ["mean", "kmeans"],
        "k": [2, 5],
        "norm_pre": ["none"],
        "norm_post": ["l2", "quantile"],
        "norm_inf": ["l2"],
        "agg": ["mnn"],
        "m": [3],
    }
    grid = Grid.from_config(section, 0.25)
    assert [getattr(grid, factor) for factor in FACTORS] == [tuple(section[f]) for f in FACTORS]
    assert (grid.ls_lambda, grid.device, grid.dtype, grid.compat) == (
        0.25,
        "auto",
        "float32",
        "none",
    )
    chosen = Grid.from_config(
        {**section, "device": "cpu", "dtype": "float64", "compat": "paper"}, 1
    )
    assert (chosen.device, chosen.dtype, chosen.compat) == ("cpu", "float64", "paper")


def test_the_grid_size_and_variants_counted_by_hand():
    grid = Grid(
        gen=["mean", "kmeans", "ls", "fps"],
        k=[1, 2, 5],
        norm_pre=["none", "l2"],
        norm_post=["none", "l2", "quantile"],
        norm_inf=["l2"],
        agg=["max", "mnn"],
        m=[1, 5],
    )
    assert grid.variants() == [("max", 0), ("mnn", 1), ("mnn", 5)]
    # GEN: mean, ls once; kmeans, fps once per k: 2 + 2 * 3 = 8; then 2 * 3 * 1 * 3 = 18 each
    assert grid.size() == 8 * 18 == 144


def test_every_configuration_is_one_row_and_m_is_empty_for_max():
    x, y = blobs()
    grid = Grid(
        gen=["mean", "kmeans"], k=[2, 3], norm_post=["none", "l2"], agg=["max", "mnn"], m=[1, 4]
    )
    table, timing = run_grid(x, y, x, y, grid, seed=0)
    # (mean + kmeans at k 2, 3) x 2 NORMpost x (max, mnn 1, mnn 4) = 3 x 2 x 3
    assert len(table) == 18 and not table.duplicated(list(FACTORS)).any()
    variants = set(zip(table["agg"], table["m"].astype("float").fillna(0), strict=True))
    assert variants == {("max", 0), ("mnn", 1), ("mnn", 4)}
    assert table.loc[table["gen"] == "mean", "k"].isna().all()
    assert len(timing) == 3  # per (gen, k, norm_pre)


def test_the_rows_come_in_the_order_of_the_grids_configurations():
    x, y = blobs()
    grid = Grid(
        gen=["fps", "mean", "kmeans"],
        k=[3, 1],
        norm_pre=["l2", "none"],
        norm_post=["none", "quantile"],
        norm_inf=["l2", "none"],
        agg=["mnn", "max"],
        m=[2, 1],
    )
    table, _ = run_grid(x, y, x, y, grid, seed=0)
    rows = [
        tuple(None if pd.isna(value) else value for value in row)
        for row in table[list(FACTORS)].itertuples(index=False)
    ]
    assert rows == grid.configurations() and len(rows) == grid.size()


def test_each_clustering_runs_once_per_class_k_and_norm_pre(monkeypatch):
    calls = []
    kmeans_split = gen_module.kmeans_split

    def counted(x, k, *args, **kwargs):
        calls.append(k)
        return kmeans_split(x, k, *args, **kwargs)

    monkeypatch.setattr(gen_module, "kmeans_split", counted)
    x, y = blobs()
    grid = Grid(gen=["kmeans", "kls"], k=[2, 3], norm_pre=["none", "l2"])
    run_grid(x, y, x, y, grid, seed=0)
    # kls reads kmeans' clusterings: 2 NORMpre x 3 classes x 2 k, not twice that
    assert sorted(calls) == [2] * 6 + [3] * 6


def test_gen_time_adds_each_ks_share_of_the_shared_work(monkeypatch):
    prepare = gen_module.GenCache.prepare
    prepared = []

    def slow_shared_work(self, x, y, gen, random_state):
        prepared.append(gen)
        prepare(self, x, y, gen, random_state)
        return {k: 100.0 * k for k in self.k_values}  # as if the shared work took that long

    monkeypatch.setattr(gen_module.GenCache, "prepare", slow_shared_work)
    x, y = blobs()
    grid = Grid(gen=["mean", "kmeans", "kls", "fps", "covmax"], k=[1, 2])
    _, timing = run_grid(x, y, x, y, grid, seed=0)
    assert sorted(prepared) == ["covmax", "fps", "kmeans"]  # once each; kls shares kmeans'
    per_k = timing.set_index(["gen", "k"])["gen_time_s"]
    for gen in ("kmeans", "kls", "fps", "covmax"):
        for k in (1, 2):
            assert 100.0 * k < per_k[(gen, k)] < 100.0 * k + 5, (gen, k)
    assert per_k[("mean", pd.NA)] < 5


def test_gen_times_are_durations_within_the_run():
    x, y = blobs()
    grid = Grid(gen=["all", "mean", "kmeans", "fps", "kmedoids", "ls"], k=[3])
    start = time.perf_counter()
    _, timing = run_grid(x, y, x, y, grid, seed=0)
    elapsed = time.perf_counter() - start
    assert (timing["gen_time_s"] >= 0).all() and timing["gen_time_s"].sum() <= elapsed


def test_float32_embeddings_are_imprinted_in_float64():
    x, y = blobs(seed=1)
    grid = Grid(gen=["mean", "kmeans", "ls"], k=[2], norm_pre=["none"], norm_post=["none", "l2"])
    # far from the origin, where float32 sums lose digits; the same values in both dtypes
    x = (x * 1e3 + 1e6).astype(np.float32).astype(np.float64)
    double, _ = run_grid(x, y, x, y, grid, seed=0)
    single, _ = run_grid(x.astype(np.float32), y, x, y, grid, seed=0)
    pd.testing.assert_frame_equal(single, double)


@pytest.mark.parametrize("dtype, expected", [("float64", 1.0), ("float32", 0.0)])
def test_the_grids_dtype_is_the_scoring_precision(dtype, expected):
    # GEN all: proxies 1 - 2e-6 (class 0) and 1 + 1e-6 (class 1); x = 1 is nearer class 1,
    # which float64 resolves and float32 does not (its tie goes to class 0). See test_agg.
    train_x, train_y = np.array([[1.0 - 2e-6], [1.0 + 1e-6]]), np.array([0, 1])
    grid = Grid(
        gen=["all"],
        norm_pre=["none"],
        norm_post=["none"],
        norm_inf=["none"],
        agg=["mnn"],
        m=[1],
        device="cpu",
        dtype=dtype,
    )
    table, _ = run_grid(train_x, train_y, np.array([[1.0]]), np.array([1]), grid, seed=0)
    assert table["accuracy"].tolist() == [expected]


def test_gen_receives_float64_embeddings_whatever_the_input_dtype(monkeypatch):
    import imprint.grid as grid_module

    seen = []
    generate = grid_module.generate_proxies

    def recorded(x, *args, **kwargs):
        seen.append(x.dtype)
        return generate(x, *args, **kwargs)

    monkeypatch.setattr(grid_module, "generate_proxies", recorded)
    x, y = blobs()
    run_grid(x.astype(np.float32), y, x, y, Grid(gen=["mean", "kmeans"], k=[2]), seed=0)
    assert seen and set(seen) == {np.dtype(np.float64)}
