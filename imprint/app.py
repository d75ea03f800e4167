"""From a folder of labelled images to a classifier, and back to predictions: what the
``imprint`` command does (:mod:`imprint.cli` only parses options and prints), as plain functions.

- :func:`fit_folder`: embed a class-per-folder tree with a backbone, imprint (a given
  configuration, or one chosen by cross-validation on these images), return the artifact;
- :func:`predict_paths`: class names and scores of images, top k, optional open-set rejection;
- :func:`evaluate_folder`: accuracy, per-class precision/recall, confusion matrix, and how a
  rejection threshold trades accuracy against rejected unknown images;
- :func:`add_folders`: new classes, or more images of existing ones, without touching other
  classes' proxies (:meth:`imprint.ImprintingClassifier.partial_fit`);
- :func:`export_onnx`: backbone + head as one ONNX graph, checked against onnxruntime.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imprint import __version__
from imprint.artifact import ClassifierArtifact
from imprint.backbone import (
    Backbone,
    ImageError,
    class_folders,
    embed_images,
    image_files,
    image_paths,
    load_backbone,
    preprocessed,
)
from imprint.classifier import ImprintingClassifier
from imprint.gen import GEN_REGISTRY
from imprint.grid import Grid
from imprint.selection import SelectionSpec, select_configuration

#: What ``imprint predict`` answers for an image whose best score is under ``--reject-below``.
UNKNOWN = "unknown"
#: The grid ``--select cv`` chooses from unless given one: every GEN, NORM and AGG of the
#: IMPRINT paper (each GEN method once, not its variants) with k and m as in the offline
#: default's config.yaml.
SELECTION_GRID = Grid(
    gen=tuple(name for name, method in GEN_REGISTRY.items() if method.variant_of is None),
    k=(1, 2, 5, 10, 20),
    norm_pre=("none", "l2"),
    norm_post=("none", "l2", "quantile"),
    norm_inf=("none", "l2"),
    agg=("max", "mnn"),
    m=(1, 5, 10),
)


@dataclass
class EmbeddedImages:
    """Embeddings of labelled images, with what was left out and why."""

    embeddings: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def embed_class_folders(
    backbone: Backbone,
    folders: Mapping[str, Sequence[Path]],
    skip_unreadable: bool = False,
    **embed_options: Any,
) -> EmbeddedImages:
    """Embed every class's images; non-image files are reported in ``skipped``."""
    paths = [path for images in folders.values() for path in images]
    label_of = {path: name for name, images in folders.items() for path in images}
    parents = {path.parent for path in paths}
    others = [
        (p, "not an image file") for parent in sorted(parents) for p in image_files(parent)[1]
    ]
    embeddings, kept, skipped = embed_images(backbone, paths, skip_unreadable, **embed_options)
    labels = np.asarray([label_of[path] for path in kept])
    empty = sorted(set(folders) - set(labels.tolist()))
    if empty:
        raise ImageError(f"class {empty[0]!r}: none of its images could be read")
    return EmbeddedImages(embeddings, labels, kept, [*others, *skipped])


def _check_width(backbone: Backbone, embeddings: np.ndarray, clf: ImprintingClassifier) -> None:
    if embeddings.shape[1] != clf.n_features_in_:
        raise ImageError(
            f"the backbone {backbone.spec} gives {embeddings.shape[1]}-d embeddings, but the "
            f"classifier was imprinted from {clf.n_features_in_}-d ones"
        )


def fit_folder(
    image_dir: str | os.PathLike,
    model_spec: Mapping[str, Any],
    configuration: Mapping[str, Any] | None = None,
    select: SelectionSpec | None = None,
    grid: Grid = SELECTION_GRID,
    seed: int = 0,
    keep_embeddings: bool = False,
    include_backbone: bool = False,
    skip_unreadable: bool = False,
    **embed_options: Any,
) -> tuple[ClassifierArtifact, EmbeddedImages]:
    """Imprint a classifier from a class-per-folder tree (at least two classes).

    ``configuration``: ImprintingClassifier parameters (gen, k, norm_*, agg, m); with
    ``select``, the configuration of ``grid`` with the best validation accuracy on these
    images instead (:func:`imprint.selection.select_configuration`). The classifier is then fit
    on every image. ``keep_embeddings`` keeps them in the classifier (to extend k-means & co.
    classes later), ``include_backbone`` the backbone's weights.
    """
    folders = class_folders(image_dir)
    if len(folders) < 2:
        raise ImageError(
            f"{image_dir}: one class ({next(iter(folders))!r}); a classifier needs at least two "
            "class folders"
        )
    backbone = load_backbone(model_spec)
    data = embed_class_folders(backbone, folders, skip_unreadable, **embed_options)
    provenance: dict[str, Any] = {
        "preprocessing": repr(backbone.preprocess),
        "training_images": str(Path(image_dir).expanduser().resolve()),
        "n_images": {name: int((data.labels == name).sum()) for name in folders},
    }
    params = dict(configuration or {})
    if select is not None:
        classes, encoded = np.unique(data.labels, return_inverse=True)
        selection = select_configuration(data.embeddings, encoded, grid, seed, select)
        params = selection.classifier_params()
        provenance["selection"] = {
            "selected_by": selection.selected_by,
            "n_folds": selection.n_folds,
            "validation_accuracy": selection.validation_accuracy,
            "grid_size": grid.size(),
        }
    clf = ImprintingClassifier(
        **params,
        random_state=seed,
        keep_embeddings=keep_embeddings,
        device=embed_options.get("device", "auto"),
    )
    clf.fit(data.embeddings, data.labels)
    artifact = ClassifierArtifact(
        classifier=clf,
        backbone=dict(backbone.spec),
        provenance=provenance,
        backbone_file=backbone.model_file_contents() if include_backbone else None,
    )
    return artifact, data


