"""Semantic mutation testing: plant each bug of tools/semantic_mutations.yaml and check that
the fast tests it names fail.

    python tools/semantic_mutations.py                 # every mutation
    python tools/semantic_mutations.py agg-max-sums-equal-counts   # only these

mutmut (tools/mutation.py) changes operators and constants; it cannot swap a reduction, drop a
normalisation or replace a statistic by a near relative, which are the bugs a reviewer fears
most in numerical code. This plants such bugs, one at a time, in a copy of the checkout (the
checkout stays clean), runs the named tests there on one process, and prints one line per
mutation: caught (the tests failed) or SURVIVED. Exit status 1 if any survived. About 5-15 s
per mutation on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MUTATIONS_FILE = Path(__file__).with_name("semantic_mutations.yaml")


def load_mutations(path: Path = MUTATIONS_FILE) -> list[dict]:
    return yaml.safe_load(path.read_text())


def planted(source: str, mutation: dict) -> str:
    """``source`` with the mutation applied; its ``find`` must occur exactly once."""
    count = source.count(mutation["find"])
    if count != 1:
        raise ValueError(
            f"{mutation['name']}: {mutation['file']} holds its 'find' text {count} times, not once"
        )
    return source.replace(mutation["find"], mutation["replace"])


def copy_checkout(target: Path) -> None:
    """The library and the tests as they are now (tracked or not) into ``target``."""
    for folder in ("imprint", "tests", "workflow"):
        shutil.copytree(
            REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "config.yaml", "README.md"):
        shutil.copy2(REPO / name, target / name)


def run_mutation(mutation: dict, workdir: Path) -> tuple[bool, float]:
    """Plant ``mutation`` in ``workdir``, run its tests, restore the file: (caught, seconds)."""
    path = workdir / mutation["file"]
    original = path.read_text()
    path.write_text(planted(original, mutation))
    start = time.perf_counter()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-n0",
                "-p",
                "no:cacheprovider",
                "-m",
                "not workflow and not slow",
                *mutation["tests"].split(),
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            # the copy's imprint first, whatever is installed
            env={**os.environ, "PYTHONPATH": str(workdir), "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        path.write_text(original)
    if result.returncode not in (0, 1):  # not a test failure: the tests could not run
        raise RuntimeError(
            f"{mutation['name']}: pytest exited {result.returncode}\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.returncode == 1, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    names = parser.parse_args().names
    mutations = [m for m in load_mutations() if not names or m["name"] in names]
    unknown = set(names) - {m["name"] for m in mutations}
    if unknown:
        sys.exit(f"unknown mutations: {sorted(unknown)}")
    survived = []
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        copy_checkout(workdir)
        for mutation in mutations:
            caught, seconds = run_mutation(mutation, workdir)
            print(f"{'caught  ' if caught else 'SURVIVED'} {mutation['name']} ({seconds:.0f} s)")
            if not caught:
                survived.append(mutation["name"])
    print(f"{len(mutations) - len(survived)} of {len(mutations)} caught")
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
