"""Classifier folders (imprint.artifact): safetensors + JSON, versioned, written atomically."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from imprint import ImprintingClassifier
from imprint.artifact import (
    ARTIFACT_VERSION,
    METADATA_FILE,
    TENSORS_FILE,
    ArtifactError,
    ClassifierArtifact,
    load_artifact,
    save_artifact,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def fitted(x, y, **params):
    return ImprintingClassifier(random_state=3, **params).fit(x, y)


@pytest.mark.parametrize(
    "params",
    [
        {"gen": "kmeans", "k": 3, "agg": "mnn", "m": 4},
        {"gen": "mean", "norm_post": "quantile", "norm_inf": "none"},
        {"gen": "ls", "norm_post": "none"},
    ],
)
def test_a_saved_classifier_loads_with_the_same_predictions_and_state(tmp_path, digits, params):
    x, y = digits
    labels = np.asarray([f"class {d}" for d in y])
    clf = fitted(x[:1000], labels[:1000], **params)
    spec = {"source": "torchvision", "name": "resnet18", "weights": None}
    provenance = {"note": "test", "validation_accuracy": float("nan")}  # fallback: none
    save_artifact(tmp_path / "clf", ClassifierArtifact(clf, spec, provenance))
    loaded = load_artifact(tmp_path / "clf")
    again = loaded.classifier
    np.testing.assert_array_equal(again.predict(x[1000:]), clf.predict(x[1000:]))
    np.testing.assert_array_equal(again.class_scores(x[1000:]), clf.class_scores(x[1000:]))
    for name in ("classes_", "proxies_", "raw_proxies_", "proxy_position_", "class_counts_"):
        np.testing.assert_array_equal(getattr(again, name), getattr(clf, name))
    assert again.get_params() | {"keep_embeddings": True} == clf.get_params() | {
        "random_state": 3,
        "keep_embeddings": True,
    }
    assert loaded.backbone == spec
    assert loaded.provenance == {"note": "test", "validation_accuracy": None}  # strict JSON
    assert again.class_embeddings_ is None  # not asked for


def test_the_folder_holds_json_and_safetensors_only(tmp_path, digits):
    x, y = digits
    save_artifact(tmp_path / "clf", ClassifierArtifact(fitted(x, y)))
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == [METADATA_FILE, TENSORS_FILE]
    metadata = json.loads((tmp_path / "clf" / METADATA_FILE).read_text())
    assert metadata["version"] == ARTIFACT_VERSION and metadata["classes"] == list(range(10))
    with open(tmp_path / "clf" / TENSORS_FILE, "rb") as handle:  # safetensors' own header
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    assert {"proxies", "raw_proxies", "proxy_position", "class_counts"} <= set(header)


def test_the_same_classifier_gives_the_same_bytes(tmp_path, digits):
    x, y = digits
    for name in ("a", "b"):
        save_artifact(tmp_path / name, ClassifierArtifact(fitted(x, y, gen="kmeans", k=2)))
    for file in (METADATA_FILE, TENSORS_FILE):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()


def test_kept_embeddings_let_a_loaded_classifier_extend_a_class(tmp_path, digits):
    x, y = digits
    clf = fitted(x[y < 9], y[y < 9], gen="kmeans", k=3)
    save_artifact(tmp_path / "kept", ClassifierArtifact(clf), include_embeddings=True)
    save_artifact(tmp_path / "lean", ClassifierArtifact(clf))
    kept = load_artifact(tmp_path / "kept").classifier
    kept.partial_fit(x[y == 1][:20], y[y == 1][:20])
    np.testing.assert_array_equal(kept.class_counts_[1], (y == 1).sum() + 20)
    lean = load_artifact(tmp_path / "lean").classifier
    lean.partial_fit(x[y == 9], y[y == 9])  # a new class needs only its own images
    with pytest.raises(ValueError, match="keep_embeddings"):
        lean.partial_fit(x[y == 1][:20], y[y == 1][:20])


def test_overwriting_replaces_a_classifier_but_never_another_folder(tmp_path, digits):
    x, y = digits
    save_artifact(tmp_path / "clf", ClassifierArtifact(fitted(x[y < 5], y[y < 5])))
    save_artifact(tmp_path / "clf", ClassifierArtifact(fitted(x, y)))
    assert len(load_artifact(tmp_path / "clf").classes) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]  # no staging left behind
    (tmp_path / "photos").mkdir()
    with pytest.raises(ArtifactError, match="not a classifier folder; not overwritten"):
        save_artifact(tmp_path / "photos", ClassifierArtifact(fitted(x, y)))


def test_unreadable_folders_name_the_file(tmp_path, digits):
    x, y = digits
    with pytest.raises(ArtifactError, match="no such classifier folder"):
        load_artifact(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match=f"{METADATA_FILE}: missing"):
        load_artifact(tmp_path / "empty")
    save_artifact(tmp_path / "clf", ClassifierArtifact(fitted(x, y)))
    meta = tmp_path / "clf" / METADATA_FILE
    content = json.loads(meta.read_text())
    meta.write_text(json.dumps({**content, "version": ARTIFACT_VERSION + 1}))
    with pytest.raises(
        ArtifactError, match="format version 2, but this imprint .* reads version 1"
    ):
        load_artifact(tmp_path / "clf")
    meta.write_text(json.dumps(content))
    (tmp_path / "clf" / TENSORS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ArtifactError, match=f"{TENSORS_FILE}: not a readable safetensors file"):
        load_artifact(tmp_path / "clf")
    (tmp_path / "clf" / TENSORS_FILE).unlink()
    with pytest.raises(ArtifactError, match=f"{TENSORS_FILE}: missing"):
        load_artifact(tmp_path / "clf")
    meta.write_text("{")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(tmp_path / "clf")


def test_backbone_weights_travel_in_safetensors(tmp_path, digits):
    import torch

    x, y = digits
    state = {"weight": torch.arange(6.0).reshape(2, 3), "steps": torch.tensor(4)}
    carried = {"source": "python", "factory": "m:f", "state_dict": state}
    save_artifact(
        tmp_path / "clf", ClassifierArtifact(fitted(x, y), {"source": "python"}, {}, carried)
    )
    loaded = load_artifact(tmp_path / "clf").backbone_file
    assert loaded["source"] == "python" and loaded["factory"] == "m:f"
    for name, tensor in state.items():
        assert torch.equal(loaded["state_dict"][name], tensor)