def artifact_backbone(artifact: ClassifierArtifact) -> Backbone:
    if artifact.backbone is None:
        raise ImageError(
            "this classifier has no backbone (it was imprinted from precomputed embeddings); "
            "apply it to embeddings with imprint.artifact.load_artifact(...).classifier"
        )
    return load_backbone(artifact.backbone, artifact.backbone_file)


def scores_table(
    clf: ImprintingClassifier,
    embeddings: np.ndarray,
    paths: Sequence[Path],
    top: int = 1,
    reject_below: float | None = None,
) -> pd.DataFrame:
    """One row per (image, rank): the top classes with their score and probability; with
    ``reject_below``, rank 1 is :data:`UNKNOWN` where the best score is under it."""
    scores = clf.class_scores(embeddings)
    proba = clf.predict_proba(embeddings)
    top = max(1, min(top, len(clf.classes_)))
    # a stable sort of negated scores: ties keep class order, as predict's argmax does
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    rows = []
    for i, path in enumerate(paths):
        for rank, position in enumerate(order[i], start=1):
            label = clf.classes_[position]
            if rank == 1 and reject_below is not None and scores[i, position] < reject_below:
                label = UNKNOWN
            rows.append(
                {
                    "path": str(path),
                    "rank": rank,
                    "class": label.item() if hasattr(label, "item") else label,
                    "score": float(scores[i, position]),
                    "probability": float(proba[i, position]),
                }
            )
    return pd.DataFrame(rows, columns=["path", "rank", "class", "score", "probability"])


def predict_paths(
    artifact: ClassifierArtifact,
    paths: Sequence[str | os.PathLike],
    top: int = 1,
    reject_below: float | None = None,
    skip_unreadable: bool = False,
    **embed_options: Any,
) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """Predictions for image files and folders (searched recursively)."""
    backbone = artifact_backbone(artifact)
    embeddings, kept, skipped = embed_images(
        backbone, image_paths(paths), skip_unreadable, **embed_options
    )
    _check_width(backbone, embeddings, artifact.classifier)
    return scores_table(artifact.classifier, embeddings, kept, top, reject_below), skipped


def rejection_tradeoff(
    known_scores: np.ndarray, known_correct: np.ndarray, unknown_scores: np.ndarray
) -> pd.DataFrame:
    """Per threshold T (every distinct best score, and -inf): accuracy over the known images
    counting rejected ones as wrong, the share of known images rejected, and of unknown images
    rejected (an image is rejected where its best score is under T)."""
    thresholds = np.unique(np.concatenate([[-np.inf], known_scores, unknown_scores]))
    rows = []
    for threshold in thresholds:
        accepted = known_scores >= threshold
        rows.append(
            {
                "threshold": threshold,
                "known_accuracy": float((known_correct & accepted).mean()),
                "known_rejected": float((~accepted).mean()),
                "unknown_rejected": float((unknown_scores < threshold).mean()),
            }
        )
    return pd.DataFrame(rows)


