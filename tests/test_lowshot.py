"""Qi et al.'s low-shot learning (imprint.lowshot): the cosine head, imprinting into it,
oversampling, augmentation, the methods on synthetic data and the config checks."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from imprint.config import ConfigError, check_config, lowshot_runs, validate_config
from imprint.lowshot import (
    COLUMNS,
    DEFAULT_METHODS,
    LOWSHOT_METHODS,
    LowShotData,
    LowShotOptions,
    _SeedRun,
    accuracies,
    augment,
    balanced_order,
    imprinted_weights,
    novel_examples,
    results_table,
    run_seed,
)
from imprint.models import cosine_classifier, small_cnn
from tests.conftest import SCHEMA, tiny_config


def test_the_cosine_head_scores_scale_times_the_cosine():
    weights = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    head = cosine_classifier(weights, torch.arange(2), 2, scale=3.0)
    x = torch.tensor([[0.0, 5.0], [4.0, 0.0]])
    expected = 3.0 * torch.tensor([[0.0, 2**-0.5], [1.0, 2**-0.5]])
    torch.testing.assert_close(head(x), expected)
    assert head.scale.requires_grad  # the scale is learnt


def test_a_class_with_several_proxies_scores_its_best_one():
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    head = cosine_classifier(weights, torch.tensor([0, 1, 1]), 2, scale=1.0)
    logits = head(torch.tensor([[-1.0, 0.1], [1.0, 0.0]]))
    cos = torch.nn.functional.cosine_similarity
    x = torch.tensor([-1.0, 0.1])
    scores = logits.detach()
    assert float(scores[0, 1]) == pytest.approx(float(cos(x, torch.tensor([-1.0, 0.0]), dim=0)))
    assert float(scores[1, 1]) == pytest.approx(0.0) and float(scores[1, 0]) == pytest.approx(1.0)
    logits.sum().backward()  # max aggregation is differentiable: multi-proxy fine-tuning
    assert head.blocks[0].grad is not None


def test_imprinting_appends_the_normalised_mean_of_normalised_embeddings():
    base = cosine_classifier(torch.eye(3)[:2], torch.arange(2), 2, scale=5.0)
    embeddings = np.array([[3.0, 0.0, 4.0], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    labels = np.array([0, 0, 1])
    weights, proxy_class = imprinted_weights(embeddings, labels, "mean", 1, seed=0)
    by_hand = (np.array([0.6, 0.0, 0.8]) + np.array([0.0, 0.0, 1.0])) / 2
    np.testing.assert_allclose(weights[0], by_hand / np.linalg.norm(by_hand))
    np.testing.assert_allclose(weights[1], np.array([1.0, 1.0, 0.0]) / 2**0.5)
    grown = base.extended(torch.as_tensor(weights, dtype=torch.float32), proxy_class, 2)
    assert grown.n_classes == 4 and len(grown.blocks) == 2
    torch.testing.assert_close(grown.weight[:2], torch.eye(3)[:2])  # the base weights are kept
    assert grown.proxy_class.tolist() == [0, 1, 2, 3]
    assert float(grown.scale.detach()) == 5.0
    predicted = grown(torch.tensor([[0.1, 0.0, 1.0]])).argmax(1)
    assert predicted.item() == 2  # nearer the imprinted class than the base class along z


def test_kmeans_initialisation_gives_k_proxies_per_novel_class():
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(12, 4))
    labels = np.repeat([0, 1], 6)
    weights, proxy_class = imprinted_weights(embeddings, labels, "kmeans", 3, seed=0)
    assert weights.shape == (6, 4) and proxy_class.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0)


@pytest.mark.parametrize("batch_size", [10, 20, 50])
def test_every_mini_batch_holds_every_class_equally_often(batch_size):
    # 5 base classes of 30-40 samples, 5 novel classes of 2 examples: the novel ones repeat
    sample_class = np.concatenate(
        [np.repeat(np.arange(5), [30, 35, 40, 31, 33]), np.repeat(np.arange(5, 10), 2)]
    )
    order = balanced_order(sample_class, 10, np.random.default_rng(0))
    assert len(order) == 40 * 10  # every class as often as the largest has samples
    for start in range(0, len(order), batch_size):
        counts = np.bincount(sample_class[order[start : start + batch_size]], minlength=10)
        assert (counts == batch_size // 10).all()
    # the largest class is seen once per epoch; a novel class's examples each 20 times
    assert sorted(order[sample_class[order] == 2]) == list(np.flatnonzero(sample_class == 2))
    novel = order[sample_class[order] == 7]
    assert sorted(np.unique(novel, return_counts=True)[1]) == [20, 20]


def test_balanced_order_refuses_a_class_without_samples():
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        balanced_order(np.array([0, 1, 1]), 3, np.random.default_rng(0))


def test_augmentation_shifts_within_range_and_flips_only_when_asked():
    images = torch.zeros(64, 1, 5, 5)
    images[:, :, 2, 2] = 1.0  # one bright centre pixel
    generator = torch.Generator().manual_seed(0)
    shifted = augment(images, shift=1, flip=False, generator=generator)
    assert shifted.shape == images.shape
    rows, cols = np.nonzero(shifted[:, 0].sum(0).numpy())
    positions = {(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}
    assert positions == {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}  # all 9 offsets drawn
    assert torch.equal(augment(images, 0, False, generator), images)
    asymmetric = torch.arange(4.0).reshape(1, 1, 1, 4).repeat(32, 1, 1, 1)
    flipped = augment(asymmetric, 0, True, generator)
    was_flipped = flipped[:, 0, 0, 0] == 3
    assert 0 < int(was_flipped.sum()) < 32
    assert torch.equal(flipped[was_flipped], asymmetric[was_flipped].flip(-1))


def test_novel_examples_are_nested_and_seeded():
    labels = np.repeat(np.arange(4), 10)
    sets = novel_examples(labels, [2, 3], [1, 2, 5], seed=3)
    assert [len(sets[n]) for n in (1, 2, 5)] == [2, 4, 10]
    assert set(sets[1]) <= set(sets[2]) <= set(sets[5])
    assert (np.bincount(labels[sets[5]], minlength=4) == [0, 0, 5, 5]).all()
    again = novel_examples(labels, [2, 3], [1, 2, 5], seed=3)
    assert all(np.array_equal(sets[n], again[n]) for n in sets)
    other = novel_examples(labels, [2, 3], [5], seed=4)
    assert not np.array_equal(sets[5], other[5])
    with pytest.raises(ValueError, match="n = 11 exceeds the 10 train examples of class 2"):
        novel_examples(labels, [2, 3], [11], seed=0)


def test_accuracies_count_novel_examples_among_all_classes():
    targets = np.array([0, 1, 2, 3, 3])
    predicted = np.array([0, 0, 2, 1, 3])
    assert accuracies(predicted, targets, n_base=2) == (pytest.approx(2 / 3), pytest.approx(3 / 5))


def clusters(seed: int = 0, per_class: int = 40, n_classes: int = 6, dim: int = 8):
    """Well-separated Gaussian classes: embeddings and labels of a train and a test split."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 3
    labels = np.repeat(np.arange(n_classes), per_class)
    train = centres[labels] + rng.normal(size=(len(labels), dim))
    test = centres[labels] + rng.normal(size=(len(labels), dim))
    return train.astype(np.float32), test.astype(np.float32), labels


