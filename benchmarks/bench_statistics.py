"""Benchmark: the statistics and figure stages on a results table of the paper's size.

Builds a synthetic results table with the paper config's grid (8,424 configurations per job) for
its main comparison (4 FMs x 12 tasks x 3 seeds: 1.2 million rows by default), writes it as
results/tables/imprinting.csv would be, then times what the statistics and figure jobs do:
reading the table, each comparison of configs/paper.yaml (matrix, Friedman, post-hoc, CD
diagram) and the GEN vs k figure.

    python benchmarks/bench_statistics.py
    python benchmarks/bench_statistics.py --models 4 --tasks 49 --seeds 3   # ~5 million rows
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from imprint.figures import cd_diagram, plot_gen_vs_k, pyplot
from imprint.grid import FACTORS, Grid, run_grid
from imprint.io import write_table
from imprint.stages import read_table
from imprint.stats import compare, comparison_matrix, configuration_summary

REPO = Path(__file__).resolve().parents[1]


def synthetic_results(grid: Grid, models: list[str], tasks: list[str], seeds: int) -> pd.DataFrame:
    # The grid's configuration rows, exactly as a job writes them: run it on tiny data.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 8)), np.repeat(np.arange(3), 20)
    configurations = run_grid(x, y, x, y, grid, 0)[0][list(FACTORS)]
    frames = []
    for model, task, seed in itertools.product(models, tasks, range(seeds)):
        frame = configurations.copy()
        frame.insert(0, "seed", seed)
        frame.insert(0, "task", task)
        frame.insert(0, "model", model)
        frame["n_proxies"] = 10
        frame["accuracy"] = rng.uniform(0.5, 1.0, len(frame)).round(4)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).astype({"k": "Int64", "m": "Int64"})


def timed(label: str, function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    print(f"{label:<40} {time.perf_counter() - start:8.2f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    config = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    grid = Grid.from_config(config["imprinting"], 1e-4)
    models = [f"fm{i}" for i in range(args.models)]
    tasks = config["comparisons"]["gen"]["tasks"][: args.tasks]
    tasks += [f"task{i}" for i in range(len(tasks), args.tasks)]
    results = synthetic_results(grid, models, tasks, args.seeds)
    print(
        f"{len(results):,} rows ({len(models)} FMs x {len(tasks)} tasks x {args.seeds} seeds "
        f"x {grid.size():,} configurations)"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "imprinting.csv")
        timed("write the table", write_table, results, path)
        print(f"{'  size on disk':<40} {Path(path).stat().st_size / 2**20:8.0f} MiB")
        results = timed("read the table", read_table, path)
    timed("summary (every configuration)", configuration_summary, results)
    for name, spec in config["comparisons"].items():
        spec = {**spec, "tasks": tasks}
        matrix = timed(f"comparison {name}: matrix", comparison_matrix, results, name, spec)
        result = timed(f"comparison {name}: Friedman + Nemenyi", compare, matrix)
        fig, _ = timed(f"comparison {name}: CD diagram", cd_diagram, result, name)
        pyplot().close(fig)
    fig = timed("figure gen_vs_k (3 tasks)", plot_gen_vs_k, results, models, tasks[:3])
    pyplot().close(fig)


if __name__ == "__main__":
    main()
