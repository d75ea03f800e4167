"""Backbones outside the workflow (imprint.backbone): specs from the command line, image
folders checked before any network runs, embedding files with unreadable ones left out."""

import numpy as np
import pytest
from PIL import Image

from imprint.backbone import (
    ImageError,
    class_folders,
    embed_images,
    image_paths,
    load_backbone,
    parse_model_spec,
    spec_key,
    unreadable_images,
)
from imprint.config import ConfigError


def png(path, value=0, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)
    return path


def test_a_spec_from_the_command_line_is_checked_and_completed():
    assert parse_model_spec("torchvision:resnet18", {"weights": None}) == {
        "source": "torchvision",
        "name": "resnet18",
        "weights": None,
    }
    assert parse_model_spec("python:pkg.mod:make")["factory"] == "pkg.mod:make"
    assert parse_model_spec("pixels") == {"source": "pixels"}
    with pytest.raises(ConfigError, match="model spec: 'name' is a required property"):
        parse_model_spec("timm")
    with pytest.raises(ConfigError, match="model key 'layers': unknown key"):
        parse_model_spec("timm:resnet18", {"layers": "x"})
    with pytest.raises(ConfigError, match="model key 'layer': one layer here, not a list"):
        parse_model_spec("timm:resnet18", {"layer": ["a", "b"]})


def test_a_spec_file_is_read_and_a_missing_one_named(tmp_path):
    (tmp_path / "model.yaml").write_text("source: timm\nname: resnet18\npretrained: false\n")
    assert parse_model_spec(str(tmp_path / "model.yaml"))["pretrained"] is False
    with pytest.raises(ImageError, match="model.json: model spec file not found"):
        parse_model_spec(str(tmp_path / "model.json"))


def test_the_prepared_model_is_named_by_its_spec_and_checkpoint(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"1")
    spec = {"source": "timm", "name": "resnet18", "checkpoint": str(weights)}
    first = spec_key(spec)
    assert spec_key(dict(reversed(list(spec.items())))) == first  # key order does not matter
    weights.write_bytes(b"12")
    assert spec_key(spec) != first


def test_class_folders_are_sorted_and_mistakes_named(tmp_path):
    for name in ("b", "a"):
        png(tmp_path / "tree" / name / "1.png")
    (tmp_path / "tree" / "a" / "readme.txt").write_text("x")
    folders = class_folders(tmp_path / "tree")
    assert list(folders) == ["a", "b"] and [p.name for p in folders["a"]] == ["1.png"]
    assert list(class_folders(tmp_path / "tree" / "a")) == ["a"]  # one folder of images
    (tmp_path / "tree" / "c").mkdir()
    with pytest.raises(ImageError, match="c: class folder without images"):
        class_folders(tmp_path / "tree")
    with pytest.raises(ImageError, match="no such folder"):
        class_folders(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="holds neither class folders nor images"):
        class_folders(tmp_path / "empty")


def test_image_paths_take_files_and_search_folders(tmp_path):
    one = png(tmp_path / "x" / "deep" / "1.png")
    two = png(tmp_path / "2.jpg")
    assert image_paths([two, tmp_path / "x"]) == [two, one]
    with pytest.raises(ImageError, match="no such file or folder"):
        image_paths([tmp_path / "missing.png"])


def test_unreadable_images_are_found_before_the_network_runs(tmp_path, monkeypatch):
    good = [png(tmp_path / f"{i}.png", value=40 * i) for i in range(3)]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert [p for p, _ in unreadable_images([*good, broken])] == [broken]
    monkeypatch.setenv("IMPRINT_CACHE", str(tmp_path / "cache"))
    backbone = load_backbone({"source": "pixels"})
    with pytest.raises(ImageError, match="broken.png: not a readable image"):
        embed_images(backbone, [*good, broken], progress=False)
    embeddings, kept, skipped = embed_images(
        backbone, [*good, broken], skip_unreadable=True, progress=False
    )
    assert kept == good and [p for p, _ in skipped] == [broken]
    np.testing.assert_allclose(embeddings[:, 0], [0, 40 / 255, 80 / 255], rtol=1e-6)


def test_a_backbone_the_workflow_trains_needs_its_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPRINT_CACHE", str(tmp_path))
    spec = {"source": "base_cnn", "dataset": "digits", "base_classes": [0, 1], "embedding_dim": 4}
    with pytest.raises(ImageError, match="trained by the workflow"):
        load_backbone(spec)
    with pytest.raises(ImageError, match="no network"):
        load_backbone({"source": "precomputed"})
