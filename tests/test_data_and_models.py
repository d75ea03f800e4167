import numpy as np
import pytest
import torch

from imprint.datasets import prepare_dataset, split_images, split_labels
from imprint.embed import extract_embeddings
from imprint.models import model_source

DIGITS = {"source": "sklearn_digits", "test_size": 0.5, "split_seed": 0}


@pytest.fixture(scope="module")
def digits_manifest(tmp_path_factory):
    manifest = tmp_path_factory.mktemp("digits") / "manifest.json"
    prepare_dataset(DIGITS, manifest)
    return manifest


def test_digits_are_split_stratified_and_cached(digits_manifest):
    train = split_labels(DIGITS, digits_manifest, "train")
    test = split_labels(DIGITS, digits_manifest, "test")
    assert len(train) + len(test) == 1797
    # Stratified: every class is split in half, up to rounding.
    assert np.abs(np.bincount(train) - np.bincount(test)).max() <= 1
    image, label = split_images(DIGITS, digits_manifest, "train")[0]
    assert image.shape == (1, 8, 8) and 0 <= image.min() and image.max() <= 1


def test_a_corrupted_dataset_file_is_detected(tmp_path):
    manifest = tmp_path / "manifest.json"
    prepare_dataset(DIGITS, manifest)
    with open(tmp_path / "train.npz", "r+b") as handle:
        handle.seek(100)
        handle.write(b"garbage")
    with pytest.raises(ValueError, match="train.npz: checksum differs"):
        split_labels(DIGITS, manifest, "train")


def test_pixels_model_embeds_flattened_pixels(tmp_path, digits_manifest):
    spec = {"source": "pixels"}
    source = model_source(spec)
    source.prepare(spec, tmp_path / "pixels.pt", None, threads=1)
    network = source.load(spec, tmp_path / "pixels.pt")
    images = split_images(DIGITS, digits_manifest, "test")
    embeddings, labels = extract_embeddings(network, images, batch_size=100, progress=False)
    assert embeddings.shape == (len(images), 64) and embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings[0], images[0][0].flatten().numpy())
    np.testing.assert_array_equal(labels, split_labels(DIGITS, digits_manifest, "test"))


def test_base_cnn_trains_on_base_classes_and_embeds_without_its_head(tmp_path, digits_manifest):
    spec = {
        "source": "base_cnn",
        "dataset": "digits",
        "base_classes": [0, 1, 2],
        "embedding_dim": 8,
        "epochs": 3,
        "learning_rate": 0.003,
        "batch_size": 64,
        "seed": 0,
        "head": "linear",
    }
    source = model_source(spec)
    training = split_images(DIGITS, digits_manifest, "train")
    source.prepare(spec, tmp_path / "cnn.pt", training, threads=1)
    record = torch.load(tmp_path / "cnn.pt", weights_only=True)
    assert record["n_train"] == int(
        np.isin(split_labels(DIGITS, digits_manifest, "train"), [0, 1, 2]).sum()
    )
    assert len(record["history"]) == 3 and record["train_accuracy"] > 0.5
    network = source.load(spec, tmp_path / "cnn.pt")
    embeddings, _ = extract_embeddings(network, training, progress=False)
    assert embeddings.shape == (len(training), 8) and (embeddings >= 0).all()
    # Deterministic: training again gives the same weights.
    source.prepare(spec, tmp_path / "again.pt", training, threads=1)
    again = torch.load(tmp_path / "again.pt", weights_only=True)["state_dict"]
    for name, tensor in record["state_dict"].items():
        assert torch.equal(tensor, again[name]), name


def test_the_default_base_cnn_is_qis_cosine_classifier_with_a_learnt_scale(
    tmp_path, digits_manifest
):
    spec = {
        "source": "base_cnn",
        "dataset": "digits",
        "base_classes": [0, 1, 2],
        "embedding_dim": 16,
        "epochs": 30,
        "learning_rate": 0.001,
        "batch_size": 64,
        "seed": 0,
    }
    source = model_source(spec)
    training = split_images(DIGITS, digits_manifest, "train")
    source.prepare(spec, tmp_path / "cnn.pt", training, threads=1)
    record = torch.load(tmp_path / "cnn.pt", weights_only=True)
    assert record["train_accuracy"] > 0.95
    assert record["state_dict"]["1.scale"] != 10.0  # learnt from its initial value
    network = source.load_with_head(spec, tmp_path / "cnn.pt")
    embeddings, _ = extract_embeddings(network[0], training, progress=False)
    # The embedding the cosine head normalises: signed, not a ReLU's output.
    assert embeddings.shape == (len(training), 16) and (embeddings < 0).any()
    with torch.inference_mode():
        x = torch.as_tensor(embeddings[:5])
        cosines = (
            torch.nn.functional.normalize(x, dim=1)
            @ torch.nn.functional.normalize(network[1].weight, dim=1).T
        )
        torch.testing.assert_close(network[1](x), network[1].scale * cosines)


def test_a_model_file_of_the_wrong_kind_is_refused(tmp_path):
    pixels = {"source": "pixels"}
    model_source(pixels).prepare(pixels, tmp_path / "m.pt", None, threads=1)
    cnn = {"source": "base_cnn", "dataset": "d", "base_classes": [0, 1], "embedding_dim": 4}
    with pytest.raises(ValueError, match="holds a 'pixels' model"):
        model_source(cnn).load(cnn, tmp_path / "m.pt")
