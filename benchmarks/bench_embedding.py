"""Benchmark: embedding extraction (imprint.embed) against the naive loop, in images/second.

The naive loop embeds one image at a time: PIL transforms (torchvision.transforms v1) and a
forward pass per image under torch.no_grad. The workflow's path batches images through a
DataLoader (with workers), the weights' own preprocessing, torch.inference_mode and, on CUDA,
channels-last with bf16 autocast.

    python benchmarks/bench_embedding.py          # resnet18 on CPU (and CUDA if present)
    python benchmarks/bench_embedding.py --model vit_b_16 --images 256 --device cuda
    python benchmarks/bench_embedding.py --sources  # resnet18 through each model source

With ``--sources`` it instead runs the same architecture (resnet18, random weights) through the
workflow's model sources (torchvision, timm, python factory) exactly as an embedding job does:
prepare, load, the source's preprocessing, batched extraction.

Images: the real MNIST test set from ../shared/data when it is there, else synthetic 28×28
grayscale images (the cost is the same: every image is resized to 224×224 RGB). The model's
weights are random (weights=None) so that this runs offline; the compute is that of the
pretrained model.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import get_model, get_model_weights

from imprint.embed import extract_embeddings
from imprint.models import _Preprocess, model_source, strip_classifier

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST"


class PILImages(torch.utils.data.Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(self.images[index]), 0


def load_images(n: int) -> tuple[list[Image.Image], str]:
    if SHARED_MNIST.is_dir():
        import gzip

        with gzip.open(SHARED_MNIST / "raw" / "t10k-images-idx3-ubyte.gz") as handle:
            pixels = np.frombuffer(handle.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
        return [Image.fromarray(p, mode="L") for p in pixels[:n]], "MNIST test images"
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return [Image.fromarray(p, mode="L") for p in pixels], "synthetic 28x28 images"


def naive(network, images, device) -> float:
    preset = get_model_weights(args.model).DEFAULT.transforms()
    pil_transform = transforms.Compose(
        [
            transforms.Grayscale(num_output_channels=3),
            transforms.Resize(preset.resize_size[0]),
            transforms.CenterCrop(preset.crop_size[0]),
            transforms.ToTensor(),
            transforms.Normalize(preset.mean, preset.std),
        ]
    )
    network = network.to(device)
    start = time.perf_counter()
    with torch.no_grad():
        for image in images:
            network(pil_transform(image).unsqueeze(0).to(device)).cpu()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - start)


def batched(network, images, device, threads) -> float:
    preprocess = _Preprocess(get_model_weights(args.model).DEFAULT.transforms())
    dataset = PILImages(images, preprocess)
    start = time.perf_counter()
    extract_embeddings(
        network,
        dataset,
        batch_size=args.batch_size,
        num_workers=args.workers,
        device=device.type,
        threads=threads,
        progress=False,
    )
    return len(images) / (time.perf_counter() - start)


#: resnet18 through every model source that can build it (random weights, offline).
SOURCE_SPECS = {
    "torchvision": {"source": "torchvision", "name": "resnet18", "weights": None},
    "timm": {"source": "timm", "name": "resnet18", "pretrained": False, "image_size": 224},
    "python": {"source": "python", "factory": "torchvision.models:resnet18"},
}


def compare_sources(images, what) -> None:
    import tempfile

    threads = args.threads or torch.get_num_threads()
    device = args.device or "cpu"
    print(f"resnet18 through each model source: {len(images)} {what}, {device}, {threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in SOURCE_SPECS.items():
            source = model_source(spec)
            source.prepare(spec, Path(tmp) / f"{name}.pt", None, threads)
            network = source.load(spec, Path(tmp) / f"{name}.pt")
            dataset = PILImages(images, source.preprocess(spec))
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                extract_embeddings(
                    network,
                    dataset,
                    batch_size=args.batch_size,
                    num_workers=args.workers,
                    device=device,
                    threads=threads,
                    progress=False,
                )
                rates.append(len(images) / (time.perf_counter() - start))
            print(
                f"{name:>12}: {np.median(rates):8.1f} images/s (median of {args.repeats}; "
                f"range {min(rates):.1f}-{max(rates):.1f})"
            )


def main():
    images, what = load_images(args.images)
    if args.sources:
        compare_sources(images, what)
        return
    network = strip_classifier(get_model(args.model, weights=None)).eval()
    devices = (
        [torch.device(args.device)]
        if args.device
        else [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    )
    threads = args.threads or torch.get_num_threads()
    print(
        f"{args.model}, {len(images)} {what}, batch {args.batch_size}, "
        f"{args.workers} loader workers, {threads} threads"
    )
    for device in devices:
        torch.set_num_threads(threads)
        if device.type == "cuda":  # warm up cuDNN autotuning and the allocator
            batched(network, images[:64], device, threads)
        slow = naive(network, images[: args.naive_images], device)
        fast = batched(network, images, device, threads)
        name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        print(
            f"{name:>24}: naive {slow:8.1f} images/s   batched {fast:8.1f} images/s   "
            f"speed-up {fast / slow:5.1f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument(
        "--naive-images", type=int, default=128, help="images timed for the naive loop"
    )
    parser.add_argument("--batch-size", default="auto", help="'auto' or a number")
    parser.add_argument("--workers", default="auto", help="'auto' or a number")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: CPU, and CUDA if any")
    parser.add_argument("--sources", action="store_true", help="compare the model sources")
    parser.add_argument("--repeats", type=int, default=3, help="runs per source (--sources)")
    args = parser.parse_args()
    main()
