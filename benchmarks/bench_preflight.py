"""Benchmark: what the checks before any job cost on an image folder, against a baseline
commit in the same run.

A config with one ``image_folder`` dataset of ``--images`` PNGs (64x64 RGB, 10 classes) and the
``pixels`` model; times ``snakemake -n`` (parse, checks, DAG) for the baseline and this
checkout, each in a fresh folder: the first dry run (this checkout opens every image with PIL
and lists the folder for the dataset rule's param) and the second (the verdicts on images are
kept in ``.snakemake/imprint/``: only the listing is redone).

    python benchmarks/bench_preflight.py                         # against HEAD~1, 2,000 images
    python benchmarks/bench_preflight.py --baseline <ref> --images 10000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_parse import checkout  # noqa: E402


def write_images(root: Path, count: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


def dry_run_seconds(repository: Path, workdir: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(repository / "Snakefile"),
         "--configfile", "bench.yaml", "--cores", "1", "-n"],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="HEAD~1", help="git ref to compare against")
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_images(tmp / "photos", args.images)
        config = {
            "datasets": {"photos": {"source": "image_folder", "train": str(tmp / "photos")}},
            "models": {"pixels": {"source": "pixels"}},
            "tasks": {"all": {"dataset": "photos"}},
            "seeds": [0],
            "imprinting": {"gen": ["mean"], "k": [1], "norm_pre": ["l2"], "norm_post": ["l2"],
                           "norm_inf": ["l2"], "agg": ["max"], "m": [1]},
            "selection": {"method": "none"},
        }  # fmt: skip
        rows = {}
        for name, repository in (
            (args.baseline, checkout(args.baseline, tmp / "baseline")),
            ("this checkout", REPO),
        ):
            workdir = tmp / f"run-{len(rows)}"
            workdir.mkdir()
            (workdir / "bench.yaml").write_text(yaml.safe_dump(config))
            rows[name] = [dry_run_seconds(repository, workdir) for _ in range(2)]
    print(f"snakemake -n, image folder of {args.images} images")
    print(f"{'':16} {'first':>8} {'second':>8}")
    for name, (first, second) in rows.items():
        print(f"{name:16} {first:>7.2f}s {second:>7.2f}s")


if __name__ == "__main__":
    main()
