"""The GEN registry: one entry per method, every name list derived from it, and a new method
that is one function plus its decorator runs through the grid and the estimator."""

import numpy as np
import pytest

from imprint import gen
from imprint.classifier import ImprintingClassifier
from imprint.gen import GEN_REGISTRY, GenCache, generate_proxies, register_gen
from imprint.grid import Grid, run_grid


@pytest.fixture
def first_k_samples():
    """A toy GEN method, registered as a user would add one: each class's first k samples."""

    @register_gen("first", "select", uses_k=True)
    def first(samples, k, context, position):
        return np.arange(k)

    yield "first"
    del GEN_REGISTRY["first"]


def blobs(seed=0, n_per_class=10):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n_per_class)
    return rng.normal(size=(len(y), 4)) + 3 * y[:, None], y


def test_a_registered_method_runs_through_generate_the_grid_and_the_estimator(first_k_samples):
    x, y = blobs()
    proxies, labels = generate_proxies(x, y, "first", k=2)
    expected = np.concatenate([x[y == label][:2] for label in (0, 1, 2)])
    np.testing.assert_array_equal(proxies, expected)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    # a class with at most k samples keeps them all, without calling the method
    assert len(generate_proxies(x, y, "first", k=50)[0]) == len(x)

    test_x, test_y = blobs(seed=1)
    grid = Grid(gen=["first", "mean"], k=[1, 3], device="cpu", dtype="float64")
    results, timing = run_grid(x, y, test_x, test_y, grid, seed=0)
    assert grid.size() == 3 == len(results)  # "first" takes k, "mean" does not
    assert results.loc[results["gen"] == "first", "k"].tolist() == [1, 3]
    assert results.loc[results["gen"] == "first", "n_proxies"].tolist() == [3, 9]
    assert timing["gen"].tolist() == ["first", "first", "mean"]

    row = results[(results["gen"] == "first") & (results["k"] == 3)].iloc[0]
    classifier = ImprintingClassifier(gen="first", k=3, device="cpu", dtype="float64")
    classifier.fit(x, y)
    assert classifier.score(test_x, test_y) == row["accuracy"]
    np.testing.assert_array_equal(classifier.proxies_.shape, (9, 4))
    # per class, so a class can be added without refitting the others
    classifier.partial_fit(x[y == 2] + 10, np.full(10, 3))
    assert classifier.classes_.tolist() == [0, 1, 2, 3]


def test_an_unregistered_method_is_refused_with_the_registered_names():
    x, y = blobs()
    with pytest.raises(ValueError, match="unknown GEN method 'first'.*'kmeans'"):
        generate_proxies(x, y, "first")
    with pytest.raises(ValueError, match="gen"):
        ImprintingClassifier(gen="first").fit(x, y)


def test_a_name_is_registered_once(first_k_samples):
    with pytest.raises(ValueError, match="registered twice"):
        register_gen("first", "select")(lambda samples, k, context, position: None)


def test_the_name_lists_are_the_registrys():
    entries = GEN_REGISTRY.values()
    assert gen.GEN_METHODS == tuple(GEN_REGISTRY)
    assert gen.K_METHODS == {m.name for m in entries if m.uses_k}
    assert gen.PER_CLASS_METHODS == tuple(m.name for m in entries if m.kind != "joint")
    assert gen.SHARED_ACROSS_K == {
        m.name for m in entries if m.prepare is not None or m.shares_work_of is not None
    }
    assert gen.PAPER_SEQUENTIAL_DRAWS == {m.name for m in entries if m.paper_sequential}
    # the IMPRINT paper's GEN methods, in the order its tables list them
    assert gen.GEN_METHODS == (
        "all",
        "random",
        "mean",
        "kmeans",
        "kmedoids",
        "kmedoids_alternate",
        "covmax",
        "fps",
        "ls",
        "kls",
    )


@pytest.mark.parametrize("name", sorted(gen.SHARED_ACROSS_K))
def test_every_method_with_shared_work_finds_it_in_the_cache(name):
    """What a method's entry says it shares across k is in the cache after prepare, for the
    method whose work it reads."""
    method = GEN_REGISTRY[name]
    shared = GEN_REGISTRY[method.shared_work]
    assert shared.prepare is not None
    x, y = blobs()
    cache = GenCache(k_values=(2, 3))
    seconds = cache.prepare(x, y, name, random_state=0)
    assert set(seconds) == {2, 3}
    assert cache.kmeans or any(key[0] == shared.name for key in cache.selected)


def test_the_classifiers_extension_without_embeddings_is_the_entrys():
    """mean and all extend a class from its proxies alone; the others imprint it again."""
    x, y = blobs()
    for name, method in GEN_REGISTRY.items():
        classifier = ImprintingClassifier(gen=name, k=2, device="cpu", keep_embeddings=False)
        classifier.fit(x, y)
        more = x[y == 1][:3] + 0.5
        if method.extend is None:
            with pytest.raises(ValueError, match="keep_embeddings|solves for all classes"):
                classifier.partial_fit(more, np.ones(3, dtype=int))
        else:
            classifier.partial_fit(more, np.ones(3, dtype=int))
            again = ImprintingClassifier(gen=name, k=2, device="cpu").fit(
                np.concatenate([x, more]), np.concatenate([y, np.ones(3, dtype=int)])
            )
            np.testing.assert_allclose(
                np.sort(classifier.proxies_, axis=0), np.sort(again.proxies_, axis=0)
            )