def evaluate_folder(
    artifact: ClassifierArtifact,
    test_dir: str | os.PathLike,
    unknown_dirs: Sequence[str | os.PathLike] = (),
    reject_below: float | None = None,
    confusion_png: str | os.PathLike | None = None,
    skip_unreadable: bool = False,
    **embed_options: Any,
) -> dict[str, Any]:
    """Accuracy and per-class precision/recall of a class-per-folder test tree (class folders
    named as the classifier's classes); with ``unknown_dirs`` (images of no known class) the
    rejection trade-off (:func:`rejection_tradeoff`) and the AUROC of the best score for
    telling known from unknown images."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    clf = artifact.classifier
    folders = class_folders(test_dir)
    known = [str(c) for c in clf.classes_]
    strange = sorted(set(folders) - set(known))
    if strange:
        raise ImageError(
            f"{test_dir}: class folders {strange} are not classes of this classifier "
            f"({known}); put images of unknown classes in a folder given with --unknown"
        )
    backbone = artifact_backbone(artifact)
    data = embed_class_folders(backbone, folders, skip_unreadable, **embed_options)
    _check_width(backbone, data.embeddings, clf)
    scores = clf.class_scores(data.embeddings)
    predicted = np.asarray([str(c) for c in clf.classes_[scores.argmax(axis=1)]])
    best = scores.max(axis=1)
    correct = predicted == data.labels
    if reject_below is not None:
        predicted = np.where(best < reject_below, UNKNOWN, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(
        data.labels, predicted, labels=known, zero_division=0
    )
    report: dict[str, Any] = {
        "n_images": len(data.labels),
        "accuracy": float((predicted == data.labels).mean()),
        "per_class": pd.DataFrame(
            {
                "class": known,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support,
            }
        ),
        "skipped": data.skipped,
    }
    if reject_below is not None:
        report["rejected"] = float((best < reject_below).mean())
    if confusion_png is not None:
        _confusion_png(data.labels, predicted, known, confusion_png)
        report["confusion_png"] = str(confusion_png)
    if unknown_dirs:
        unknown, _, unknown_skipped = embed_images(
            backbone, image_paths(unknown_dirs), skip_unreadable, **embed_options
        )
        unknown_best = clf.class_scores(unknown).max(axis=1)
        report["skipped"] = [*report["skipped"], *unknown_skipped]
        report["n_unknown"] = len(unknown)
        report["tradeoff"] = rejection_tradeoff(best, correct, unknown_best)
        report["unknown_auroc"] = float(
            roc_auc_score(
                np.r_[np.ones(len(best)), np.zeros(len(unknown_best))],
                np.r_[best, unknown_best],
            )
        )
        if reject_below is not None:
            report["unknown_rejected"] = float((unknown_best < reject_below).mean())
    return report


def _confusion_png(truth, predicted, classes, path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    from imprint.figures import pyplot
    from imprint.io import atomic_path

    plt = pyplot()
    labels = [*classes, *([UNKNOWN] if UNKNOWN in set(predicted) else [])]
    size = max(4.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=labels, ax=ax, colorbar=False, xticks_rotation="vertical"
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def add_folders(
    artifact: ClassifierArtifact,
    dirs: Sequence[str | os.PathLike],
    skip_unreadable: bool = False,
    **embed_options: Any,
) -> dict[str, Any]:
    """Add the classes of ``dirs`` (each a class-per-folder tree, or one folder of images named
    as its class) to the classifier, or more images to classes it has; other classes' proxies
    stay as they are (for GEN ls/kls, which solve for all classes at once, every class
    changes: see :meth:`imprint.ImprintingClassifier.partial_fit`)."""
    folders: dict[str, list[Path]] = {}
    for directory in dirs:
        for name, images in class_folders(directory).items():
            folders.setdefault(name, []).extend(images)
    backbone = artifact_backbone(artifact)
    data = embed_class_folders(backbone, folders, skip_unreadable, **embed_options)
    clf = artifact.classifier
    _check_width(backbone, data.embeddings, clf)
    before = [str(c) for c in clf.classes_]
    labels = data.labels if clf.classes_.dtype.kind == "U" else _as_class_type(clf, data.labels)
    clf.partial_fit(data.embeddings, labels)
    counts = {name: int((data.labels == name).sum()) for name in folders}
    artifact.provenance.setdefault("additions", []).append(
        {"folders": [str(Path(d).expanduser().resolve()) for d in dirs], "n_images": counts}
    )
    return {
        "added": [name for name in folders if name not in before],
        "extended": [name for name in folders if name in before],
        "images": counts,
        "skipped": data.skipped,
    }


def _as_class_type(clf: ImprintingClassifier, labels: np.ndarray) -> np.ndarray:
    """Folder names as the classifier's label type (integer classes from a workflow task)."""
    try:
        return labels.astype(clf.classes_.dtype)
    except ValueError:
        raise ImageError(
            f"this classifier's classes are integers ({clf.classes_.tolist()}); class folders "
            f"{sorted(set(labels.tolist()))} must be named by integers too"
        ) from None


