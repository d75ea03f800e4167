"""Benchmark: what Snakemake costs before any work, on configs/paper.yaml (1,980 jobs).

Times two things, for this checkout and for a baseline commit, in the same run:
- the main process: `snakemake -n --configfile configs/paper.yaml` (parse the Snakefile, check
  the config, build the DAG, print the plan);
- one job's start-up on a cluster node: the job command Snakemake's cluster executors run
  (`--mode remote --target-jobs ...`), here for one task job, with `-n` so that only the
  parsing and the one-job DAG are timed.

    python benchmarks/bench_parse.py                    # against HEAD~1
    python benchmarks/bench_parse.py --baseline <ref> --repeats 5

Prints the median wall time of each over the repeats (each a fresh process).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout(ref: str, target: Path) -> Path:
    """The files of commit ``ref`` in ``target`` (no git worktree bookkeeping left behind)."""
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def seconds(command: list[str], cwd: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return statistics.median(times)


def measure(repository: Path, repeats: int) -> dict[str, float]:
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repository / "Snakefile"),
        "--configfile",
        str(repository / "configs" / "paper.yaml"),
        "--cores",
        "1",
    ]
    with tempfile.TemporaryDirectory() as workdir:
        return {
            "main process: snakemake -n": seconds([*snakemake, "-n"], Path(workdir), repeats),
            "one cluster job's start-up": seconds(
                [
                    *snakemake,
                    "-n",
                    "--mode",
                    "remote",
                    "--target-jobs",
                    "task:task=mnist_all,seed=0",
                    "--allowed-rules",
                    "task",
                ],
                Path(workdir),
                repeats,
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD~1", help="git ref to compare against")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = measure(checkout(args.baseline, Path(tmp) / "baseline"), args.repeats)
    current = measure(REPO, args.repeats)
    print(f"{'':32} {args.baseline:>12} {'this checkout':>14}")
    for name, before in baseline.items():
        print(f"{name:32} {before:>11.2f}s {current[name]:>13.2f}s")


if __name__ == "__main__":
    main()
