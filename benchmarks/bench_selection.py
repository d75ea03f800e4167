"""Benchmark: what selecting a configuration on held-out training data (config ``selection``)
adds to one imprinting job, against the job without it (the previous version's imprinting job:
the grid on train/test alone), in the same run.

Synthetic embeddings shaped like a task of the paper (classes x per-class train, test, dim;
each class a mixture of modes, ReLU-like), the grid of a config file's ``imprinting:`` section
(default: config.yaml's, the offline default's 1,584 configurations). One thread, as the
workflow runs an imprinting job. Reports seconds for the grid alone and for each selection
method, and the ratio.

    python benchmarks/bench_selection.py                                  # digits-sized task
    python benchmarks/bench_selection.py --per-class 600 --test 1000 --dim 512
    python benchmarks/bench_selection.py --config configs/paper.yaml --gen mean kmeans fps
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def synthetic(classes: int, per_class: int, test: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    modes = rng.normal(size=(classes, 5, dim)).astype(np.float32) * 2

    def draw(y):
        x = modes[y, rng.integers(5, size=len(y))] + rng.normal(size=(len(y), dim))
        return np.maximum(x, 0).astype(np.float32)

    train_y = np.repeat(np.arange(classes), per_class)
    test_y = rng.integers(classes, size=test)
    return draw(train_y), train_y, draw(test_y), test_y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--gen", nargs="*", help="restrict the grid to these GEN methods")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=90)
    parser.add_argument("--test", type=int, default=900)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    import threadpoolctl
    import torch

    threadpoolctl.threadpool_limits(1)
    torch.set_num_threads(1)
    from imprint.grid import Grid, run_grid
    from imprint.selection import SelectionSpec, select_configuration

    section = yaml.safe_load(Path(args.config).read_text())["imprinting"]
    if args.gen:
        section["gen"] = args.gen
    grid = Grid.from_config({**section, "device": "cpu"}, section.get("ls_lambda", 1e-4))
    x, y, test_x, test_y = synthetic(args.classes, args.per_class, args.test, args.dim)
    run_grid(x[:50], y[:50], test_x[:10], test_y[:10], grid, 0)  # imports and warm-up

    start = time.perf_counter()
    results, _ = run_grid(x, y, test_x, test_y, grid, 0)
    alone = time.perf_counter() - start
    print(
        f"{grid.size()} configurations, {args.classes} x {args.per_class} train, {args.test} "
        f"test, {args.dim}-d; one thread"
    )
    print(f"  grid on train/test (the job without selection): {alone:8.2f} s")
    for spec in (SelectionSpec("cv", args.folds), SelectionSpec("holdout")):
        start = time.perf_counter()
        chosen = select_configuration(x, y, grid, 0, spec)
        seconds = time.perf_counter() - start
        print(
            f"  + selection {chosen.selected_by:>8}: {seconds:8.2f} s  "
            f"(job x{(alone + seconds) / alone:.2f}; chose {chosen.configuration})"
        )


if __name__ == "__main__":
    main()
