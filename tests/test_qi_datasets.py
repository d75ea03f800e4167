"""Qi et al.'s datasets (imprint.datasets: cub200, inaturalist) read from generated trees in the
official layouts (tiny JPEGs, the real split files), and the class selectors (imprint.tasks)
that make the papers' splits one line of config."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imprint.config import ConfigError, check_config, check_inputs, validate_config
from imprint.datasets import (
    DatasetUnavailable,
    dataset_source,
    prepare_dataset,
    split_images,
    split_labels,
    train_labels_if_known,
)
from imprint.tasks import select_classes, task_classes
from tests.conftest import SCHEMA, tiny_config

# -- CUB-200-2011 -------------------------------------------------------------------------------

#: (class name, train images, test images) of a generated CUB tree
CUB_CLASSES = [
    ("001.Black_footed_Albatross", 3, 2),
    ("002.Laysan_Albatross", 2, 2),
    ("003.Sooty_Albatross", 4, 1),
    ("004.Groove_billed_Ani", 1, 2),
]


def jpeg(path: Path, size=(12, 10), colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, "JPEG")


def make_cub(root: Path) -> Path:
    """A CUB_200_2011 release under root, in its layout: images interleaved by split, as the
    real train_test_split.txt interleaves them. Returns the release folder."""
    release = root / "CUB_200_2011"
    lines = {name: [] for name in ("images", "labels", "split", "boxes")}
    image_id = 0
    for class_id, (name, n_train, n_test) in enumerate(CUB_CLASSES, start=1):
        flags = [1] * n_train + [0] * n_test
        for k, is_train in enumerate(flags[::2] + flags[1::2]):
            image_id += 1
            path = f"{name}/{name.split('.')[1]}_{k:04d}.jpg"
            jpeg(release / "images" / path, colour=(class_id * 50, 30, 30))
            lines["images"].append(f"{image_id} {path}")
            lines["labels"].append(f"{image_id} {class_id}")
            lines["split"].append(f"{image_id} {is_train}")
            lines["boxes"].append(f"{image_id} 1.0 2.0 6.0 5.0")
    (release / "classes.txt").write_text(
        "".join(f"{i} {name}\n" for i, (name, _, _) in enumerate(CUB_CLASSES, start=1))
    )
    for name, file in (
        ("images", "images.txt"),
        ("labels", "image_class_labels.txt"),
        ("split", "train_test_split.txt"),
        ("boxes", "bounding_boxes.txt"),
    ):
        (release / file).write_text("\n".join(lines[name]) + "\n")
    return release


def cub_spec(root: Path, **options) -> dict:
    return {"source": "cub200", "root": str(root), "download": False, "crop": False, **options}


def test_a_cub_release_loads_with_its_official_split_and_class_order(tmp_path):
    make_cub(tmp_path / "data")
    spec = cub_spec(tmp_path / "data")  # the folder holding CUB_200_2011/
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    train, test = (split_labels(spec, manifest, split) for split in ("train", "test"))
    assert np.bincount(train).tolist() == [n for _, n, _ in CUB_CLASSES]
    assert np.bincount(test).tolist() == [n for _, _, n in CUB_CLASSES]
    assert json.loads(manifest.read_text())["classes"] == [name for name, _, _ in CUB_CLASSES]
    assert dataset_source(spec).class_ids(spec) == [0, 1, 2, 3]  # classes.txt's (200 in CUB)
    # known before any job, as the dataset job lists them
    np.testing.assert_array_equal(train_labels_if_known(spec, tmp_path / "none.json"), train)
    image, label = split_images(spec, manifest, "train")[0]
    assert image.size == (12, 10) and label == 0


def test_a_cub_image_is_cropped_to_its_bounding_box(tmp_path):
    make_cub(tmp_path)
    spec = cub_spec(tmp_path / "CUB_200_2011", crop=True)  # the release folder itself
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    image, _ = split_images(spec, manifest, "test")[3]
    assert image.size == (6, 5)  # x 1..7, y 2..7 of bounding_boxes.txt


def cub_config(root: Path, **lowshot_task) -> dict:
    config = tiny_config()
    config["datasets"]["cub"] = cub_spec(root)
    config["models"]["pixels_cub"] = {"source": "pixels"}
    config["lowshot"]["tasks"] = {
        "cub": {
            "models": ["pixels"],
            "dataset": "cub",
            "base_classes": {"first": 2},
            "novel_classes": {"last": 2},
            "n_shot": [1],
            **lowshot_task,
        }
    }
    validate_config(config, SCHEMA)
    return config


def known_labels(config):
    return lambda name: train_labels_if_known(config["datasets"][name], "/nonexistent")


def test_a_cub_root_without_its_split_files_is_refused_before_any_job_naming_the_key(tmp_path):
    (tmp_path / "CUB_200_2011" / "images").mkdir(parents=True)
    config = cub_config(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"config key 'datasets.cub.root': .*CUB_200_2011 has no images.txt, "
        r"image_class_labels.txt, train_test_split.txt, classes.txt: not the CUB_200_2011 ",
    ):
        check_inputs(config)
    config["datasets"]["cub"]["download"] = True  # it will be fetched: nothing to check yet
    assert check_inputs(config) == ([], [])


def test_cub_offline_download_says_what_to_put_where(tmp_path, monkeypatch):
    import torchvision.datasets.utils

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    spec = cub_spec(tmp_path / "cub", download=True)
    with pytest.raises(DatasetUnavailable, match="unpack CUB_200_2011.tgz into .*cub, then rerun"):
        prepare_dataset(spec, tmp_path / "cache" / "manifest.json")


def test_qis_cub_split_is_one_line_of_selectors_checked_before_any_job(tmp_path):
    make_cub(tmp_path)
    config = cub_config(tmp_path)
    check_config(config, train_labels=known_labels(config))
    overlapping = cub_config(tmp_path, base_classes={"first": 3})
    with pytest.raises(
        ConfigError, match=r"'lowshot.tasks.cub.novel_classes': \[2\] are also base classes"
    ):
        check_config(overlapping, train_labels=known_labels(overlapping))
    nothing = cub_config(tmp_path, novel_classes={"min_train_images": 50})
    with pytest.raises(
        ConfigError,
        match=r"'lowshot.tasks.cub.novel_classes': \{min_train_images: 50\} selects no class",
    ):
        check_config(nothing, train_labels=known_labels(nothing))
    too_many = cub_config(tmp_path, n_shot=[2])  # class 3 has one train image
    with pytest.raises(ConfigError, match=r"'lowshot.tasks.cub.n_shot': 2 exceeds the 1 train"):
        check_config(too_many, train_labels=known_labels(too_many))


# -- iNaturalist --------------------------------------------------------------------------------

#: (super-category, species, train images, val images) of a generated iNaturalist 2017 tree
INAT_2017 = [
    ("Aves", "Pica pica", 4, 1),
    ("Aves", "Corvus corax", 1, 2),
    ("Plantae", "Achillea millefolium", 3, 1),
]


def make_inat_2017(root: Path) -> None:
    """iNaturalist 2017 as torchvision's INaturalist leaves it (root/2017/<super>/<species>/)
    and the competition's train2017.json / val2017.json, whose file names start with the
    archive's top folder. Category ids deliberately not in folder order."""
    category_ids = [2, 0, 1]
    splits = {"train": {"images": [], "annotations": []}, "val": {"images": [], "annotations": []}}
    image_id = 0
    for (super_category, species, n_train, n_val), category in zip(
        INAT_2017, category_ids, strict=True
    ):
        for split, count in (("train", n_train), ("val", n_val)):
            for k in range(count):
                image_id += 1
                relative = f"{super_category}/{species}/{split}{k}.jpg"
                jpeg(root / "2017" / relative)
                splits[split]["images"].append(
                    {"id": image_id, "file_name": f"train_val_images/{relative}"}
                )
                splits[split]["annotations"].append({"image_id": image_id, "category_id": category})
    categories = [
        {"id": c, "name": species, "supercategory": sup}
        for (sup, species, _, _), c in zip(INAT_2017, category_ids, strict=True)
    ]
    for split, listed in splits.items():
        (root / f"{split}2017.json").write_text(json.dumps({**listed, "categories": categories}))


