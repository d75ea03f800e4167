"""Benchmark and quality study: the device k-means (imprint.kmeans) against scikit-learn's KMeans.

GEN ``kmeans`` and ``kls`` now cluster with :func:`imprint.kmeans.kmeans` (scikit-learn's
algorithm in PyTorch, on the job's device). This script measures what that changed, on one
thread, scikit-learn and the engine in the same run:

1. **Clusterings** over seeds and shapes (Gaussian modes, ReLU-like, L2-normalised, coarse
   values with exact ties) at GEN's sizes: how often the two find the same clustering, and the
   engine's inertia relative to scikit-learn's (mean, worst).
2. **Accuracy**: the kmeans GEN configuration (NORMpre l2, AGG max) with either's centres,
   over seeds, on real FashionMNIST pixels (``--data``, ../shared/data by default; synthetic
   mixtures without it): mean and standard deviation of each, and the largest difference of a
   seed's accuracies.
3. **Time** per clustering on the CPU, and on CUDA when present.

    python benchmarks/bench_kmeans.py                 # about 5 minutes on one core
    python benchmarks/bench_kmeans.py --quick         # a smaller study, about a minute
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import time
import warnings
from pathlib import Path

import numpy as np

#: torchvision's FashionMNIST files, as ../shared/data holds them on the project's machines
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "FashionMNIST" / "raw"


def embeddings(kind: str, rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Embeddings of the kinds GEN meets: Gaussian modes, non-negative (ReLU) features,
    L2-normalised rows, and coarse values with many duplicate rows (pixels); tests/test_kmeans.py
    draws its data here too."""
    modes = rng.normal(size=(5, d)) * 2
    x = modes[rng.integers(5, size=n)] + rng.normal(size=(n, d))
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "unit":
        x = np.maximum(x, 0) + 1e-3
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if kind == "coarse":
        return np.clip(np.round(x / 2), -1, 1)
    return x


def sklearn_kmeans(x: np.ndarray, k: int, seed: int):
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(x)


def clustering_study(sizes, ks, seeds) -> None:
    from imprint.kmeans import kmeans

    print("1. clusterings: same as scikit-learn's / runs, inertia ratio mean and worst")
    for kind in ("gaussian", "relu", "unit", "coarse"):
        rng = np.random.default_rng(0)
        same, ratios = 0, []
        for (n, d), k, seed in itertools.product(sizes, ks, seeds):
            x = embeddings(kind, rng, n, d)
            theirs, ours = sklearn_kmeans(x, k, seed), kmeans(x, k, seed)
            same += np.array_equal(theirs.labels_, ours.labels)
            ratios.append(ours.inertia / theirs.inertia_)
        print(
            f"  {kind:9} {same:4d}/{len(ratios)} same; inertia ratio mean "
            f"{np.mean(ratios):.6f}, worst {max(ratios, key=lambda r: abs(r - 1)):.6f}"
        )


def fashion_mnist(root: Path, per_class: int) -> tuple[np.ndarray, ...] | None:
    """FashionMNIST pixels (the first ``per_class`` train images of each class, all 10,000 test
    images) read straight from torchvision's raw files, or None where they are absent."""
    files = [root / f"{name}-ubyte.gz" for name in TORCHVISION_FILES]
    if not all(f.is_file() for f in files):
        return None
    arrays = []
    for path in files:
        raw = gzip.open(path).read()
        arrays.append(np.frombuffer(raw, dtype=np.uint8, offset=16 if "images" in path.name else 8))
    train_x, train_y, test_x, test_y = arrays
    train_x, test_x = train_x.reshape(-1, 784) / 255.0, test_x.reshape(-1, 784) / 255.0
    keep = np.concatenate([np.flatnonzero(train_y == c)[:per_class] for c in range(10)])
    return train_x[keep], train_y[keep].astype(np.int64), test_x, test_y.astype(np.int64)


TORCHVISION_FILES = (
    "train-images-idx3",
    "train-labels-idx1",
    "t10k-images-idx3",
    "t10k-labels-idx1",
)


