"""Benchmark: Qi et al.'s low-shot stage (imprint.lowshot), in seconds per fine-tuning epoch,
against a baseline commit in the same run.

    python benchmarks/bench_lowshot.py                      # every case, on the CPU (1 thread)
    python benchmarks/bench_lowshot.py --baseline HEAD~2    # and the cases it has, at that ref
    python benchmarks/bench_lowshot.py --device cuda

Cases (one epoch = every class as often as the largest base class has samples, then an
evaluation on the test split; timed over the fine-tuning runs of one n):

- ``full, digits CNN``: the offline default's job: the whole small CNN fine-tuned on 8x8 digits
  (images decoded once and kept in memory, as the stage does for splits up to 1 GiB), against
  the same run reading every image through the dataset per mini-batch (the stage's path for
  larger splits);
- ``head, digits CNN``: the classifier alone on the CNN's cached 64-d embeddings;
- ``head, CIFAR-10 size``: the classifier alone on synthetic 2048-d embeddings of 5 base
  classes x 5,000 and 10,000 test samples (resnet50 on CIFAR-10, configs/qi.yaml);
- ``head + 64-d layer, CUB size``: Qi et al.'s embedding layer and the classifier on synthetic
  1,024-d features (InceptionV1's) of CUB-200-2011's official split: 5,994 train images of 200
  classes (100 base, 100 novel, n = 5), 5,794 test images (configs/qi_cub.yaml with scope head).
  Not in a baseline before the embedding layer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from imprint.datasets import prepare_dataset, split_images, split_labels
from imprint.lowshot import LowShotData, LowShotOptions, run_seed
from imprint.models import model_source, small_cnn

DIGITS = {"source": "sklearn_digits", "test_size": 0.5, "split_seed": 0}
CNN = {
    "source": "base_cnn",
    "dataset": "digits",
    "base_classes": [0, 1, 2, 3, 4],
    "embedding_dim": 64,
    "epochs": 40,
    "learning_rate": 0.001,
    "batch_size": 64,
    "seed": 0,
    "head": "cosine",
}


class PerItem:
    """A dataset seen only item by item: what the stage does for splits too big for memory."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, index):
        return self.base[index]


