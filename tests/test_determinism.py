"""Same seed, same bytes, whatever the thread count: model files and embedding files.

Each run is a separate process with its own thread settings, as jobs under `--cores 1` and
`--cores 2` are (Snakemake gives a job min(threads, cores) threads).
"""

import subprocess
import sys

import pytest

from imprint.datasets import prepare_dataset
from tests.conftest import REPO

DIGITS = {"source": "sklearn_digits", "test_size": 0.5, "split_seed": 0}
CNN = {
    "source": "base_cnn",
    "dataset": "digits",
    "base_classes": [0, 1, 2, 3, 4],
    "embedding_dim": 16,
    "epochs": 2,
    "learning_rate": 0.001,
    "batch_size": 64,
    "seed": 0,
}
EMBEDDING = {"batch_size": "auto", "num_workers": "auto", "device": "cpu"}

JOB = """
import sys
from imprint.stages import run_embed, run_prepare_model
spec, manifest, out, threads = {spec!r}, {manifest!r}, {out!r}, {threads}
run_prepare_model(spec=spec, network=f"{{out}}/model.pt", dataset_spec={digits!r},
                  manifest=manifest if spec["source"] == "base_cnn" else None, threads=threads)
for split in ("train", "test"):
    run_embed(model_spec=spec, network=f"{{out}}/model.pt", dataset_spec={digits!r},
              manifest=manifest, split=split, embeddings=f"{{out}}/{{split}}.npz",
              embedding={embedding!r}, threads=threads)
"""


@pytest.fixture(scope="module")
def digits_manifest(tmp_path_factory):
    manifest = tmp_path_factory.mktemp("digits") / "manifest.json"
    prepare_dataset(DIGITS, manifest)
    return manifest


def run_job(spec, manifest, out, threads):
    out.mkdir()
    code = JOB.format(
        spec=spec,
        manifest=str(manifest),
        out=str(out),
        threads=threads,
        digits=DIGITS,
        embedding=EMBEDDING,
    )
    env = {"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=out)
    return {path.name: path.read_bytes() for path in sorted(out.iterdir())}


def test_model_and_embedding_files_are_the_same_bytes_with_one_or_two_threads(
    digits_manifest, tmp_path
):
    # The base CNN: trained, saved (under a random temporary name), then embedding both splits.
    one = run_job(CNN, digits_manifest, tmp_path / "one", threads=1)
    two = run_job(CNN, digits_manifest, tmp_path / "two", threads=2)
    assert sorted(one) == ["model.pt", "test.npz", "train.npz"]
    for name in one:
        assert one[name] == two[name], f"{name} differs between 1 and 2 threads"


def test_a_torchvision_networks_embeddings_do_not_depend_on_the_thread_count():
    import torch
    from torchvision.models import get_model

    from imprint.embed import extract_embeddings
    from imprint.models import strip_classifier

    torch.manual_seed(0)
    network = strip_classifier(get_model("resnet18", weights=None)).eval()
    images = [
        (torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)), 0) for i in range(40)
    ]
    one, _ = extract_embeddings(network, images, threads=1, device="cpu", progress=False)
    two, _ = extract_embeddings(network, images, threads=2, device="cpu", progress=False)
    assert one.tobytes() == two.tobytes()