def accuracy_study(data: tuple[np.ndarray, ...], name: str, ks, seeds) -> None:
    from imprint.agg import predict_variants
    from imprint.gen import class_seed
    from imprint.kmeans import kmeans
    from imprint.norm import l2_normalize

    train_x, train_y, test_x, test_y = data
    train_x = l2_normalize(train_x)
    classes = int(train_y.max()) + 1
    print(f"2. accuracy of GEN kmeans (l2, AGG max) on {name}, {len(train_x)} train images")
    for k in ks:
        found = {"scikit-learn": [], "engine": []}
        for seed in seeds:
            for engine in found:
                centres = []
                for c in range(classes):
                    x, s = train_x[train_y == c], class_seed(seed, c)
                    if engine == "scikit-learn":
                        centres.append(sklearn_kmeans(x, k, s).cluster_centers_)
                    else:
                        centres.append(kmeans(x, k, s).centers)
                proxies = l2_normalize(np.concatenate(centres))
                labels = np.repeat(np.arange(classes), k)
                predicted = predict_variants(test_x, proxies, labels, classes, [("max", 0)])
                found[engine].append(np.mean(predicted[("max", 0)] == test_y))
        old, new = np.array(found["scikit-learn"]), np.array(found["engine"])
        print(
            f"  k={k:3d}: scikit-learn {old.mean():.4f} ± {old.std():.4f}, engine "
            f"{new.mean():.4f} ± {new.std():.4f}, largest per-seed difference "
            f"{np.abs(old - new).max():.4f} ({len(seeds)} seeds)"
        )


def synthetic(per_class: int, test: int, dim: int) -> tuple[np.ndarray, ...]:
    """Overlapping 10-class mixtures, where FashionMNIST is not at hand."""
    rng = np.random.default_rng(0)
    modes = rng.normal(size=(10, 5, dim)) * 0.3

    def draw(y):
        return np.maximum(
            modes[y, rng.integers(5, size=len(y))] + rng.normal(size=(len(y), dim)), 0
        )

    train_y = np.repeat(np.arange(10), per_class)
    test_y = rng.integers(10, size=test)
    return draw(train_y), train_y, draw(test_y), test_y


def timing(n: int, d: int, ks, repeats: int) -> None:
    import torch

    from imprint.kmeans import kmeans

    x = embeddings("unit", np.random.default_rng(1), n, d)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"3. seconds per clustering, {n} x {d} (best of {repeats})")
    for k in ks:
        line = []
        runs = [("scikit-learn", lambda k=k: sklearn_kmeans(x, k, 0))] + [
            (f"engine {device}", lambda k=k, device=device: kmeans(x, k, 0, device=device))
            for device in devices
        ]
        for name, run in runs:
            best = np.inf
            for _ in range(repeats):
                if "cuda" in name:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                run()
                if "cuda" in name:
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
            line.append(f"{name} {best:.3f}")
        print(f"  k={k:3d}: " + ", ".join(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller study")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FashionMNIST raw/")
    args = parser.parse_args()
    import threadpoolctl
    import torch

    threadpoolctl.threadpool_limits(1)
    torch.set_num_threads(1)
    if args.quick:
        clustering_study([(500, 64)], [2, 10, 50], range(3))
    else:
        clustering_study([(1000, 64), (6000, 512)], [2, 10, 50, 100], range(3))
    per_class = 300 if args.quick else 2000
    data = fashion_mnist(args.data, per_class)
    name = "FashionMNIST pixels" if data else "synthetic mixtures (no FashionMNIST found)"
    data = data or synthetic(per_class, 5000, 256)
    if args.quick:
        accuracy_study(data, name, [5, 20], range(3))
        timing(2000, 128, [10, 100], 1)
    else:
        accuracy_study(data, name, [5, 20, 100], range(5))
        timing(6000, 512, [2, 10, 20, 50, 100], 2)


if __name__ == "__main__":
    main()