def head_data():
    train, test, labels = clusters()
    return LowShotData(
        base_classes=[0, 1, 2],
        novel_classes=[3, 4, 5],
        train_labels=labels,
        test_labels=labels,
        train_embeddings=train,
        test_embeddings=test,
    )


FAST = dict(n_shot=(1, 5), epochs=3, joint_epochs=3, base_epochs=5, batch_size=12)


def test_head_scope_runs_every_method_and_imprinting_beats_random_weights():
    methods = tuple(m for m in LOWSHOT_METHODS if m != "imprint_aug")  # needs images
    options = LowShotOptions(scope="head", methods=methods, **FAST)
    rows = pd.DataFrame(run_seed(head_data(), options, seed=0))
    per_n = rows.groupby(["n_shot", "method"]).size()
    for n in (1, 5):
        assert per_n[(n, "imprint")] == 1 and per_n[(n, "rand_noft")] == 1
        assert per_n[(n, "rand_ft")] == per_n[(n, "imprint_ft")] == 4  # epochs 0..3
    untrained = rows[rows["epoch"].isna()].set_index(["n_shot", "method"])
    for n in (1, 5):
        imprint = untrained.loc[(n, "imprint"), "novel_accuracy"]
        assert imprint > 0.6 and imprint > untrained.loc[(n, "rand_noft"), "novel_accuracy"] + 0.4
    first = rows[(rows["method"] == "imprint_ft") & (rows["epoch"] == 0)]
    imprinted = untrained.xs("imprint", level="method")
    np.testing.assert_allclose(first["novel_accuracy"], imprinted["novel_accuracy"])
    assert rows[["novel_accuracy", "all_accuracy"]].stack().between(0, 1).all()


