"""Everything a config names is checked before any job: image folders (classes, images that
open, the split), precomputed arrays (from their headers), paths that do not exist."""

import os

import numpy as np
import pytest
from PIL import Image

from imprint.config import ConfigError, check_config, check_inputs, validate_config
from imprint.datasets import (
    ImageFolderDataset,
    PrecomputedEmbeddings,
    dataset_input_digest,
    train_labels_if_known,
)
from tests.conftest import SCHEMA, tiny_config


def image_tree(root, counts, broken=(), other=()):
    """One sub-folder per class with ``counts[class]`` small PNGs; ``broken`` paths get bytes
    that are no image, ``other`` paths a text file."""
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    for path in broken:
        (root / path).write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for path in other:
        (root / path).write_text("notes")
    return root


def folder_config(train, **spec):
    config = tiny_config()
    config["datasets"] = {"photos": {"source": "image_folder", "train": str(train), **spec}}
    config["models"] = {"pixels": {"source": "pixels"}}
    config["tasks"] = {"all": {"dataset": "photos"}}
    del config["lowshot"], config["comparisons"]
    validate_config(config, SCHEMA)
    return config


def checked(config):
    """check_inputs, then the cross-checks with the folder's own train labels."""
    missing, notes = check_inputs(config)
    check_config(
        config,
        train_labels=lambda name: train_labels_if_known(
            config["datasets"][name], "/nonexistent/manifest.json"
        ),
    )
    return missing, notes


def test_a_good_folder_passes_and_lists_what_the_job_will_read(tmp_path):
    config = folder_config(image_tree(tmp_path / "photos", {"cat": 10, "dog": 10, "owl": 10}))
    assert checked(config) == ([], [])
    classes, splits, _ = ImageFolderDataset().splits(config["datasets"]["photos"])
    assert classes == ["cat", "dog", "owl"]
    assert len(splits["train"]) == 24 and len(splits["test"]) == 6


def test_a_missing_folder_is_listed_by_its_key(tmp_path):
    config = folder_config(tmp_path / "nowhere")
    missing, _ = checked(config)
    assert missing == [f"config key 'datasets.photos.train': {tmp_path / 'nowhere'} does not exist"]


@pytest.mark.parametrize(
    "counts, message",
    [
        ({"cat": 5}, r"holds 1 class folder\(s\) \['cat'\]; a classifier needs at least two"),
        ({}, r"holds 0 class folder\(s\)"),
        ({"cat": 5, "dog": 0}, r"class folder .*/dog holds no readable images"),
        # the default test_size 0.2 of 9 images gives 2 test images for 3 classes
        (
            {"a": 3, "b": 3, "c": 3},
            r"'datasets.photos.test_size': 9 images of 3 classes .* "
            r"cannot be split stratified with test_size 0.2",
        ),
    ],
)
def test_a_folder_a_classifier_cannot_come_from_is_refused_naming_the_key(
    tmp_path, counts, message
):
    root = tmp_path / "photos"
    root.mkdir()
    config = folder_config(image_tree(root, counts))
    with pytest.raises(ConfigError, match=r"^config key 'datasets\.photos\.(train|test_size)': "):
        checked(config)
    with pytest.raises(ConfigError, match=message):
        checked(config)


def test_unreadable_images_stop_the_run_or_are_listed_and_left_out(tmp_path):
    root = image_tree(
        tmp_path / "photos", {"cat": 5, "dog": 5}, broken=["dog/bad.png"], other=["cat/notes.txt"]
    )
    with pytest.raises(
        ConfigError, match=r"1 image file\(s\) cannot be read, e\.g\. .*dog/bad\.png"
    ):
        checked(folder_config(root, test_size=0.4))
    config = folder_config(root, test_size=0.4, skip_unreadable=True)
    _, notes = checked(config)
    assert notes[0].startswith(
        f"config key 'datasets.photos.train': left out (cannot be read): {root / 'dog/bad.png'}"
    )
    assert notes[1] == (
        f"config key 'datasets.photos.train': 1 file(s) without an image extension left out: "
        f"{root / 'cat/notes.txt'}"
    )
    _, splits, _ = ImageFolderDataset().splits(config["datasets"]["photos"])
    listed = [path for split in splits.values() for path, _ in split]
    assert len(listed) == 10 and not any(path.endswith("bad.png") for path in listed)


def test_a_task_naming_a_class_the_folder_lacks_is_refused_before_any_job(tmp_path):
    config = folder_config(image_tree(tmp_path / "photos", {"cat": 10, "dog": 10}))
    config["tasks"]["all"]["classes"] = [0, 5]
    with pytest.raises(ConfigError, match=r"config key 'tasks\.all\.classes'"):
        checked(config)


