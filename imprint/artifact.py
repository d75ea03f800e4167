"""A classifier a user can take away: one folder per imprinted classifier.

The folder holds the classifier (proxies and everything scoring and adding classes need), the
backbone's *specification* (a model spec as in the workflow config; its weights only when
asked, or when the spec alone cannot rebuild it) and provenance::

    classifier.json          format, version, classes, parameters, backbone spec, provenance
    classifier.safetensors   proxies (before and after NORMpost), proxy classes, class counts,
                             and each class's embeddings when kept (``embeddings.<position>``)
    backbone.safetensors     the backbone's weights, when included

Tensors are in safetensors and everything else in JSON, so nothing loads through pickle. A
folder is written beside its target and moved into place: nothing half-written survives.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imprint import __version__
from imprint.classifier import ImprintingClassifier

ARTIFACT_FORMAT = "imprint-classifier"
#: Bumped whenever a reader of an older version could misread a newer folder.
ARTIFACT_VERSION = 1
METADATA_FILE = "classifier.json"
TENSORS_FILE = "classifier.safetensors"
BACKBONE_FILE = "backbone.safetensors"
#: The fitted attributes of :class:`ImprintingClassifier` stored as tensors.
_ARRAYS = ("raw_proxies_", "proxies_", "proxy_position_", "class_counts_")


class ArtifactError(ValueError):
    """A classifier folder that cannot be read; the message names the file."""


@dataclass
class ClassifierArtifact:
    """An imprinted classifier with what applying it to images needs.

    ``backbone``: the model spec (``source`` and its keys, as under ``models:`` in the
    config), or None for a classifier of embeddings alone. ``backbone_file``: the prepared
    model file's contents (the source's metadata and ``state_dict``) when its weights travel
    with the classifier. ``provenance``: free-form JSON (configuration, accuracies, NC1, ...).
    """

    classifier: ImprintingClassifier
    backbone: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    backbone_file: dict[str, Any] | None = None

    @property
    def classes(self) -> list:
        return self.classifier.classes_.tolist()

    def configuration(self) -> dict[str, Any]:
        """The IMPRINT configuration: GEN, k, NORM and AGG."""
        params = self.classifier.get_params()
        keys = ("gen", "k", "norm_pre", "norm_post", "norm_inf", "agg", "m")
        return {key: params[key] for key in keys}


def _json_classes(classes: np.ndarray) -> list:
    if classes.dtype.kind not in "iuU":
        raise ArtifactError(
            f"class labels of dtype {classes.dtype} cannot be stored; use ints or strings"
        )
    return classes.tolist()


def save_artifact(
    path: str | os.PathLike,
    artifact: ClassifierArtifact,
    include_embeddings: bool = False,
) -> Path:
    """Write ``artifact`` as the folder ``path`` (replacing one that is there).

    ``include_embeddings``: keep each class's training embeddings, so that a class whose GEN
    needs them (k-means, k-medoids, ...) can be extended later (:func:`add_classes`).
    """
    from safetensors.numpy import save_file

    clf = artifact.classifier
    target = Path(path)
    if target.exists() and not (target / METADATA_FILE).is_file():
        raise ArtifactError(f"{target}: exists and is not a classifier folder; not overwritten")
    params = clf.get_params()
    params["random_state"] = int(clf.seed_)
    embeddings = include_embeddings and clf.class_embeddings_ is not None
    params["keep_embeddings"] = bool(embeddings)
    tensors = {name.rstrip("_"): np.ascontiguousarray(getattr(clf, name)) for name in _ARRAYS}
    if embeddings:
        for position, rows in enumerate(clf.class_embeddings_):
            tensors[f"embeddings.{position}"] = np.ascontiguousarray(rows)
    metadata = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "imprint_version": __version__,
        "classes": _json_classes(clf.classes_),
        "n_features": int(clf.n_features_in_),
        "parameters": params,
        "backbone": artifact.backbone,
        "backbone_file": None,
        "provenance": _finite(artifact.provenance),
        "tensors": TENSORS_FILE,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(tensors, str(staging / TENSORS_FILE))
        if artifact.backbone_file is not None:
            metadata["backbone_file"] = _save_backbone(artifact.backbone_file, staging)
        text = json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False)  # strict JSON
        (staging / METADATA_FILE).write_text(text + "\n")
        mask = _umask()
        os.chmod(staging, 0o777 & ~mask)
        for written in staging.iterdir():  # as a plain open() would make them, not 0600
            os.chmod(written, 0o666 & ~mask)
        _replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (null): JSON has no NaN."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_folder(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an old ``target`` is moved aside first and removed after,
    so that at every moment one complete folder is there (or, briefly, none)."""
    if not target.exists():
        os.replace(staging, target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _save_backbone(model_file: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """The model file's state dict into ``backbone.safetensors``; its other entries (JSON)
    are returned for ``classifier.json``."""
    from safetensors.torch import save_file

    # clone: tied weights share storage, which safetensors refuses to write twice
    state = {name: t.detach().contiguous().clone() for name, t in model_file["state_dict"].items()}
    save_file(state, str(folder / BACKBONE_FILE))
    rest = {key: value for key, value in model_file.items() if key != "state_dict"}
    try:
        json.dumps(rest)
    except TypeError as error:
        raise ArtifactError(f"the backbone's model file holds non-JSON entries ({error})") from None
    return {"tensors": BACKBONE_FILE, "entries": rest}


def load_artifact(path: str | os.PathLike) -> ClassifierArtifact:
    """Read a classifier folder written by :func:`save_artifact`."""
    from safetensors.numpy import load_file

    folder = Path(path)
    meta_file = folder / METADATA_FILE
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such classifier folder")
    try:
        metadata = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{meta_file}: missing; {folder} is not a classifier folder") from None
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{meta_file}: not valid JSON ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{meta_file}: not an {ARTIFACT_FORMAT} file")
    version = metadata.get("version")
    if version != ARTIFACT_VERSION:
        raise ArtifactError(
            f"{meta_file}: classifier format version {version!r}, but this imprint "
            f"({__version__}) reads version {ARTIFACT_VERSION}; use the imprint version "
            f"that wrote it ({metadata.get('imprint_version', 'unknown')})"
        )
    tensor_file = folder / metadata["tensors"]
    tensors = _read_tensors(load_file, tensor_file)
    missing = [name.rstrip("_") for name in _ARRAYS if name.rstrip("_") not in tensors]
    if missing:
        raise ArtifactError(f"{tensor_file}: lacks the tensors {missing}")
    clf = ImprintingClassifier(**metadata["parameters"])
    clf.classes_ = np.asarray(metadata["classes"])
    clf.n_features_in_ = int(metadata["n_features"])
    clf.seed_ = int(metadata["parameters"]["random_state"])
    for name in _ARRAYS:
        setattr(clf, name, tensors[name.rstrip("_")])
    clf.proxy_labels_ = clf.classes_[clf.proxy_position_]
    clf.class_embeddings_ = (
        [tensors[f"embeddings.{p}"] for p in range(len(clf.classes_))]
        if clf.keep_embeddings
        else None
    )
    if clf.proxies_.shape[1] != clf.n_features_in_ or len(clf.class_counts_) != len(clf.classes_):
        raise ArtifactError(f"{tensor_file}: tensors do not match {meta_file}")
    return ClassifierArtifact(
        classifier=clf,
        backbone=metadata.get("backbone"),
        provenance=metadata.get("provenance") or {},
        backbone_file=_load_backbone(folder, metadata.get("backbone_file")),
    )


def _load_backbone(folder: Path, entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    from safetensors.torch import load_file

    state = _read_tensors(load_file, folder / entry["tensors"])
    return {**entry["entries"], "state_dict": state}


def _read_tensors(load_file, path: Path) -> dict[str, Any]:
    """A safetensors file through ``load_file`` (numpy's or torch's), errors naming it."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (SafetensorError, OSError) as error:
        raise ArtifactError(f"{path}: not a readable safetensors file ({error})") from None