def inat_spec(root: Path, version="2017") -> dict:
    return {"source": "inaturalist", "root": str(root), "version": version, "download": False}


def test_inaturalist_2017_loads_the_competitions_split_and_category_ids(tmp_path):
    make_inat_2017(tmp_path / "inat")
    spec = inat_spec(tmp_path / "inat")
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    train, test = (split_labels(spec, manifest, split) for split in ("train", "test"))
    assert np.bincount(train).tolist() == [1, 3, 4]  # categories 0, 1, 2: Corvus, Achillea, Pica
    assert np.bincount(test).tolist() == [2, 1, 1]
    names = json.loads(manifest.read_text())["classes"]
    assert names == ["Corvus corax", "Achillea millefolium", "Pica pica"]
    image, label = split_images(spec, manifest, "train")[0]
    assert image.size == (12, 10) and label == 2
    # Qi et al.'s split: base = classes with at least N train images, novel = the others
    assert select_classes({"min_train_images": 3}, [0, 1, 2], train) == [1, 2]
    assert select_classes({"max_train_images": 2}, [0, 1, 2], train) == [0]


def test_inaturalist_without_its_split_files_is_listed_before_any_job_naming_the_key(tmp_path):
    make_inat_2017(tmp_path)
    (tmp_path / "val2017.json").unlink()
    config = tiny_config()
    config["datasets"]["inat"] = inat_spec(tmp_path)
    validate_config(config, SCHEMA)
    missing, _ = check_inputs(config)  # a dry run lists it; a real run stops before any job
    assert missing == [
        f"config key 'datasets.inat.root (val2017.json)': {tmp_path / 'val2017.json'} does "
        "not exist"
    ]
    with pytest.raises(DatasetUnavailable, match=r"has no val2017.json, the iNaturalist 2017"):
        prepare_dataset(config["datasets"]["inat"], tmp_path / "cache" / "manifest.json")