def test_train_and_test_folders_must_hold_the_same_classes(tmp_path):
    train = image_tree(tmp_path / "train", {"cat": 4, "dog": 4})
    test = image_tree(tmp_path / "test", {"cat": 2, "owl": 2})
    with pytest.raises(
        ConfigError, match=r"'datasets\.photos\.test': .*: class folders \['cat', 'owl'\]"
    ):
        checked(folder_config(train, test=str(test)))


def test_the_images_are_opened_once_and_their_verdicts_kept(tmp_path, monkeypatch):
    import imprint.datasets
    import imprint.images

    config = folder_config(image_tree(tmp_path / "photos", {"cat": 5, "dog": 5}), test_size=0.4)
    check_inputs(config, tmp_path / "cache")
    monkeypatch.setattr(imprint.datasets, "_CHECKED_IMAGES", {})  # a new process
    opened = []
    original = imprint.images.unreadable_images
    monkeypatch.setattr(
        imprint.datasets, "unreadable_images", lambda paths: opened.extend(paths) or original(paths)
    )
    check_inputs(config, tmp_path / "cache")
    assert opened == []
    (tmp_path / "photos/cat/0.png").write_bytes(b"rewritten")  # a changed file is opened again
    os.utime(tmp_path / "photos/cat/0.png", ns=(1, 1))
    with pytest.raises(ConfigError, match="cannot be read"):
        check_inputs(config, tmp_path / "cache")
    assert [path.name for path in opened] == ["0.png"]


def test_an_image_added_removed_or_rewritten_changes_the_dataset_param(tmp_path):
    root = image_tree(tmp_path / "photos", {"cat": 3, "dog": 3})
    spec = folder_config(root)["datasets"]["photos"]
    first = dataset_input_digest(spec)
    assert dataset_input_digest(spec) == first
    Image.new("RGB", (8, 8)).save(root / "cat" / "new.png")
    added = dataset_input_digest(spec)
    (root / "cat" / "new.png").unlink()
    assert added != first and dataset_input_digest(spec) == first
    os.utime(root / "dog" / "0.png", ns=(5, 5))
    assert dataset_input_digest(spec) != first
    assert dataset_input_digest({"source": "sklearn_digits"}) == ""


def precomputed(tmp_path, name="feats.npz", **overrides):
    rng = np.random.default_rng(1)
    arrays = {
        "train_embeddings": rng.normal(size=(12, 6)).astype(np.float32),
        "train_labels": np.repeat([0, 1, 2], 4),
        "test_embeddings": rng.normal(size=(6, 6)).astype(np.float32),
        "test_labels": np.repeat([0, 1, 2], 2),
    } | overrides
    np.savez(tmp_path / name, **{k: v for k, v in arrays.items() if v is not None})
    return str(tmp_path / name)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"test_embeddings": np.zeros((6, 4), np.float32)},
            "train embeddings are 6-d but test embeddings 4-d",
        ),
        ({"train_labels": np.zeros(11, int)}, r"\(train\): 12 embeddings but 11 labels"),
        ({"test_labels": None}, r"has no arrays \['test_labels'\]"),
        (
            {"train_embeddings": np.zeros(12, np.float32)},
            r"train_embeddings has shape \(12,\); 2-D",
        ),
    ],
)
def test_precomputed_arrays_are_checked_from_their_headers(tmp_path, overrides, message):
    spec = {"source": "embeddings", "models": {"m": precomputed(tmp_path, **overrides)}}
    with pytest.raises(ValueError, match=rf"^config key 'datasets\.d\.models\.m': .*{message}"):
        PrecomputedEmbeddings().check(spec, "datasets.d")


def test_every_models_file_must_hold_the_same_images(tmp_path):
    spec = {
        "source": "embeddings",
        "models": {
            "a": precomputed(tmp_path, "a.npz"),
            "b": precomputed(
                tmp_path,
                "b.npz",
                train_embeddings=np.zeros((10, 6), np.float32),
                train_labels=np.zeros(10, int),
            ),
        },
    }
    with pytest.raises(ValueError, match=r"b\.npz has 10 train rows, .*a\.npz has 12"):
        PrecomputedEmbeddings().check(spec, "datasets.d")


def test_a_missing_checkpoint_is_listed_by_its_key(tmp_path):
    config = tiny_config()
    config["models"]["r18"] = {
        "source": "torchvision",
        "name": "resnet18",
        "checkpoint": str(tmp_path / "r18.pth"),
    }
    validate_config(config, SCHEMA)
    missing, _ = check_inputs(config)
    assert missing == [f"config key 'models.r18.checkpoint': {tmp_path / 'r18.pth'} does not exist"]
