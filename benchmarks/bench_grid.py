"""Benchmark: one imprinting job of configs/paper.yaml's grid (8,424 configurations), this
checkout's engine against a baseline commit's, in the same run.

Synthetic MNIST-sized embeddings by default (10 classes x 6,000 train, 10,000 test, float32),
at each of ``--dims``. Each engine runs in its own process on one thread (as the workflow runs
an imprinting job); the script reports wall time, process CPU time, peak memory (max RSS), GEN
time per GEN family (each family's grid run alone: its GEN and the scoring of its proxies; the
total is their sum, so k-means counts for both kmeans and kls), and whether the two engines'
accuracies agree. With CUDA present it also runs
this checkout's engine on the GPU.

    python benchmarks/bench_grid.py                                   # the issue's full size
    python benchmarks/bench_grid.py --train-per-class 1500 --test 2500 --dims 512
    python benchmarks/bench_grid.py --baseline <ref> --parallel      # both engines at once
    python benchmarks/bench_grid.py --dims 512 --gen kmedoids --no-baseline   # one family, alone

The baseline defaults to the last commit before the torch engine. Both engines at the full size
take about 45 CPU-minutes of the baseline's alone on this repository's machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The last commit whose grid runner used the numpy engine (float64 scoring, k-medoids per k).
NUMPY_ENGINE = "dae6bdb"

JOB = r"""
import json, resource, sys, time
import numpy as np, yaml
import threadpoolctl
threadpoolctl.threadpool_limits(1)
import torch
torch.set_num_threads(1)
from imprint.grid import Grid, run_grid

spec = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
classes, per_class, test, dim = spec["classes"], spec["per_class"], spec["test"], spec["dim"]
# Each class a mixture of 5 modes, so that more proxies help as on real embeddings.
modes = rng.normal(size=(classes, 5, dim)).astype(np.float32) * 2
def draw(y):  # non-negative, like ReLU features
    x = modes[y, rng.integers(5, size=len(y))] + rng.normal(size=(len(y), dim)).astype(np.float32)
    return np.maximum(x, 0)
train_y = np.repeat(np.arange(classes), per_class)
train_x = draw(train_y)
test_y = rng.integers(classes, size=test)
test_x = draw(test_y)
section = yaml.safe_load(open(spec["config"]))["imprinting"]
section = {**section, "device": spec["device"]} if spec["device"] else section
out = {"wall_s": {}, "cpu_s": {}, "configurations": 0, "accuracy": []}
# One family at a time: its GEN and the scoring of its proxies
for gen in spec["gen"] or section["gen"]:
    grid = Grid.from_config({**section, "gen": [gen]}, 1e-4)
    start, cpu = time.perf_counter(), time.process_time()
    results, _ = run_grid(train_x, train_y, test_x, test_y, grid, seed=0)
    out["wall_s"][gen] = time.perf_counter() - start
    out["cpu_s"][gen] = time.process_time() - cpu
    out["configurations"] += len(results)
    out["accuracy"] += results["accuracy"].round(12).tolist()
out["max_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


def checkout(ref: str, target: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    target.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run(repository: Path, spec: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repository), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", JOB, json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        cwd=repository,
    )
    if result.returncode != 0:
        raise SystemExit(f"engine in {repository} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(name: str, found: dict) -> None:
    families = ", ".join(f"{gen} {seconds:.1f}" for gen, seconds in found["cpu_s"].items())
    print(
        f"  {name:24} cpu {sum(found['cpu_s'].values()):8.1f} s  wall "
        f"{sum(found['wall_s'].values()):8.1f} s  peak {found['max_rss_gib']:5.2f} GiB\n"
        f"  {'':24} CPU s per GEN family: {families}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=NUMPY_ENGINE, help="git ref of the other engine")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--train-per-class", type=int, default=6000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--config", default=str(REPO / "configs" / "paper.yaml"))
    parser.add_argument("--parallel", action="store_true", help="run both engines at once")
    parser.add_argument("--gen", nargs="+", help="only these GEN families (default: the grid's)")
    parser.add_argument(
        "--no-baseline", action="store_true", help="time this checkout's engine alone"
    )
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        baseline = checkout(args.baseline, Path(tmp) / "baseline")
        for dim in args.dims:
            spec = {
                "classes": args.classes,
                "per_class": args.train_per_class,
                "test": args.test,
                "dim": dim,
                "config": args.config,
                "device": None,
                "gen": args.gen,
            }
            print(
                f"{args.classes} classes x {args.train_per_class} train, {args.test} test, "
                f"{dim} dims; grid of {args.config}; one thread each"
            )
            if args.no_baseline:
                report("this checkout, CPU", run(REPO, {**spec, "device": "cpu"}))
                continue
            with ThreadPoolExecutor(2 if args.parallel else 1) as pool:
                old = pool.submit(run, baseline, spec)
                new = pool.submit(run, REPO, {**spec, "device": "cpu"})
                old, new = old.result(), new.result()
            report(f"baseline {args.baseline}", old)
            report("this checkout, CPU", new)
            same = sum(a == b for a, b in zip(old["accuracy"], new["accuracy"], strict=True))
            differences = [
                abs(a - b) for a, b in zip(old["accuracy"], new["accuracy"], strict=True)
            ]
            ratios = ", ".join(
                f"{gen} {old['cpu_s'][gen] / max(new['cpu_s'][gen], 1e-9):.1f}x"
                for gen in old["cpu_s"]
            )
            total = sum(old["cpu_s"].values()) / sum(new["cpu_s"].values())
            print(f"  speed-up {total:.2f}x in CPU time; per GEN family: {ratios}")
            print(
                f"  {same}/{len(differences)} configurations with equal accuracy, largest "
                f"difference {max(differences):.4f}"
            )
            if torch.cuda.is_available():
                report("this checkout, CUDA", run(REPO, {**spec, "device": "cuda"}))


if __name__ == "__main__":
    main()