def describe(artifact: ClassifierArtifact) -> dict[str, Any]:
    """What ``imprint info`` shows."""
    clf = artifact.classifier
    return {
        "classes": [str(c) for c in clf.classes_],
        "images_per_class": [int(n) for n in clf.class_counts_],
        "proxies_per_class": np.bincount(clf.proxy_position_, minlength=len(clf.classes_)).tolist(),
        "embedding_dim": int(clf.n_features_in_),
        "configuration": artifact.configuration(),
        "seed": int(clf.seed_),
        "embeddings_kept": clf.class_embeddings_ is not None,
        "backbone": artifact.backbone,
        "backbone_weights_included": artifact.backbone_file is not None,
        "provenance": artifact.provenance,
        "imprint_version": __version__,
    }


def head_module(clf: ImprintingClassifier, dtype: str = "float32"):
    """The classifier's scoring as a ``torch.nn.Module``: embeddings ``[n, d]`` -> class
    scores ``[n, C]`` (:func:`imprint.agg.class_scores`, the same function as
    :meth:`ImprintingClassifier.class_scores`)."""
    import torch
    from torch import nn

    from imprint.agg import class_scores

    class ImprintedHead(nn.Module):
        def __init__(self):
            super().__init__()
            for name, array in clf.head_tensors().items():
                tensor = torch.as_tensor(array)
                self.register_buffer(
                    name, tensor if name == "index" else tensor.to(getattr(torch, dtype))
                )

        def forward(self, embeddings):
            return class_scores(
                embeddings.flatten(1),
                self.proxies,
                self.proxy_scale,
                self.index,
                self.proxy_onehot,
                agg=clf.agg,
                m=clf.m,
                norm_inf=clf.norm_inf,
            )

    return ImprintedHead().eval()


def example_input(backbone: Backbone):
    """One preprocessed blank image: the input shape the exported graph takes."""
    from PIL import Image

    return backbone.preprocess(Image.new("RGB", (256, 256), (128, 128, 128)))


def export_onnx(
    artifact: ClassifierArtifact,
    out: str | os.PathLike,
    check_images: Sequence[str | os.PathLike] = (),
    opset: int = 18,
) -> dict[str, Any]:
    """Backbone + head as one ONNX graph: input ``image`` (a batch of preprocessed images, as
    the backbone's preprocessing makes them), output ``scores`` (``[batch, C]``, the classes in
    the order of the metadata's ``classes``). Checked against onnxruntime on ``check_images``
    (or, without them, on random inputs): the share of equal top-1 predictions and the largest
    score difference."""
    import json

    import torch
    from torch import nn

    from imprint.io import atomic_path

    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise ImageError(
            f"ONNX export needs onnx, onnxscript and onnxruntime ({error}): "
            "pip install 'imprint-workflow[onnx]'"
        ) from None
    backbone = artifact_backbone(artifact)
    clf = artifact.classifier
    model = nn.Sequential(backbone.network, head_module(clf)).eval()
    example = example_input(backbone)[None]
    exporter = _export(model, example, out, opset)
    graph = onnx.load(str(out))
    metadata = {
        "classes": json.dumps([str(c) for c in clf.classes_]),
        "configuration": json.dumps(artifact.configuration()),
        "backbone": json.dumps(artifact.backbone),
        "preprocessing": repr(backbone.preprocess),
        "imprint_version": __version__,
    }
    for key, value in metadata.items():
        graph.metadata_props.add(key=key, value=value)
    with atomic_path(out) as tmp:
        onnx.save(graph, str(tmp))
    if check_images:
        inputs = preprocessed(backbone, image_paths(check_images))
    else:
        inputs = torch.randn(16, *example.shape[1:], generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(inputs).numpy()
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    found = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    return {
        "onnx": str(out),
        "exporter": exporter,
        "input_shape": ["batch", *example.shape[1:]],
        "checked_on": len(inputs),
        "top1_agreement": float((expected.argmax(1) == found.argmax(1)).mean()),
        "max_abs_score_difference": float(np.abs(expected - found).max()),
    }


def _export(model, example, out, opset: int) -> str:
    """torch.export-based ONNX export, else the TorchScript exporter (networks that
    torch.export cannot trace, such as the layer hook of :func:`imprint.models.layer_embedding`);
    returns which one wrote ``out``."""
    import contextlib
    import io
    import warnings

    import torch

    from imprint.io import atomic_path

    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    dynamo=True,
                    input_names=["image"],
                    output_names=["scores"],
                    dynamic_shapes=({0: batch},),
                    opset_version=opset,
                    external_data=False,
                )
            return "dynamo"
        except Exception:
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=False,
                input_names=["image"],
                output_names=["scores"],
                dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
                opset_version=opset,
            )
            return "torchscript"
