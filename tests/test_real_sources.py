"""The real loading paths (torchvision datasets and models, image folders, MNIST-M, pooling),
proven offline on ../shared/data and on small files made here."""

import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imprint.datasets import (
    DatasetUnavailable,
    TorchvisionDataset,
    prepare_dataset,
    split_images,
    split_labels,
)
from imprint.embed import extract_embeddings
from imprint.models import TorchvisionModel, model_source, strip_classifier
from tests.conftest import REPO

SHARED_DATA = REPO.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"{SHARED_DATA} (the real MNIST/FashionMNIST/USPS files) is not beside the checkout",
)


@needs_shared
@pytest.mark.parametrize(
    "name,n_train,n_test", [("MNIST", 60000, 10000), ("FashionMNIST", 60000, 10000)]
)
def test_torchvision_datasets_load_offline_from_their_real_files(tmp_path, name, n_train, n_test):
    # torchvision unpacks raw/ in place, so work on a copy of the shared files.
    shutil.copytree(SHARED_DATA / name, tmp_path / name)
    spec = {"source": "torchvision", "name": name}
    manifest = tmp_path / "manifest.json"
    prepare_dataset(spec, manifest)
    train, test = split_labels(spec, manifest, "train"), split_labels(spec, manifest, "test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert sorted(np.unique(train)) == list(range(10))
    image, label = split_images(spec, manifest, "test")[0]
    assert image.size == (28, 28) and image.mode == "L" and label == test[0]


@needs_shared
def test_usps_test_split_loads_and_the_missing_train_file_is_named(tmp_path):
    shutil.copy(SHARED_DATA / "USPS" / "usps.t.bz2", tmp_path)
    spec = {"source": "torchvision", "name": "USPS"}
    test = TorchvisionDataset().labels(spec, tmp_path, "test")
    assert len(test) == 2007 and sorted(np.unique(test)) == list(range(10))
    with pytest.raises(DatasetUnavailable) as error:
        prepare_dataset(spec, tmp_path / "manifest.json")
    assert str(tmp_path / "usps.bz2") in str(error.value)
    assert not (tmp_path / "manifest.json").exists()


def test_a_missing_torchvision_dataset_says_which_files_to_put_where(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.utils.urlretrieve", offline, raising=False)
    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DatasetUnavailable) as error:
        prepare_dataset({"source": "torchvision", "name": "CIFAR10"}, tmp_path / "manifest.json")
    assert str(tmp_path / "cifar-10-python.tar.gz") in str(error.value)


@needs_shared
def test_mnist_embeds_through_a_torchvision_model_with_its_own_preprocessing(tmp_path):
    shutil.copytree(SHARED_DATA / "MNIST", tmp_path / "MNIST")
    data = {"source": "torchvision", "name": "MNIST"}
    prepare_dataset(data, tmp_path / "manifest.json")
    model = {"source": "torchvision", "name": "resnet18", "weights": None}
    source = model_source(model)
    source.prepare(model, tmp_path / "resnet18.pt", None, threads=2)
    network = source.load(model, tmp_path / "resnet18.pt")
    images = split_images(
        data, tmp_path / "manifest.json", "test", transform=source.preprocess(model)
    )
    assert images[0][0].shape == (3, 224, 224)  # grayscale -> RGB -> the weights' transforms
    subset = torch.utils.data.Subset(images, range(8))
    embeddings, labels = extract_embeddings(
        network, subset, batch_size=4, threads=2, progress=False
    )
    assert embeddings.shape == (8, 512) and np.isfinite(embeddings).all()
    np.testing.assert_array_equal(
        labels, split_labels(data, tmp_path / "manifest.json", "test")[:8]
    )


@pytest.mark.parametrize(
    "name,dim", [("resnet18", 512), ("vit_b_16", 768), ("efficientnet_b0", 1280)]
)
def test_the_classification_head_is_removed(name, dim):
    from torchvision.models import get_model

    network = strip_classifier(get_model(name, weights=None)).eval()
    with torch.inference_mode():
        assert network(torch.rand(1, 3, 224, 224)).shape == (1, dim)


def test_pretrained_weights_load_from_a_prefilled_torch_home(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights, get_model

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    reference = get_model("resnet18", weights=None).state_dict()
    torch.save(reference, checkpoints / Path(ResNet18_Weights.IMAGENET1K_V1.url).name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = {"source": "torchvision", "name": "resnet18", "weights": "IMAGENET1K_V1"}
    TorchvisionModel().prepare(spec, tmp_path / "model.pt", None, threads=1)
    network = TorchvisionModel().load(spec, tmp_path / "model.pt")
    for key, value in network.state_dict().items():
        assert torch.equal(value, reference[key]), key
    assert "fc.weight" not in network.state_dict()


def test_missing_weights_offline_say_where_to_put_the_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    spec = {"source": "torchvision", "name": "resnet18", "weights": "IMAGENET1K_V1"}
    with pytest.raises(FileNotFoundError) as error:
        TorchvisionModel().prepare(spec, tmp_path / "model.pt", None, threads=1)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in str(error.value)


def write_png(path: Path, value: int, size=(12, 10), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=(value,) * len(mode) if mode == "RGB" else value).save(path)


def image_folder_dataset(
    tmp_path: Path, classes: list[str], per_class: int, test_size: float
) -> tuple[dict, Path]:
    """A prepared image_folder dataset of small distinct PNGs: its spec and manifest."""
    for label, name in enumerate(classes):
        for i in range(per_class):
            write_png(tmp_path / "photos" / name / f"{i}.png", 40 * label + i)
    spec = {
        "source": "image_folder",
        "train": str(tmp_path / "photos"),
        "test_size": test_size,
        "split_seed": 0,
    }
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    return spec, manifest


def test_an_image_folder_is_split_per_class_and_read_as_rgb(tmp_path):
    spec, manifest = image_folder_dataset(tmp_path, ["cat", "dog"], per_class=5, test_size=0.4)
    assert np.bincount(split_labels(spec, manifest, "train")).tolist() == [3, 3]
    assert np.bincount(split_labels(spec, manifest, "test")).tolist() == [2, 2]
    image, _ = split_images(spec, manifest, "train")[0]
    assert image.mode == "RGB" and image.size == (12, 10)
    # An image rewritten after the dataset was listed is detected when a job reads its split
    # (and only that split).
    write_png(tmp_path / "photos" / "dog" / "0.png", 200, size=(30, 30))
    errors = []
    for split in ("train", "test"):
        try:
            split_labels(spec, manifest, split)
        except ValueError as error:
            errors.append(str(error))
    assert len(errors) == 1 and "changed" in errors[0]
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        prepare_dataset({**spec, "train": str(tmp_path / "nowhere")}, manifest)


def test_an_image_folder_with_a_test_folder_keeps_both_as_given(tmp_path):
    """The README's `image_folder` with `test:`: no split of train, test read from its folder,
    and class folders that differ between the two are refused naming both."""
    for label, name in enumerate(["cat", "dog"]):
        for i in range(3 + label):  # unequal sizes, so a split would show
            write_png(tmp_path / "train" / name / f"{i}.png", 40 * label + i)
        write_png(tmp_path / "test" / name / "0.png", 200 + label)
    spec = {
        "source": "image_folder",
        "train": str(tmp_path / "train"),
        "test": str(tmp_path / "test"),
    }
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    assert split_labels(spec, manifest, "train").tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert split_labels(spec, manifest, "test").tolist() == [0, 1]
    image, label = split_images(spec, manifest, "test")[1]
    assert label == 1 and np.asarray(image)[0, 0].tolist() == [201, 201, 201]
    write_png(tmp_path / "test" / "eel" / "0.png", 5)
    with pytest.raises(ValueError, match=r"class folders \['cat', 'dog', 'eel'\] differ"):
        prepare_dataset(spec, tmp_path / "other" / "manifest.json")


def fake_mnist_m(root: Path, per_split=4):
    for split in ("train", "test"):
        lines = []
        for i in range(per_split):
            write_png(root / f"mnist_m_{split}" / f"{i:08d}.png", 20 * i, size=(32, 32))
            lines.append(f"{i:08d}.png {i % 2}")
        (root / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")


def test_mnist_m_is_read_from_its_release_folder(tmp_path):
    fake_mnist_m(tmp_path / "release")
    spec = {"source": "mnist_m", "root": str(tmp_path / "release")}
    manifest = tmp_path / "cache" / "manifest.json"
    prepare_dataset(spec, manifest)
    assert split_labels(spec, manifest, "test").tolist() == [0, 1, 0, 1]
    image, label = split_images(spec, manifest, "test")[1]
    assert image.size == (32, 32) and label == 1
    with pytest.raises(DatasetUnavailable, match="mnist_m_train_labels.txt is missing"):
        prepare_dataset({"source": "mnist_m", "root": str(tmp_path / "empty")}, manifest)


def test_a_missing_imagenet_says_which_tarballs_to_put_where(tmp_path):
    with pytest.raises(DatasetUnavailable, match="ILSVRC2012_img_val.tar"):
        prepare_dataset(
            {"source": "imagenet_val", "root": str(tmp_path), "test_size": 0.2, "split_seed": 0},
            tmp_path / "cache" / "manifest.json",
        )


def test_pooled_datasets_share_labels_and_one_image_size(tmp_path):
    digits = {"source": "sklearn_digits", "test_size": 0.5, "split_seed": 0}
    prepare_dataset(digits, tmp_path / "digits" / "manifest.json")
    fake_mnist_m(tmp_path / "release")
    mnist_m = {"source": "mnist_m", "root": str(tmp_path / "release")}
    prepare_dataset(mnist_m, tmp_path / "mnist_m" / "manifest.json")
    parts = {
        "digits": (digits, tmp_path / "digits" / "manifest.json"),
        "mnist_m": (mnist_m, tmp_path / "mnist_m" / "manifest.json"),
    }
    pooled = {"source": "combine", "datasets": ["digits", "mnist_m"], "size": 16}
    manifest = tmp_path / "pooled" / "manifest.json"
    prepare_dataset(pooled, manifest, resolve=lambda name: parts[name])
    test = split_labels(pooled, manifest, "test")
    assert len(test) == 899 + 4 and test[-4:].tolist() == [0, 1, 0, 1]
    image, _ = split_images(pooled, manifest, "test")[0]
    assert image.shape == (3, 16, 16) and 0 <= float(image.min()) <= float(image.max()) <= 1


def test_tasks_are_built_from_an_image_folder_whose_classes_come_from_the_data(tmp_path):
    from imprint.io import load_arrays
    from imprint.stages import run_build_task

    spec, manifest = image_folder_dataset(
        tmp_path, ["ant", "bee", "cow"], per_class=4, test_size=0.25
    )
    run_build_task(
        spec={"dataset": "photos", "n_shot": 2},
        dataset_spec=spec,
        manifest=str(manifest),
        seed=0,
        task_split=str(tmp_path / "task.npz"),
    )
    task = load_arrays(tmp_path / "task.npz")
    assert np.bincount(task["train_label"]).tolist() == [2, 2, 2]
    assert task["original_class"].tolist() == [0, 1, 2]
