"""The timm, python and precomputed model sources, torchvision checkpoints and layers: offline,
with random weights for the plumbing and local files for the checkpoint paths."""

import numpy as np
import pytest
import torch

from imprint.config import ConfigError, validate_config
from imprint.datasets import PrecomputedEmbeddings, prepare_dataset, split_embeddings
from imprint.models import layer_embedding, model_source
from tests.conftest import SCHEMA, tiny_config

IMAGES = [
    (torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(i)), i % 3) for i in range(6)
]


def embed(spec, tmp_path, images=IMAGES):
    source = model_source(spec)
    source.prepare(spec, tmp_path / "model.pt", None, threads=1)
    network = source.load(spec, tmp_path / "model.pt")
    transform = source.preprocess(spec)
    with torch.inference_mode():
        return network(torch.stack([transform(image) for image, _ in images]))


def test_timm_gives_pooled_features_with_its_own_preprocessing(tmp_path):
    spec = {"source": "timm", "name": "resnet18", "pretrained": False, "image_size": 32}
    out = embed(spec, tmp_path)
    assert out.shape == (6, 512) and torch.isfinite(out).all()
    # The weights live in the model file: loading it again gives the same embeddings.
    source = model_source(spec)
    network, transform = source.load(spec, tmp_path / "model.pt"), source.preprocess(spec)
    with torch.inference_mode():
        again = network(torch.stack([transform(image) for image, _ in IMAGES]))
    assert torch.equal(out, again)


def test_timm_checkpoint_and_layer(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    reference = timm.create_model("resnet18", pretrained=False)
    save_file(reference.state_dict(), str(tmp_path / "weights.safetensors"))
    spec = {
        "source": "timm",
        "name": "resnet18",
        "pretrained": False,
        "image_size": 32,
        "checkpoint": str(tmp_path / "weights.safetensors"),
    }
    out = embed(spec, tmp_path)
    reference.reset_classifier(0)
    transform = model_source(spec).preprocess(spec)
    with torch.inference_mode():
        expected = reference.eval()(torch.stack([transform(image) for image, _ in IMAGES]))
    torch.testing.assert_close(out, expected)
    layer = embed({**spec, "layer": "layer2"}, tmp_path)
    assert layer.shape == (6, 128)


def test_an_unknown_timm_model_is_named_before_any_job():
    config = tiny_config()
    config["models"] = {"fm": {"source": "timm", "name": "resnet_eighteen"}}
    from imprint.config import check_config

    validate_config(config, SCHEMA)
    with pytest.raises(ConfigError, match=r"'models.fm.name': timm has no model 'resnet_eighteen'"):
        check_config(config)


def test_a_python_factory_with_kwargs_and_default_preprocessing(tmp_path):
    spec = {
        "source": "python",
        "factory": "tests.support.factories:tiny_cnn",
        "kwargs": {"width": 5},
        "image_size": 16,
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
    }
    out = embed(spec, tmp_path)
    assert out.shape == (6, 5)


def test_a_python_factory_may_bring_its_own_preprocessing(tmp_path):
    spec = {"source": "python", "factory": "tests.support.factories:with_preprocessing"}
    transform = model_source(spec).preprocess(spec)
    assert transform(IMAGES[0][0]).shape == (3, 16, 16)
    assert embed(spec, tmp_path).shape == (6, 8)


@pytest.mark.parametrize(
    "factory,message",
    [
        ("tests.support.nowhere:tiny_cnn", "cannot import 'tests.support.nowhere'"),
        ("tests.support.factories:missing", "has no callable 'missing'"),
        ("tests.support.factories:not_a_network", "returned a str, not a torch.nn.Module"),
    ],
)
def test_a_bad_factory_gets_a_one_line_error(tmp_path, factory, message):
    spec = {"source": "python", "factory": factory}
    with pytest.raises(ValueError, match=message):
        model_source(spec).prepare(spec, tmp_path / "model.pt", None, threads=1)


def test_torchvision_loads_a_local_checkpoint_instead_of_downloading(tmp_path):
    from torchvision.models import get_model

    torch.manual_seed(1)
    reference = get_model("resnet18", weights=None)
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "resnet18.pth")
    spec = {
        "source": "torchvision",
        "name": "resnet18",
        "weights": None,
        "checkpoint": str(tmp_path / "resnet18.pth"),
    }
    source = model_source(spec)
    source.prepare(spec, tmp_path / "model.pt", None, threads=1)
    loaded = source.load(spec, tmp_path / "model.pt")
    for name, tensor in reference.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded.state_dict()[name], tensor), name
    wrong = {**spec, "name": "resnet34"}
    with pytest.raises(ValueError, match="not a resnet34 checkpoint"):
        model_source(wrong).prepare(wrong, tmp_path / "wrong.pt", None, threads=1)


