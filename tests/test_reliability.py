"""Corrupt files and degenerate data: detected, or given defined behaviour."""

import numpy as np
import pytest

from imprint import ImprintingClassifier, nc1
from imprint.gen import GEN_METHODS, generate_proxies
from imprint.grid import Grid, run_grid
from imprint.io import load_arrays, save_arrays
from imprint.stages import run_imprinting


@pytest.fixture
def embeddings_file(tmp_path):
    path = tmp_path / "train.npz"
    save_arrays(
        path, embeddings=np.random.default_rng(0).normal(size=(500, 16)), labels=np.arange(500) % 5
    )
    return path


def test_a_truncated_embeddings_file_is_detected(embeddings_file):
    data = embeddings_file.read_bytes()
    embeddings_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="train.npz: corrupt or truncated"):
        load_arrays(embeddings_file)


def test_a_flipped_byte_in_an_embeddings_file_is_detected(embeddings_file):
    data = bytearray(embeddings_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the embeddings array; its CRC-32 no longer matches
    embeddings_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated"):
        load_arrays(embeddings_file)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_arrays(tmp_path / "nowhere.npz")


def imprint_embeddings(tmp_path, train, test):
    """run_imprinting of a one-configuration grid on these train and test embeddings (two
    classes, every row in the task), with its files in ``tmp_path``."""
    train_labels, test_labels = np.arange(len(train)) % 2, np.arange(len(test)) % 2
    save_arrays(tmp_path / "train.npz", embeddings=train, labels=train_labels)
    save_arrays(tmp_path / "test.npz", embeddings=test, labels=test_labels)
    save_arrays(
        tmp_path / "task.npz",
        train_index=np.arange(len(train)),
        train_label=train_labels,
        test_index=np.arange(len(test)),
        test_label=test_labels,
    )
    grid = {
        "gen": ["mean"],
        "k": [1],
        "norm_pre": ["l2"],
        "norm_post": ["l2"],
        "norm_inf": ["l2"],
        "agg": ["max"],
        "m": [1],
    }
    run_imprinting(
        train=str(tmp_path / "train.npz"),
        test=str(tmp_path / "test.npz"),
        task_split=str(tmp_path / "task.npz"),
        grid=grid,
        ls_lambda=1e-4,
        model="m",
        task="t",
        seed=0,
        results=str(tmp_path / "out.csv"),
        gen_time=str(tmp_path / "time.csv"),
    )


def test_nan_embeddings_stop_imprinting_with_the_file_named(tmp_path):
    x = np.ones((20, 4))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="train.npz: embeddings contain NaN or inf"):
        imprint_embeddings(tmp_path, x, np.ones((6, 4)))
    assert not (tmp_path / "out.csv").exists()


def test_train_and_test_embeddings_of_different_widths_stop_imprinting_naming_both(tmp_path):
    with pytest.raises(
        ValueError,
        match=rf"^{tmp_path / 'train.npz'} holds 16-d embeddings but {tmp_path / 'test.npz'} 8-d",
    ):
        imprint_embeddings(tmp_path, np.ones((20, 16)), np.ones((6, 8)))
    assert not (tmp_path / "out.csv").exists()


def test_a_failed_jobs_log_ends_with_one_line_and_its_traceback_is_beside_it(tmp_path):
    from imprint.stages import logged

    log = tmp_path / "logs" / "job.log"
    with pytest.raises(SystemExit) as exited, logged(log):
        raise ValueError("photos/cat.png: cannot be decoded\n(truncated)")
    assert exited.value.code == 1
    lines = log.read_text().splitlines()
    assert lines[-1] == "Error: photos/cat.png: cannot be decoded (truncated)"
    assert "Traceback" not in log.read_text()
    assert "ValueError: photos/cat.png" in (tmp_path / "logs" / "job.log.traceback").read_text()
    with pytest.raises(SystemExit), logged(log):
        raise KeyError("model")  # not one of the library's own: its type is named
    assert log.read_text().splitlines()[-1] == "Error: KeyError: 'model'"
    with logged(log):  # a successful attempt leaves no stale traceback
        pass
    assert not (tmp_path / "logs" / "job.log.traceback").exists()


def test_inf_embeddings_are_refused_by_the_classifier():
    x = np.ones((4, 2))
    x[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ImprintingClassifier().fit(x, [0, 0, 1, 1])


def test_zero_vectors_under_l2_stay_zero_and_do_not_produce_nan():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    clf = ImprintingClassifier(gen="all").fit(x, [0, 0, 1, 1])
    assert np.isfinite(clf.proxies_).all()
    np.testing.assert_array_equal(clf.proxies_[0], [0.0, 0.0])
    assert clf.predict([[0.0, 0.0]]).tolist() == [0]  # all scores tie at 0: the first class


@pytest.mark.parametrize("gen", GEN_METHODS)
def test_unbalanced_classes_with_one_sample_and_duplicates_work_with_every_gen(gen):
    rng = np.random.default_rng(0)
    x = np.vstack(
        [
            rng.normal(size=(1, 3)),
            np.repeat(rng.normal(size=(1, 3)), 4, axis=0),
            rng.normal(size=(40, 3)) + 3,
        ]
    )
    y = np.array([0] + [1] * 4 + [2] * 40)
    proxies, labels = generate_proxies(x, y, gen, k=5, random_state=0)
    assert np.isfinite(proxies).all() and set(labels) == {0, 1, 2}
    assert (labels == 0).sum() == 1  # a one-sample class keeps one proxy under every GEN


def test_the_grid_runs_on_unbalanced_tiny_classes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = np.array([0] * 2 + [1] * 8 + [2] * 20)
    grid = Grid(
        gen=list(GEN_METHODS),
        k=[1, 5],
        norm_pre=["l2"],
        norm_post=["quantile"],
        norm_inf=["l2"],
        agg=["max", "mnn"],
        m=[3],
    )
    results, timing = run_grid(x, y, x, y, grid, seed=0)
    assert len(results) == grid.size() and results["accuracy"].between(0, 1).all()


def test_nc1_is_defined_for_unbalanced_classes_and_a_singleton_class():
    x = np.array([[0.0], [1.0], [5.0], [5.5], [6.0], [20.0]])
    y = np.array([0, 0, 1, 1, 1, 2])
    assert np.isfinite(nc1(x, y)) and nc1(x, y) > 0