def test_the_same_seed_gives_the_same_rows_and_another_seed_others():
    options = LowShotOptions(scope="head", methods=("imprint", "rand_ft"), **FAST)
    first = run_seed(head_data(), options, seed=1)
    assert first == run_seed(head_data(), options, seed=1)
    assert first != run_seed(head_data(), options, seed=2)


def test_augmented_imprinting_averages_normalised_embeddings_of_the_copies():
    train, _, labels = clusters(per_class=4)
    images = torch.as_tensor(train).reshape(len(train), 1, 2, 4)
    dataset = [(image, int(label)) for image, label in zip(images, labels, strict=True)]
    data = LowShotData(
        base_classes=[0, 1, 2],
        novel_classes=[3, 4, 5],
        train_labels=labels,
        test_labels=labels,
        train_embeddings=train,
        test_embeddings=train,
        network=torch.nn.Flatten(),
        train_images=dataset,
    )
    options = LowShotOptions(scope="head", methods=("imprint_aug",), copies=3, **FAST)
    run = _SeedRun(data, options, seed=0, device=torch.device("cpu"))
    index = np.array([12, 13, 20])
    averaged = run.features.augmented(run.network, index, torch.Generator().manual_seed(5))
    replay = torch.Generator().manual_seed(5)
    copies = [
        torch.nn.functional.normalize(augment(images[index], 1, False, replay).flatten(1), dim=1)
        for _ in range(3)
    ]
    torch.testing.assert_close(averaged, sum(copies) / 3)
    without = LowShotOptions(scope="head", methods=("imprint_aug",), shift=0, **FAST)
    plain = _SeedRun(data, without, 0, torch.device("cpu")).features.augmented(
        None, index, torch.Generator()
    )
    torch.testing.assert_close(plain, torch.nn.functional.normalize(images[index].flatten(1)))