def test_inaturalist_2021_reads_torchvisions_train_and_valid_folders(tmp_path):
    species = [f"{i:05d}_Animalia_Chordata_Aves_Order_Family_Genus_species{i}" for i in range(3)]
    for split, counts in (("2021_train_mini", [2, 3, 1]), ("2021_valid", [1, 1, 2])):
        for name, count in zip(species, counts, strict=True):
            for k in range(count):
                jpeg(tmp_path / split / name / f"{k}.jpg")
    spec = inat_spec(tmp_path, version="2021_mini")
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    assert np.bincount(split_labels(spec, manifest, "train")).tolist() == [2, 3, 1]
    assert np.bincount(split_labels(spec, manifest, "test")).tolist() == [1, 1, 2]
    assert json.loads(manifest.read_text())["classes"] == species


# -- class selectors ------------------------------------------------------------------------------


def test_class_selectors_pick_by_position_and_by_train_images():
    labels = np.array([0, 0, 0, 1, 2, 2, 5, 5, 5, 5])
    available = [5, 0, 1, 2]  # any order in: the dataset's id order out
    assert select_classes([2, 0], available) == [2, 0]  # a list stays as written
    assert select_classes({"first": 2}, available) == [0, 1]
    assert select_classes({"last": 2}, available) == [2, 5]
    assert select_classes({"min_train_images": 3}, available, labels) == [0, 5]
    assert select_classes({"max_train_images": 2}, available, labels) == [1, 2]
    with pytest.raises(ValueError, match="needs the dataset's train labels"):
        select_classes({"max_train_images": 2}, available)
    with pytest.raises(ValueError, match=r"\{first: 5\}: the dataset has 4 classes"):
        select_classes({"first": 5}, available)
    # a task's classes by selector
    spec = {"dataset": "d", "classes": {"min_train_images": 2}}
    assert task_classes(spec, available, labels) == [0, 2, 5]


def test_the_schemas_selectors_are_the_librarys():
    import yaml

    from imprint.tasks import CLASS_SELECTORS

    defs = yaml.safe_load(SCHEMA.read_text())["$defs"]
    assert list(defs["class_selector"]["properties"]) == list(CLASS_SELECTORS)
