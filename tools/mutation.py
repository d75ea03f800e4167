"""Mutation testing of the core modules with mutmut: how many planted bugs the fast tests catch.

    pip install -e '.[mutation]'
    python tools/mutation.py                    # every core module ([tool.mutmut] in pyproject)
    python tools/mutation.py 'imprint.norm*'    # only mutants whose names match

mutmut (3.x) plants one small change at a time into the modules of ``source_paths`` (an
operator, a constant, an argument), runs the unit tests that cover the changed function
(``pytest_add_cli_args_test_selection``; the fast loop, no Snakemake runs) and records whether
a test failed ("killed") or not ("survived"). It works on a copy of the checkout under
``--workdir`` (mutmut writes a ``mutants/`` tree), so the checkout stays clean, and it resumes
where it left off when run again there.

The report: per module the mutants killed (or timed out), survived, not covered by those
tests, and not run yet, and the score = caught / (caught + survived), where survivors listed
with a reason in tools/equivalent_mutants.txt (changes no caller can observe, e.g. a dtype
argument that is numpy's default) are counted apart, as equivalent. Not part of CI: norm, nc
and tasks take a few minutes on 2 cores, statistics 3, AGG 25, the grid 15, GEN about 45
(survivors rerun every test that reaches their function, the classifier's included).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EQUIVALENT = Path(__file__).with_name("equivalent_mutants.txt")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def equivalent_mutants() -> dict[str, str]:
    """Mutant name -> why it cannot change a result (tools/equivalent_mutants.txt)."""
    reasons = {}
    for line in EQUIVALENT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            reasons[name] = reason.strip()
    return reasons


def copy_checkout(workdir: Path) -> None:
    """The tracked files of the checkout, as they are now, into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source, target = REPO / name.decode(), workdir / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file() and (not target.exists() or target.read_bytes() != source.read_bytes()):
            target.write_bytes(source.read_bytes())


def statuses(workdir: Path) -> dict[str, str]:
    """Mutant name -> mutmut's status (killed, survived, no tests, timeout, ...)."""
    output = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"^\s*(\S+): (.+?)\s*$", output, flags=re.M))


def report(results: dict[str, str], equivalent: dict[str, str]) -> str:
    per_module: dict[str, Counter] = {}
    for name, status in results.items():
        module = re.split(r"\.x[_\u01c1]", name)[0]  # functions x_f, methods xǁClassǁm
        counts = per_module.setdefault(module, Counter())
        counts["equivalent" if status == "survived" and name in equivalent else status] += 1
    header = (
        "module",
        "killed",
        "timeout",
        "survived",
        "equivalent",
        "no tests",
        "not run",
        "score",
    )
    lines = ["{:<16} {:>7} {:>8} {:>9} {:>11} {:>9} {:>8} {:>7}".format(*header)]
    total = Counter()
    for module, counts in sorted(per_module.items()):
        total.update(counts)
        lines.append(_row(module, counts))
    lines.append(_row("all", total))
    return "\n".join(lines)


def _row(name: str, counts: Counter) -> str:
    """A timeout counts as caught: the planted bug made the tests hang."""
    caught = counts["killed"] + counts["timeout"]
    judged = caught + counts["survived"]
    score = f"{caught / judged:.1%}" if judged else "-"
    return (
        f"{name:<16} {counts['killed']:>7} {counts['timeout']:>8} {counts['survived']:>9} "
        f"{counts['equivalent']:>11} {counts['no tests']:>9} {counts['not checked']:>8} "
        f"{score:>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", help="mutant name patterns, e.g. 'imprint.norm*'")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/imprint-mutation"))
    parser.add_argument("--report-only", action="store_true", help="report the last run")
    args = parser.parse_args()
    if not args.report_only:
        copy_checkout(args.workdir)
        # mutmut forks a child per mutant from a parent that has run the tests: with OpenMP or
        # BLAS thread pools alive in the parent (torch's, numpy's), the children deadlock in
        # them and every mutant of the torch engine (agg, kmeans, FPS) "times out", which would
        # count as caught. One thread each keeps fork safe.
        single_threaded = {name: "1" for name in THREAD_VARIABLES}
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", *args.mutants],
            cwd=args.workdir,
            env={**os.environ, **single_threaded},
        )
    results = statuses(args.workdir)
    if args.mutants:
        patterns = [
            re.compile(pattern.replace(".", r"\.").replace("*", ".*")) for pattern in args.mutants
        ]
        results = {n: s for n, s in results.items() if any(p.fullmatch(n) for p in patterns)}
    equivalent = equivalent_mutants()
    print(report(results, equivalent))
    survivors = sorted(n for n, s in results.items() if s == "survived" and n not in equivalent)
    if survivors:
        print("\nsurviving mutants (`mutmut show <name>` in the workdir shows each):")
        print("\n".join(f"  {name}" for name in survivors))


if __name__ == "__main__":
    main()
