"""Foundation-model (FM) registry: every configured model names a ``source`` registered here.

A source prepares the model once into a file Snakemake tracks (``prepare``) and loads from that
file a frozen network that maps a batch of images to embeddings (``load``). Offline sources:
``pixels`` (the raw pixels, flattened) and ``base_cnn`` (a small CNN trained by the workflow on a
set of base classes, Qi et al.'s base/novel protocol). Pretrained torchvision models slot in as
another source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from imprint.io import atomic_path

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        """Name of the configured dataset the model is trained on, if any."""

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        """Write the model file ``out``; ``training_data`` is the train-split image dataset."""

    def load(self, spec: Mapping[str, Any], path: Path):
        """The frozen embedding network (a ``torch.nn.Module`` in eval mode)."""


def _save(obj: dict, out: Path) -> None:
    import torch

    with atomic_path(out) as tmp:
        torch.save(obj, tmp)


def _load(path: Path, source: str) -> dict:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: model file not found") from None
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a readable model file ({error})") from error
    if obj.get("source") != source:
        raise ValueError(f"{path}: holds a {obj.get('source')!r} model, expected {source!r}")
    return obj


class RawPixels:
    """The identity FM: an image's flattened pixels are its embedding."""

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return None

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        _save({"source": "pixels"}, out)

    def load(self, spec: Mapping[str, Any], path: Path):
        from torch import nn

        _load(path, "pixels")
        return nn.Flatten().eval()


def small_cnn(in_channels: int, embedding_dim: int, n_classes: int):
    """A small CNN for low-resolution images: conv features -> ``embedding_dim`` -> linear head.

    The embedding is the penultimate layer (after ReLU, like a ResNet's pooled features).
    """
    from torch import nn

    features = nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, embedding_dim),
        nn.ReLU(),
    )
    return nn.Sequential(features, nn.Linear(embedding_dim, n_classes))


def train_base_cnn(
    training_data,
    base_classes: list[int],
    embedding_dim: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int,
    threads: int = 1,
) -> tuple[Any, dict[str, Any]]:
    """Train :func:`small_cnn` on the base classes of ``training_data``; deterministic per seed.

    Returns the network and a training record (per-epoch loss and accuracy).
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    labels = np.asarray([int(label) for _, label in training_data])
    chosen = np.flatnonzero(np.isin(labels, base_classes))
    if len(chosen) == 0:
        raise ValueError(f"no training images of base classes {base_classes}")
    relabel = {c: i for i, c in enumerate(base_classes)}
    targets = torch.as_tensor([relabel[int(c)] for c in labels[chosen]])
    subset = Subset(training_data, chosen.tolist())
    in_channels = subset[0][0].shape[0]
    network = small_cnn(in_channels, embedding_dim, len(base_classes))
    optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate, weight_decay=5e-4)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(range(len(subset)), batch_size=batch_size, shuffle=True, generator=order)
    images = torch.stack([subset[i][0] for i in range(len(subset))])
    history = []
    for epoch in range(epochs):
        network.train()
        total_loss, correct = 0.0, 0
        for batch in loader:
            logits = network(images[batch])
            loss = torch.nn.functional.cross_entropy(logits, targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets[batch]).sum())
        history.append({"epoch": epoch + 1, "loss": total_loss / len(subset),
                        "train_accuracy": correct / len(subset)})
        log.info("epoch %d: loss %.4f, train accuracy %.4f", epoch + 1,
                 history[-1]["loss"], history[-1]["train_accuracy"])
    network.eval()
    with torch.inference_mode():
        final_accuracy = float((network(images).argmax(1) == targets).float().mean())
    return network, {"history": history, "train_accuracy": final_accuracy,
                     "in_channels": in_channels, "n_train": len(subset)}


class BaseCNN:
    """A small CNN trained by the workflow on the configured base classes of a dataset.

    Tasks on its base classes show a collapsed FM; tasks on the other (novel) classes show what
    imprinting does on data the FM was not trained on.
    """

    def training_dataset(self, spec: Mapping[str, Any]) -> str | None:
        return spec["dataset"]

    def prepare(self, spec: Mapping[str, Any], out: Path, training_data, threads: int) -> None:
        network, record = train_base_cnn(
            training_data,
            base_classes=list(spec["base_classes"]),
            embedding_dim=spec["embedding_dim"],
            epochs=spec["epochs"],
            learning_rate=spec["learning_rate"],
            batch_size=spec["batch_size"],
            seed=spec["seed"],
            threads=threads,
        )
        if record["train_accuracy"] < 0.99:
            log.warning("the base CNN fits its base classes only to %.3f train accuracy; "
                        "raise 'epochs'", record["train_accuracy"])
        _save({"source": "base_cnn", "state_dict": network.state_dict(), **record}, out)

    def load(self, spec: Mapping[str, Any], path: Path):
        obj = _load(path, "base_cnn")
        network = small_cnn(obj["in_channels"], spec["embedding_dim"], len(spec["base_classes"]))
        network.load_state_dict(obj["state_dict"])
        return network[0].eval()  # drop the classification head: the embedding comes out


MODEL_SOURCES: dict[str, ModelSource] = {"pixels": RawPixels(), "base_cnn": BaseCNN()}


def model_source(spec: Mapping[str, Any]) -> ModelSource:
    try:
        return MODEL_SOURCES[spec["source"]]
    except KeyError:
        raise ValueError(
            f"unknown model source {spec.get('source')!r}; known: {sorted(MODEL_SOURCES)}"
        ) from None