def tiny_images(seed: int = 0):
    """4x4 one-channel images of 4 classes: a bright quadrant per class, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 12)
    images = rng.uniform(0, 0.3, size=(len(labels), 1, 4, 4)).astype(np.float32)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        images[i, 0, 2 * r : 2 * r + 2, 2 * c : 2 * c + 2] += 0.7
    return [(torch.as_tensor(x), int(y)) for x, y in zip(images, labels, strict=True)], labels


def full_scope_data() -> LowShotData:
    """:func:`tiny_images` with a freshly seeded small CNN as the base network."""
    images, labels = tiny_images()
    torch.manual_seed(0)
    trained = small_cnn(1, 6, 2)
    return LowShotData(
        base_classes=[0, 1],
        novel_classes=[2, 3],
        train_labels=labels,
        test_labels=labels,
        network=trained[0],
        base_head=trained[1],
        train_images=images,
        test_images=images,
        fresh_network=lambda: small_cnn(1, 6, 1)[0],
    )


def test_full_scope_fine_tunes_the_network_and_trains_all_class_joint_from_scratch():
    data = full_scope_data()
    before = copy.deepcopy(data.network.state_dict())
    options = LowShotOptions(
        scope="full",
        n_shot=(2,),
        methods=LOWSHOT_METHODS,
        epochs=2,
        joint_epochs=2,
        batch_size=4,
        copies=2,
    )
    rows = pd.DataFrame(run_seed(data, options, seed=0))
    assert set(rows["method"]) == set(LOWSHOT_METHODS)
    assert sorted(rows.loc[rows["method"] == "all_class_joint", "epoch"]) == [0, 1, 2]
    # fine-tuning trains copies: the base network itself is left as it was
    after = data.network.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert rows.equals(pd.DataFrame(run_seed(data, options, seed=0)))


def test_the_results_table_has_the_documented_columns_and_empty_epochs():
    rows = [
        {
            "n_shot": 1,
            "method": "imprint",
            "epoch": None,
            "novel_accuracy": 0.5,
            "all_accuracy": 0.6,
        },
        {"n_shot": 1, "method": "rand_ft", "epoch": 0, "novel_accuracy": 0.1, "all_accuracy": 0.4},
    ]
    table = results_table(rows, model="m", task="t", seed=0, scope="head", init="mean")
    assert list(table.columns) == list(COLUMNS)
    assert table["epoch"].isna().tolist() == [True, False]
    assert table.to_csv(index=False).splitlines()[1].split(",")[COLUMNS.index("epoch")] == ""


# -- configuration -----------------------------------------------------------------------------


def lowshot_config(**section):
    config = tiny_config()
    config["lowshot"] = {
        "tasks": {
            "digits": {"models": ["cnn"], "novel_classes": [5, 6, 7, 8, 9], "n_shot": [1, 2]}
        },
        **section,
    }
    return config


def checked(config, train_labels=None):
    validate_config(config, SCHEMA)
    check_config(config, train_labels=train_labels)
    return config


def test_a_lowshot_section_validates_with_qis_defaults():
    config = checked(lowshot_config())
    section = config["lowshot"]
    assert section["methods"] == list(DEFAULT_METHODS)  # Tables 1-2's; nearest_neighbour if asked
    assert section["new_weight_multiplier"] == 10 and section["scope"] == "auto"
    assert section["init"] == {"gen": "mean", "k": 1}
    assert lowshot_runs(config) == [("cnn", "digits", 0), ("cnn", "digits", 1)]
    config["lowshot"]["seeds"] = [4]
    assert lowshot_runs(config) == [("cnn", "digits", 4)]


def set_task(key, value):
    def edit(config):
        config["lowshot"]["tasks"]["digits"][key] = value

    return edit


def set_section(key, value):
    def edit(config):
        config["lowshot"][key] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            set_task("novel_classes", [4, 5]),
            r"'lowshot.tasks.digits.novel_classes': \[4\] are also base classes",
        ),
        (set_task("novel_classes", [5, 12]), "'lowshot.tasks.digits.novel_classes'"),
        (set_task("models", ["vit"]), "'lowshot.tasks.digits.models': 'vit' is not defined"),
        (
            set_task("base_classes", [0, 1]),
            "'lowshot.tasks.digits.base_classes': model 'cnn' was trained on",
        ),
        (set_section("methods", ["imprint", "finetune"]), r"'lowshot.methods\[1\]'"),
        (set_section("epochs", 0), "'lowshot.epochs'"),
        (set_section("learning_rate", 0), "'lowshot.learning_rate'"),
        # fewer images per batch than classes: balanced over consecutive batches (iNaturalist's
        # 5,089 classes could not be held in one)
        (set_section("batch_size", 8), None),
        (set_section("scope", "full"), None),  # fine for the CNN, refused for pixels below
    ],
)
def test_bad_lowshot_settings_are_refused_naming_the_key(edit, message):
    config = lowshot_config()
    edit(config)
    if message is None:
        checked(config)
        return
    with pytest.raises(ConfigError, match=message):
        checked(config)


def test_models_without_a_network_or_base_classes_are_refused_for_what_they_cannot_do():
    config = lowshot_config(scope="full")
    config["lowshot"]["tasks"]["digits"].update(models=["pixels"], dataset="digits")
    with pytest.raises(ConfigError, match="'lowshot.tasks.digits.base_classes': needed"):
        checked(copy.deepcopy(config))
    config["lowshot"]["tasks"]["digits"]["base_classes"] = [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="'lowshot.scope': 'full' fine-tuning needs a network"):
        checked(copy.deepcopy(config))
    config["lowshot"]["scope"] = "head"
    checked(config)


def test_n_larger_than_a_novel_class_is_refused_before_any_job():
    config = lowshot_config()
    config["lowshot"]["tasks"]["digits"]["n_shot"] = [1, 50]
    labels = np.repeat(np.arange(10), [90] * 9 + [40])
    with pytest.raises(
        ConfigError,
        match="'lowshot.tasks.digits.n_shot': 50 exceeds the 40 train examples of novel class 9",
    ):
        checked(config, train_labels=lambda dataset: labels)


def test_images_read_item_by_item_give_the_rows_of_images_held_in_memory(monkeypatch):
    import imprint.lowshot

    options = LowShotOptions(
        scope="full", n_shot=(2,), methods=("imprint_ft",), epochs=2, batch_size=4
    )
    in_memory = run_seed(full_scope_data(), options, seed=0)
    monkeypatch.setattr(imprint.lowshot, "IN_MEMORY_BYTES", 0)  # the DataLoader path
    assert run_seed(full_scope_data(), options, seed=0) == in_memory