def test_a_layer_is_average_pooled_and_a_wrong_name_lists_the_nearest(tmp_path):
    from torchvision.models import get_model

    network = get_model("resnet18", weights=None).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.inference_mode():
        # conv1 .. layer3, written out: the reference the pooled layer output must equal
        feature_map = torch.nn.Sequential(*list(network.children())[:7])(x)
        out = layer_embedding(network, "layer3")(x)
    torch.testing.assert_close(out, feature_map.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match=r"layer 'layer5' does not exist .*'layer1'"):
        layer_embedding(network, "layer5")


def test_a_list_of_layers_makes_one_model_per_layer():
    config = tiny_config()
    config["models"]["r18"] = {
        "source": "torchvision",
        "name": "resnet18",
        "weights": None,
        "layer": ["layer3", "layer4.1"],
    }
    config["imprinting"]["ls_lambda_per_model"] = {"r18": 0.1}
    validate_config(config, SCHEMA)
    assert {"r18-layer3", "r18-layer4_1"} <= set(config["models"]) and "r18" not in config["models"]
    assert config["models"]["r18-layer4_1"]["layer"] == "layer4.1"
    assert config["imprinting"]["ls_lambda_per_model"] == {"r18-layer3": 0.1, "r18-layer4_1": 0.1}


def precomputed_file(path, rng, dim=4, n=(30, 12), labels=None):
    arrays = {}
    for split, size in zip(("train", "test"), n, strict=True):
        arrays[f"{split}_embeddings"] = rng.normal(size=(size, dim)).astype(np.float32)
        arrays[f"{split}_labels"] = np.arange(size) % 3 if labels is None else labels[split]
    np.savez(path, **arrays)
    return arrays


def test_precomputed_embeddings_are_checked_cached_and_read(tmp_path):
    rng = np.random.default_rng(0)
    a = precomputed_file(tmp_path / "a.npz", rng)
    precomputed_file(tmp_path / "b.npz", rng, dim=7)
    spec = {
        "source": "embeddings",
        "models": {"fm_a": str(tmp_path / "a.npz"), "fm_b": str(tmp_path / "b.npz")},
    }
    prepare_dataset(spec, tmp_path / "cache" / "manifest.json")
    embeddings, labels = split_embeddings(
        spec, tmp_path / "cache" / "manifest.json", "test", "fm_a"
    )
    np.testing.assert_array_equal(embeddings, a["test_embeddings"])
    np.testing.assert_array_equal(labels, a["test_labels"])
    with pytest.raises(ValueError, match="no embeddings of model 'fm_c'"):
        split_embeddings(spec, tmp_path / "cache" / "manifest.json", "test", "fm_c")


@pytest.mark.parametrize(
    "damage,message",
    [
        (
            lambda a: a.update(train_embeddings=a["train_embeddings"][:-1]),
            "29 embeddings but 30 labels",
        ),
        (
            lambda a: a["test_embeddings"].__setitem__((3, 1), np.nan),
            "1 embeddings contain NaN or inf",
        ),
        (lambda a: a.update(train_labels=a["train_labels"] - 1), "labels must be >= 0"),
        (lambda a: a.update(test_labels=a["test_labels"].astype(float)), "1-D integer array"),
        (lambda a: a.pop("test_labels"), "has no arrays \\['test_labels'\\]"),
    ],
)
def test_bad_precomputed_embeddings_are_refused_naming_the_file(tmp_path, damage, message):
    arrays = precomputed_file(tmp_path / "ok.npz", np.random.default_rng(0))
    damage(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message) as error:
        PrecomputedEmbeddings().prepare(
            {"models": {"fm": str(tmp_path / "bad.npz")}}, tmp_path, None
        )
    assert "bad.npz" in str(error.value)


def test_precomputed_models_and_embedding_datasets_go_together():
    from imprint.config import check_config

    config = tiny_config()
    config["datasets"]["feats"] = {"source": "embeddings", "models": {"fm": "feats.npz"}}
    config["models"] = {"fm": {"source": "precomputed"}, "pixels": {"source": "pixels"}}
    validate_config(config, SCHEMA)
    with pytest.raises(ConfigError, match="'models': models \\['pixels'\\] compute embeddings"):
        check_config(config)
    config["models"] = {"fm": {"source": "precomputed"}}
    with pytest.raises(ConfigError, match="'tasks.novel.dataset': 'digits' is not a dataset"):
        check_config(config)
