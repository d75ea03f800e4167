"""Benchmark: the `imprint` command's work (imprint.app) against the backbone's own forward pass,
in the same run: is `imprint fit` bound by the network, and what do imprinting, `add` and
`predict` cost on top of it?

A folder of ``--images`` synthetic photos (scikit-learn's digits upscaled to 256x256 RGB JPEGs
with noise, 10 classes), and a backbone (default EfficientNet-Lite0 with its ImageNet weights,
from the test extra; ``--model`` takes any spec the command takes). Reported:

- the network's forward throughput on already preprocessed batches (what nothing can beat);
- ``fit``: images/s of the whole fit (decode, preprocess, forward, imprint, write) against it,
  and the imprinting part alone (GEN + NORM, and writing the folder);
- ``add`` of one 20-image class: its embeddings, and the rest (imprinting, writing);
- ``predict``: images/s against the forward throughput.

    python benchmarks/bench_cli.py                      # 1,000 images, EfficientNet-Lite0
    python benchmarks/bench_cli.py --images 300 --model torchvision:resnet18 -O weights=null
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LITE0 = "python:tests.support.factories:efficientnet_lite0"


def write_photos(root: Path, per_class: int, classes: range, seed: int = 0) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    for label in classes:
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        members = np.flatnonzero(y == label)
        for i in range(per_class):
            digit = x[members[i % len(members)]].reshape(8, 8) * 255 / 16
            image = np.kron(digit, np.ones((32, 32)))[..., None].repeat(3, axis=2)
            image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"{i}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images to fit on")
    parser.add_argument("--model", default=LITE0)
    parser.add_argument("-O", "--model-option", action="append", default=[])
    parser.add_argument("--gen", default="mean")
    parser.add_argument("--k", type=int, default=1)
    args = parser.parse_args()

    import sys

    import torch
    import yaml

    sys.path.insert(0, str(REPO))
    from imprint.app import add_folders, fit_folder, predict_paths
    from imprint.artifact import load_artifact, save_artifact
    from imprint.backbone import class_folders, embed_images, load_backbone, parse_model_spec

    threads = os.cpu_count() or 1
    options = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.model_option)}
    spec = parse_model_spec(args.model, options)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.setdefault("IMPRINT_CACHE", str(root / "cache"))
        write_photos(root / "train", args.images // 9, range(9))
        write_photos(root / "new", 20, [9], seed=1)
        write_photos(root / "query", 20, range(10), seed=2)
        backbone = load_backbone(spec)
        network = backbone.network.eval()
        torch.set_num_threads(threads)

        # the network alone, on preprocessed batches of 32 (as the command batches on a CPU)
        paths = [p for files in class_folders(root / "train").values() for p in files][:64]
        from PIL import Image

        batch = torch.stack([backbone.preprocess(Image.open(p).convert("RGB")) for p in paths])
        batch = batch.contiguous(memory_format=torch.channels_last)
        network = network.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            network(batch[:32])  # warm-up
            start = time.perf_counter()
            for _ in range(3):
                network(batch[:32])
                network(batch[32:64])
            forward = 6 * 32 / (time.perf_counter() - start)

        n_train = sum(len(v) for v in class_folders(root / "train").values())
        start = time.perf_counter()
        artifact, data = fit_folder(
            root / "train", spec, {"gen": args.gen, "k": args.k}, progress=False
        )
        save_artifact(root / "clf", artifact)
        fit_total = time.perf_counter() - start
        # the imprinting part alone, on the embeddings fit_folder made
        start = time.perf_counter()
        artifact.classifier.fit(data.embeddings, data.labels)
        save_artifact(root / "clf2", artifact)
        imprinting = time.perf_counter() - start

        # add: the new class's embeddings (backbone loaded, decode, forward), then the whole add
        start = time.perf_counter()
        new_paths = class_folders(root / "new")["class9"]
        embed_images(load_backbone(spec), new_paths, progress=False)
        add_embeddings = time.perf_counter() - start
        start = time.perf_counter()
        grown = load_artifact(root / "clf")
        add_folders(grown, [root / "new"], progress=False)
        save_artifact(root / "clf", grown)
        add_total = time.perf_counter() - start

        start = time.perf_counter()
        table, _ = predict_paths(load_artifact(root / "clf"), [root / "query"], progress=False)
        predict = len(table) / (time.perf_counter() - start)

    print(f"backbone {spec} on {threads} CPU threads")
    print(f"  forward pass alone, preprocessed batches of 32: {forward:7.1f} images/s")
    fit_rate = n_train / fit_total
    print(
        f"  fit, {n_train} images: {fit_total:6.1f} s = {fit_rate:7.1f} images/s "
        f"({fit_rate / forward:.0%} of the forward pass)"
    )
    print(f"    of which imprinting (GEN {args.gen}, k={args.k}) + writing: {imprinting:.3f} s")
    print(
        f"  add one class of 20 images: {add_total:.2f} s; its embeddings alone "
        f"(backbone loaded, decode, forward) {add_embeddings:.2f} s; the rest "
        f"{add_total - add_embeddings:.2f} s"
    )
    print(f"  predict: {predict:7.1f} images/s ({predict / forward:.0%} of the forward pass)")


if __name__ == "__main__":
    main()
