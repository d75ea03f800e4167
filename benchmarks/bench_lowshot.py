"""Benchmark: Qi et al.'s low-shot stage (imprint.lowshot), in seconds per fine-tuning epoch.

    python benchmarks/bench_lowshot.py             # every case below, on the CPU (1 thread)
    python benchmarks/bench_lowshot.py --device cuda

Cases (one epoch = every class as often as the largest base class has samples, then an
evaluation on the test split; timed over the rand_ft and imprint_ft runs of one n):

- ``full, digits CNN``: the offline default's job: the whole small CNN fine-tuned on 8x8 digits
  (images decoded once and kept in memory, as the stage does for splits up to 1 GiB), against
  the same run reading every image through the dataset per mini-batch (the stage's path for
  larger splits);
- ``head, digits CNN``: the classifier alone on the CNN's cached 64-d embeddings;
- ``head, CIFAR-10 size``: the classifier alone on synthetic 2048-d embeddings of 5 base
  classes x 5,000 and 10,000 test samples (resnet50 on CIFAR-10, configs/qi.yaml).
"""

from __future__ import annotations

import argparse
import logging
import re
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    options = dict(n_shot=(5,), methods=("rand_ft", "imprint_ft"), epochs=5, device=args.device)
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
    print(f"device: {args.device}, torch threads: 1 (as the stage)")
    print(f"{'case':<40} {'train images':>12} {'s/epoch':>8}")
    for name, n, seconds in rows:
        print(f"{name:<40} {n:>12} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
