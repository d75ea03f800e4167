"""Backbones outside the workflow: a model spec made into a frozen embedding network, and images
on disk listed, checked and embedded with it (the ``imprint`` command and exported classifiers).

A spec is what stands under ``models:`` in a workflow config (``source`` and its keys, checked
against the same schema). The network comes from the source's own ``prepare``/``load``
(:mod:`imprint.models`), prepared once into a cache folder (``$IMPRINT_CACHE``, else
``$XDG_CACHE_HOME/imprint`` or ``~/.cache/imprint``), or from weights a classifier carries.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imprint.config import validate_model_spec
from imprint.images import IMAGE_EXTENSIONS, unreadable_images
from imprint.models import model_input_files, model_source

#: File extensions read as images (torchvision's ImageFolder's).


class ImageError(ValueError):
    """Images that cannot be used; the message names the file or folder."""


def cache_dir() -> Path:
    if os.environ.get("IMPRINT_CACHE"):
        return Path(os.environ["IMPRINT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "imprint"


def parse_model_spec(text: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A model spec from the command line: ``SOURCE:NAME`` (``torchvision:resnet18``,
    ``timm:convnext_tiny``, ``python:package.module:function``), a bare ``SOURCE`` without a
    name (``pixels``), or a YAML/JSON file holding a spec; ``options`` add or override keys.
    Checked against the config schema, defaults filled."""
    import yaml

    path = Path(text).expanduser()
    if path.suffix in (".yaml", ".yml", ".json") or path.is_file():
        try:
            spec = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ImageError(f"{path}: model spec file not found") from None
        except yaml.YAMLError as error:
            raise ImageError(f"{path}: not valid YAML ({error})") from None
        if not isinstance(spec, dict):
            raise ImageError(f"{path}: should hold a mapping with a 'source' key")
    else:
        source, _, name = text.partition(":")
        spec = {"source": source}
        if name:
            spec["factory" if source == "python" else "name"] = name
    return validate_model_spec({**spec, **(options or {})})


def spec_key(spec: Mapping[str, Any]) -> str:
    """A name for the prepared model of ``spec``: its canonical JSON and its checkpoint's size
    and modification time (a changed file is prepared again)."""
    stamp = [(f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in model_input_files(spec)]
    text = json.dumps([spec, stamp], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Backbone:
    """A frozen embedding network and its preprocessing (one image -> the network's input)."""

    spec: dict[str, Any]
    network: Any
    preprocess: Any
    model_file: Path

    def model_file_contents(self) -> dict[str, Any]:
        """The prepared model file (what a classifier carries when it includes the weights)."""
        import torch

        return torch.load(self.model_file, map_location="cpu", weights_only=True)


def load_backbone(
    spec: Mapping[str, Any], carried: Mapping[str, Any] | None = None, threads: int = 1
) -> Backbone:
    """The network of ``spec``: from ``carried`` (a model file's contents, see
    :class:`imprint.artifact.ClassifierArtifact`) when given, else prepared into the cache once
    (downloading pretrained weights where the source does)."""
    spec = dict(spec)
    source = model_source(spec)
    if getattr(source, "reads_embeddings", False):
        raise ImageError("a 'precomputed' model has no network; it cannot embed images")
    folder = cache_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    if carried is not None:
        path = _write_model_file(carried, folder)
    else:
        if source.training_dataset(spec):
            raise ImageError(
                f"a {spec['source']!r} backbone is trained by the workflow on its dataset; use a "
                "classifier exported with its weights (results/classifiers/...)"
            )
        path = folder / f"{spec['source']}-{spec_key(spec)}.pt"
        if not path.is_file():
            source.prepare(spec, path, None, threads)
    return Backbone(spec, source.load(spec, path), source.preprocess(spec), path)


def _write_model_file(contents: Mapping[str, Any], folder: Path) -> Path:
    """The model file of carried weights, in the cache, named by its content."""
    import torch

    from imprint.models import _save

    digest = hashlib.sha256()
    for name, tensor in sorted(contents["state_dict"].items()):
        digest.update(name.encode())
        digest.update(
            tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()
        )
    digest.update(
        json.dumps(
            {k: v for k, v in contents.items() if k != "state_dict"}, sort_keys=True
        ).encode()
    )
    path = folder / f"carried-{digest.hexdigest()[:20]}.pt"
    if not path.is_file():
        _save(dict(contents), path)
    return path


def image_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """The image files directly in ``folder`` (sorted) and the other files there."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    return images, [p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS]


def class_folders(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Class name -> its image files, from ``root``'s sub-folders (sorted, as torchvision's
    ImageFolder); a folder of images only is one class named after the folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ImageError(f"{root}: no such folder")
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        images, _ = image_files(root)
        if not images:
            raise ImageError(f"{root}: holds neither class folders nor images")
        return {root.resolve().name: images}
    classes = {}
    for folder in subfolders:
        images, _ = image_files(folder)
        if not images:
            raise ImageError(
                f"{folder}: class folder without images ({', '.join(IMAGE_EXTENSIONS)})"
            )
        classes[folder.name] = images
    return classes


def image_paths(arguments: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files named on the command line: files as they are, folders searched recursively
    (sorted)."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                raise ImageError(f"{path}: no images in this folder")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise ImageError(f"{path}: no such file or folder")
    return paths


class _Images:
    """Images from files, preprocessed; the label slot holds the index, or -1 for a file that
    fails to decode (with ``skip``), whose row is then dropped."""

    def __init__(self, paths: Sequence[Path], preprocess, skip: bool):
        self.paths, self.preprocess, self.skip = list(paths), preprocess, skip

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                return self.preprocess(image.convert("RGB")), index
        except Exception as error:  # a truncated file passes verify() and fails here
            if not self.skip:
                raise ImageError(f"{self.paths[index]}: cannot be decoded ({error})") from None
            return self.preprocess(Image.new("RGB", (64, 64))), -1


def preprocessed(backbone: Backbone, paths: Sequence[Path]):
    """The images at ``paths`` as one batch of the network's inputs (``[n, ...]`` tensor)."""
    import torch

    images = _Images(paths, backbone.preprocess, skip=False)
    return torch.stack([images[i][0] for i in range(len(images))])


def embed_images(
    backbone: Backbone,
    paths: Sequence[Path],
    skip_unreadable: bool = False,
    batch_size: int | str = "auto",
    device: str = "auto",
    progress: bool = True,
) -> tuple[np.ndarray, list[Path], list[tuple[Path, str]]]:
    """Embeddings of the images at ``paths``: ``(embeddings, embedded paths, skipped)``.

    Unreadable images stop with an :class:`ImageError` naming the first one, before the network
    runs, or with ``skip_unreadable`` are left out and returned in ``skipped``."""
    from imprint.embed import extract_embeddings

    bad = unreadable_images(paths)
    if bad and not skip_unreadable:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ImageError(
            f"{bad[0][0]}: not a readable image ({bad[0][1]}){more}; "
            "--skip-unreadable leaves such files out"
        )
    skipped = {path for path, _ in bad}
    kept = [p for p in paths if p not in skipped]
    if not kept:
        raise ImageError("no readable images")
    embeddings, index = extract_embeddings(
        backbone.network,
        _Images(kept, backbone.preprocess, skip_unreadable),
        batch_size=batch_size,
        num_workers=0,
        device=device,
        threads=os.cpu_count() or 1,
        progress=progress,
    )
    decoded = index >= 0
    failed = [(kept[i], "cannot be decoded") for i in np.flatnonzero(~decoded)]
    return embeddings[decoded], [kept[i] for i in index[decoded]], [*bad, *failed]