class EpochTimes(logging.Handler):
    """Collects the stage's own per-epoch figures from its log ("... s/epoch ...")."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def emit(self, record):
        found = re.search(r"\(([\d.]+) s/epoch", record.getMessage())
        if found:
            self.seconds.append(float(found.group(1)))


def timed(data: LowShotData, options: LowShotOptions) -> float:
    handler = EpochTimes()
    logging.getLogger("imprint.lowshot").addHandler(handler)
    logging.getLogger("imprint.lowshot").setLevel(logging.INFO)
    try:
        run_seed(data, options, seed=0)
    finally:
        logging.getLogger("imprint.lowshot").removeHandler(handler)
    return float(np.median(handler.seconds))


def digits_cnn(workdir: Path):
    manifest = workdir / "digits" / "manifest.json"
    prepare_dataset(DIGITS, manifest, resolve=None)
    source = model_source(CNN)
    train = split_images(DIGITS, manifest, "train", transform=source.preprocess(CNN))
    test = split_images(DIGITS, manifest, "test", transform=source.preprocess(CNN))
    source.prepare(CNN, workdir / "cnn.pt", train, threads=1)
    network = source.load_with_head(CNN, workdir / "cnn.pt")
    labels = {split: split_labels(DIGITS, manifest, split) for split in ("train", "test")}
    return network, train, test, labels


def cub_sized(options: dict) -> tuple[LowShotData, LowShotOptions]:
    """Synthetic InceptionV1-like features in CUB-200-2011's official split (30 or 29 train
    images per class, 5,994 in all; 5,794 test), 100 base and 100 novel classes."""
    rng = np.random.default_rng(0)
    train_labels = np.repeat(np.arange(200), 30)[:5994]
    test_labels = np.repeat(np.arange(200), 29)[:5794]
    centres = rng.normal(size=(200, 1024)).astype(np.float32)
    data = LowShotData(
        base_classes=list(range(100)),
        novel_classes=list(range(100, 200)),
        train_labels=train_labels,
        test_labels=test_labels,
        train_embeddings=centres[train_labels] + rng.normal(size=(5994, 1024)).astype(np.float32),
        test_embeddings=centres[test_labels] + rng.normal(size=(5794, 1024)).astype(np.float32),
    )
    qi = dict(optimizer="rmsprop", learning_rate=1e-4, lr_decay_factor=0.94, lr_decay_epochs=4)
    return data, LowShotOptions(
        scope="head", batch_size=200, base_epochs=1, embedding_dims=(64,), **qi, **options
    )


def cases(device: str, with_layer: bool) -> list[tuple[str, int, float]]:
    options = dict(n_shot=(5,), methods=("rand_ft", "imprint_ft"), epochs=5, device=device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        network, train, test, labels = digits_cnn(Path(folder))
        for name, wrap in (("in memory", lambda x: x), ("per item", PerItem)):
            data = LowShotData(
                base_classes=[0, 1, 2, 3, 4],
                novel_classes=[5, 6, 7, 8, 9],
                train_labels=labels["train"],
                test_labels=labels["test"],
                network=network[0],
                base_head=network[1],
                train_images=wrap(train),
                test_images=wrap(test),
                fresh_network=lambda: small_cnn(1, 64, 1)[0],
            )
            seconds = timed(data, LowShotOptions(scope="full", **options))
            rows.append((f"full, digits CNN, images {name}", len(train), seconds))
        with torch.inference_mode():
            embed = {
                split: network[0](torch.stack([image for image, _ in images])).numpy()
                for split, images in (("train", train), ("test", test))
            }
        data = LowShotData(
            base_classes=[0, 1, 2, 3, 4],
            novel_classes=[5, 6, 7, 8, 9],
            train_labels=labels["train"],
            test_labels=labels["test"],
            train_embeddings=embed["train"],
            test_embeddings=embed["test"],
            base_head=network[1],
        )
        rows.append(
            ("head, digits CNN", len(train), timed(data, LowShotOptions(scope="head", **options)))
        )
    rng = np.random.default_rng(0)
    train_labels = np.repeat(np.arange(10), 5000)
    test_labels = np.repeat(np.arange(10), 1000)
    centres = rng.normal(size=(10, 2048)).astype(np.float32)
    data = LowShotData(
        base_classes=[0, 1, 2, 3, 4],
        novel_classes=[5, 6, 7, 8, 9],
        train_labels=train_labels,
        test_labels=test_labels,
        train_embeddings=centres[train_labels] + rng.normal(size=(50000, 2048)).astype(np.float32),
        test_embeddings=centres[test_labels] + rng.normal(size=(10000, 2048)).astype(np.float32),
    )
    head = LowShotOptions(scope="head", batch_size=100, base_epochs=1, **options)
    rows.append(("head, CIFAR-10 size (2048-d)", 50000, timed(data, head)))
    if with_layer:
        data, layer = cub_sized({**options, "methods": ("imprint_ft", "all_class_joint")})
        rows.append(("head + 64-d layer, CUB size (1024-d)", 5994, timed(data, layer)))
    return rows


def cases_in_subprocess(library: Path, device: str, with_layer: bool) -> dict[str, tuple]:
    """This script's cases run on the library in ``library`` (a checkout), in a process of
    their own."""
    result = subprocess.run(
        [sys.executable, __file__, "--device", device, "--json"]
        + ([] if with_layer else ["--without-layer"]),
        env={**os.environ, "PYTHONPATH": str(library)},
        check=True,
        capture_output=True,
        text=True,
    )
    return {name: (n, seconds) for name, n, seconds in json.loads(result.stdout.splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--baseline", help="git ref whose library to time the same cases on")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per library")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--without-layer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(cases(args.device, with_layer=not args.without_layer)))
        return
    if not args.baseline:
        runs = {"this checkout": [{n: (k, s) for n, k, s in cases(args.device, True)}]}
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_parse import REPO, checkout

        runs = {"this checkout": [], args.baseline: []}
        with tempfile.TemporaryDirectory() as folder:
            tree = checkout(args.baseline, Path(folder) / "baseline")
            # alternating, so that a slower spell of the machine falls on both
            for _ in range(args.repeats):
                runs["this checkout"].append(cases_in_subprocess(REPO, args.device, True))
                runs[args.baseline].append(cases_in_subprocess(tree, args.device, False))
    best_of = args.repeats if args.baseline else 1
    print(f"device: {args.device}, torch threads: 1 (as the stage); s/epoch, best of {best_of}")
    names = list(runs["this checkout"][0])
    print(f"{'case':<40} {'train images':>12}" + "".join(f" {label:>16}" for label in runs))
    for name in names:
        n = runs["this checkout"][0][name][0]
        cells = []
        for repeats in runs.values():
            found = [run[name][1] for run in repeats if name in run]
            cells.append(f" {min(found):>16.3f}" if found else f" {'-':>16}")
        print(f"{name:<40} {n:>12}" + "".join(cells))


if __name__ == "__main__":
    main()
