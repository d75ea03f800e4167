"""Dataset registry: every configured dataset names a ``source`` registered here.

A source knows how to obtain its files into a cache folder (once, with checksums recorded in a
manifest), which class ids it has, and how to open a split as labels (cheap, for task
construction) or as an image dataset (for embedding extraction). New sources (torchvision sets,
image folders) slot in by adding a class to :data:`DATASET_SOURCES` and its options to the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imprint.io import load_arrays, read_manifest, save_arrays, write_manifest

SPLITS = ("train", "test")
MANIFEST = "manifest.json"


class DatasetSource(Protocol):
    def class_ids(self, spec: Mapping[str, Any]) -> list[int]:
        """The dataset's class ids, known without obtaining the data."""

    def prepare(self, spec: Mapping[str, Any], root: Path) -> None:
        """Obtain the data into ``root`` and write ``root/manifest.json`` last."""

    def labels(self, spec: Mapping[str, Any], root: Path, split: str) -> np.ndarray:
        """The labels of a split, in dataset order."""

    def images(self, spec: Mapping[str, Any], root: Path, split: str):
        """A ``torch.utils.data.Dataset`` of ``(float CHW image in [0, 1], label)`` pairs."""


class SklearnDigits:
    """scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), shipped with the package.

    Split once into train/test, stratified by class, with ``test_size`` and ``split_seed``.
    """

    def class_ids(self, spec: Mapping[str, Any]) -> list[int]:
        return list(range(10))

    def prepare(self, spec: Mapping[str, Any], root: Path) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = digits.images.astype(np.uint8)[:, None]  # [N, 1, 8, 8], values 0..16
        parts = train_test_split(
            images,
            digits.target,
            test_size=spec["test_size"],
            random_state=spec["split_seed"],
            stratify=digits.target,
        )
        for split, (x, y) in zip(SPLITS, [(parts[0], parts[2]), (parts[1], parts[3])]):
            save_arrays(root / f"{split}.npz", images=x, labels=y.astype(np.int64))
        write_manifest(root / MANIFEST, [f"{s}.npz" for s in SPLITS], {"source": "sklearn_digits"})

    def labels(self, spec: Mapping[str, Any], root: Path, split: str) -> np.ndarray:
        return load_arrays(root / f"{split}.npz")["labels"]

    def images(self, spec: Mapping[str, Any], root: Path, split: str):
        import torch
        from torch.utils.data import TensorDataset

        data = load_arrays(root / f"{split}.npz")
        pixels = torch.from_numpy(data["images"].astype(np.float32) / 16.0)
        return TensorDataset(pixels, torch.from_numpy(data["labels"]))


DATASET_SOURCES: dict[str, DatasetSource] = {"sklearn_digits": SklearnDigits()}


def dataset_source(spec: Mapping[str, Any]) -> DatasetSource:
    try:
        return DATASET_SOURCES[spec["source"]]
    except KeyError:
        raise ValueError(
            f"unknown dataset source {spec.get('source')!r}; known: {sorted(DATASET_SOURCES)}"
        ) from None


def prepare_dataset(spec: Mapping[str, Any], manifest: str | Path) -> None:
    """Obtain a dataset into the folder of ``manifest`` (the file Snakemake tracks)."""
    root = Path(manifest).parent
    root.mkdir(parents=True, exist_ok=True)
    dataset_source(spec).prepare(spec, root)


def split_labels(spec: Mapping[str, Any], manifest: str | Path, split: str) -> np.ndarray:
    read_manifest(manifest)
    return dataset_source(spec).labels(spec, Path(manifest).parent, split)


def split_images(spec: Mapping[str, Any], manifest: str | Path, split: str):
    read_manifest(manifest)
    return dataset_source(spec).images(spec, Path(manifest).parent, split)
