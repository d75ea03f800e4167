"""Benchmark: the imprinting grid of one (model, task, seed) job against the naive loop.

The grid runner (imprint.grid.run_grid) clusters each class once per (k, NORMpre) and scores every
NORMpost/NORMinf/AGG/m variant from one inner-product matrix. The naive loop fits one
ImprintingClassifier per configuration. Both give identical accuracies (tests/test_classifier.py).

    python benchmarks/bench_grid.py                 # digits, the default config's grid
    python benchmarks/bench_grid.py --train 5000 --dim 512 --classes 10   # synthetic, larger

Prints configurations per second for both and the speed-up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from imprint import ImprintingClassifier
from imprint.grid import Grid, run_grid

REPO = Path(__file__).resolve().parents[1]


def data(args):
    if args.train is None:
        x, y = load_digits(return_X_y=True)
        return train_test_split(x, y, test_size=0.5, random_state=0, stratify=y)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.classes, args.dim)) * 2
    n = args.train * 2
    y = rng.integers(args.classes, size=n)
    x = centres[y] + rng.normal(size=(n, args.dim))
    return x[: args.train], x[args.train :], y[: args.train], y[args.train :]


def naive(x_train, x_test, y_train, y_test, table, seed):
    for row in table.to_dict("records"):
        ImprintingClassifier(
            gen=row["gen"],
            k=1 if pd.isna(row["k"]) else int(row["k"]),
            norm_pre=row["norm_pre"],
            norm_post=row["norm_post"],
            norm_inf=row["norm_inf"],
            agg=row["agg"],
            m=1 if pd.isna(row["m"]) else int(row["m"]),
            random_state=seed,
        ).fit(x_train, y_train).score(x_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, help="synthetic train size (default: digits)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=300,
        help="configurations timed for the naive loop (extrapolated)",
    )
    args = parser.parse_args()
    grid = Grid.from_config(yaml.safe_load((REPO / "config.yaml").read_text())["imprinting"], 1e-4)
    x_train, x_test, y_train, y_test = data(args)
    with threadpool_limits(1):  # one core per job, as the workflow runs it
        start = time.perf_counter()
        table, _ = run_grid(x_train, y_train, x_test, y_test, grid, seed=0)
        grid_seconds = time.perf_counter() - start
        sample = table.sample(min(args.naive_sample, len(table)), random_state=0)
        start = time.perf_counter()
        naive(x_train, x_test, y_train, y_test, sample, seed=0)
        naive_seconds = (time.perf_counter() - start) * len(table) / len(sample)
    print(
        f"data: {len(x_train)} train, {len(x_test)} test, {x_train.shape[1]} dims, "
        f"{len(np.unique(y_train))} classes; grid of {len(table)} configurations, 1 thread"
    )
    print(f"grid runner: {grid_seconds:8.2f} s  {len(table) / grid_seconds:9.0f} configurations/s")
    print(
        f"naive loop:  {naive_seconds:8.2f} s  {len(table) / naive_seconds:9.0f} configurations/s"
        f"  (extrapolated from {len(sample)})"
    )
    print(f"speed-up: {naive_seconds / grid_seconds:.1f}x")


if __name__ == "__main__":
    main()
