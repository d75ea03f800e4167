"""Qi et al.'s base network and experiments in imprint.lowshot: the embedding layer, the method
registry and its seeds, the nearest-neighbour classifier, the transfer setting (no base
classes), RMSProp with step decay, and their config checks."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from imprint.config import ConfigError, check_config, validate_config
from imprint.lowshot import (
    METHODS,
    LowShotData,
    LowShotOptions,
    _SeedRun,
    embedding_layer,
    imprinted_weights,
    novel_examples,
    optimizer_and_schedule,
    run_seed,
)
from imprint.norm import l2_normalize
from tests.conftest import SCHEMA, tiny_config
from tests.test_lowshot import FAST, full_scope_data, head_data

CPU = torch.device("cpu")


def test_imprinted_weights_are_the_normalised_mean_of_the_layers_normalised_outputs():
    options = LowShotOptions(scope="head", methods=("imprint",), embedding_dims=(4,), **FAST)
    data = head_data()
    run = _SeedRun(data, options, seed=0, device=CPU, embedding_dim=4)
    layer = run.network
    assert isinstance(layer, torch.nn.Linear) and (layer.in_features, layer.out_features) == (8, 4)
    # base training trained the layer: it is not the layer the seed initialised
    initial = embedding_layer(8, 4, torch.Generator().manual_seed(0))
    assert not torch.equal(layer.weight, initial.weight)
    assert run.base_head.weight.shape == (3, 4)
    index = novel_examples(data.train_labels, data.novel_classes, [5], seed=0)[5]
    with torch.no_grad():
        outputs = layer(torch.as_tensor(data.train_embeddings[index])).numpy()
    torch.testing.assert_close(run.features.train(layer, index), torch.as_tensor(outputs))
    weights, proxy_class = imprinted_weights(outputs, data.train_labels[index] - 3, "mean", 1, 0)
    for novel in range(3):
        own = l2_normalize(outputs[data.train_labels[index] - 3 == novel].astype(np.float64))
        mean = own.mean(0)
        np.testing.assert_allclose(weights[novel], mean / np.linalg.norm(mean), rtol=1e-6)
    assert proxy_class.tolist() == [0, 1, 2]


def test_an_embedding_layer_runs_every_method_and_a_list_gives_one_base_network_per_dimension():
    methods = tuple(m for m in METHODS if m != "imprint_aug")  # needs images
    options = LowShotOptions(scope="head", methods=methods, embedding_dims=(2, 6), **FAST)
    rows = pd.DataFrame(run_seed(head_data(), options, seed=0))
    assert sorted(rows["embedding_dim"].unique()) == [2, 6]
    per_dim = rows.groupby(["embedding_dim", "method"]).size()
    for dim in (2, 6):
        assert per_dim[(dim, "all_class_joint")] == 2 * 4  # n = 1, 5; epochs 0..3
        assert per_dim[(dim, "nearest_neighbour")] == 2
    imprint = rows[(rows["method"] == "imprint") & (rows["embedding_dim"] == 6)]
    assert (imprint["novel_accuracy"] > 0.6).all()  # separable clusters through the layer
    # the layer of D = 6 does not depend on the run of D = 2 before it
    alone = LowShotOptions(scope="head", methods=methods, embedding_dims=(6,), **FAST)
    again = pd.DataFrame(run_seed(head_data(), alone, seed=0))
    pd.testing.assert_frame_equal(
        rows[rows["embedding_dim"] == 6].reset_index(drop=True), again.reset_index(drop=True)
    )


def test_full_scope_with_an_embedding_layer_trains_a_copy_of_the_network_behind_it():
    data = full_scope_data()
    data.base_head = None  # base training trains network + layer + classifier
    before = copy.deepcopy(data.network.state_dict())
    options = LowShotOptions(
        scope="full",
        n_shot=(2,),
        epochs=1,
        joint_epochs=1,
        base_epochs=2,
        batch_size=4,
        copies=2,
        embedding_dims=(5,),
        methods=tuple(METHODS),
    )
    rows = pd.DataFrame(run_seed(data, options, seed=0))
    assert set(rows["method"]) == set(METHODS)
    assert (rows["embedding_dim"] == 5).all()
    after = data.network.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert rows.equals(pd.DataFrame(run_seed(data, options, seed=0)))


def test_a_methods_rows_depend_on_its_name_not_on_which_methods_run_or_their_order(monkeypatch):
    import imprint.lowshot_methods

    every = LowShotOptions(scope="head", methods=("rand_noft", "imprint", "rand_ft"), **FAST)
    alone = LowShotOptions(scope="head", methods=("rand_ft",), **FAST)

    def rows_of(options, method):
        return [row for row in run_seed(head_data(), options, 0) if row["method"] == method]

    reference = rows_of(every, "rand_ft")
    assert rows_of(alone, "rand_ft") == reference
    reordered = dict(reversed(list(METHODS.items())))
    monkeypatch.setattr(imprint.lowshot_methods, "METHODS", reordered)
    assert rows_of(every, "rand_ft") == reference
    keys = [method.seed_key for method in METHODS.values()]
    assert len(set(keys)) == len(keys)  # no two methods share a generator


def test_nearest_neighbour_keeps_every_mode_of_a_class_where_its_mean_loses_one():
    # 2-d embeddings at angles: novel class A has examples at 0 and 90 degrees, B at 50;
    # imprinting puts A's weight at 45 degrees, nearer to B's than a test point at 90 is
    def at(degrees):
        return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]

    train = np.array([at(0), at(90), at(49), at(51)], dtype=np.float32)
    test = np.array([at(0), at(90), at(50)], dtype=np.float32)
    data = LowShotData(
        base_classes=[],  # Qi et al.'s transfer setting: every class is novel
        novel_classes=[0, 1],
        train_labels=np.array([0, 0, 1, 1]),
        test_labels=np.array([0, 0, 1]),
        train_embeddings=train,
        test_embeddings=test,
    )
    options = LowShotOptions(
        scope="head", n_shot=(1, 2), methods=("imprint", "nearest_neighbour"), batch_size=2
    )
    rows = pd.DataFrame(run_seed(data, options, seed=0)).set_index(["n_shot", "method"])
    assert rows.loc[(2, "imprint"), "novel_accuracy"] == pytest.approx(2 / 3)
    assert rows.loc[(2, "nearest_neighbour"), "novel_accuracy"] == 1.0
    # one example per class: the stored example is the imprinted weight
    assert (
        rows.loc[(1, "imprint"), "novel_accuracy"]
        == rows.loc[(1, "nearest_neighbour"), "novel_accuracy"]
    )
    # without base classes, the novel classes are all the classes
    assert (rows["novel_accuracy"] == rows["all_accuracy"]).all()


def test_rmsprop_with_step_decay_lowers_every_groups_rate_by_the_factor_every_k_epochs():
    weights = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    options = LowShotOptions(
        optimizer="rmsprop",
        learning_rate=1e-4,
        momentum=0.9,
        rmsprop_alpha=0.9,
        rmsprop_eps=1.0,
        lr_decay_factor=0.94,
        lr_decay_epochs=4,
    )
    groups = [{"params": [weights[0]], "lr": 1e-4}, {"params": [weights[1]], "lr": 1e-3}]
    optimiser, schedule = optimizer_and_schedule(groups, options)
    assert isinstance(optimiser, torch.optim.RMSprop)
    assert optimiser.defaults["alpha"] == 0.9 and optimiser.defaults["eps"] == 1.0
    assert optimiser.defaults["momentum"] == 0.9
    rates = []
    for _ in range(10):  # the rates each epoch trains at, then the epoch's end
        rates.append([group["lr"] for group in optimiser.param_groups])
        optimiser.step()
        schedule.step()
    by_hand = [[1e-4 * 0.94 ** (epoch // 4), 1e-3 * 0.94 ** (epoch // 4)] for epoch in range(10)]
    np.testing.assert_allclose(rates, by_hand)
    constant, none = optimizer_and_schedule(groups, LowShotOptions())
    assert isinstance(constant, torch.optim.SGD) and none is None


def qi_config(**section):
    config = tiny_config()
    config["lowshot"] = {
        "tasks": {
            "digits": {
                "models": ["pixels"],
                "dataset": "digits",
                "base_classes": {"first": 5},
                "novel_classes": {"last": 5},
                "n_shot": [1, 2],
            }
        },
        "embedding_dim": 8,
        **section,
    }
    return config


def checked(config):
    validate_config(config, SCHEMA)
    check_config(config)
    return config


def test_qis_recipe_validates_and_reaches_the_options():
    from imprint.lowshot import embedding_dims

    config = checked(
        qi_config(
            optimizer="rmsprop",
            lr_decay={"factor": 0.94, "every_epochs": 4},
            embedding_dim=[8, 16],
            methods=["imprint", "nearest_neighbour", "all_class_joint"],
        )
    )
    section = config["lowshot"]
    options = LowShotOptions.from_config(section, "head", [1, 2])
    assert (options.optimizer, options.lr_decay_factor, options.lr_decay_epochs) == (
        "rmsprop",
        0.94,
        4,
    )
    assert (options.rmsprop_alpha, options.rmsprop_eps) == (0.9, 1.0)
    assert options.embedding_dims == embedding_dims(section) == (8, 16)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c["lowshot"].update(embedding_dim=0), "'lowshot.embedding_dim'"),
        (lambda c: c["lowshot"].update(embedding_dim=[8, -1]), r"'lowshot.embedding_dim\[1\]'"),
        (lambda c: c["lowshot"].update(optimizer="adam"), "'lowshot.optimizer'"),
        (
            lambda c: c["lowshot"].update(lr_decay={"factor": 1.5}),
            "'lowshot.lr_decay.factor'",
        ),
        (
            lambda c: c["lowshot"]["tasks"]["digits"].update(models=["cnn"]),
            "'lowshot.embedding_dim': model 'cnn' is a base_cnn, whose network has its own",
        ),
        (
            lambda c: c["lowshot"]["tasks"]["digits"].update(novel_classes={"last": 6}),
            r"'lowshot.tasks.digits.novel_classes': \[4\] are also base classes",
        ),
        (
            lambda c: c["lowshot"]["tasks"]["digits"].update(base_classes={"first": 11}),
            r"'lowshot.tasks.digits.base_classes': \{first: 11\}: the dataset has 10 classes",
        ),
        (
            lambda c: c["lowshot"]["tasks"]["digits"].update(
                paper={"source": "x", "n_shot": [1, 2], "novel_accuracy": {"imprint": [1.0]}}
            ),
            "'lowshot.tasks.digits.paper.novel_accuracy.imprint': 1 values for the 2 n",
        ),
    ],
)
def test_bad_qi_settings_are_refused_before_any_job_naming_the_key(edit, message):
    config = qi_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        checked(config)


def test_all_class_joint_in_full_scope_needs_a_base_cnn_or_an_embedding_layer():
    config = qi_config(scope="full", methods=["all_class_joint"])
    config["models"]["net"] = {"source": "torchvision", "name": "resnet18", "weights": None}
    config["lowshot"]["tasks"]["digits"]["models"] = ["net"]
    checked(config)  # with the layer: AllClassJoint trains a fresh layer on the pretrained FM
    del config["lowshot"]["embedding_dim"]
    with pytest.raises(ConfigError, match="'lowshot.methods': all_class_joint with 'full' scope"):
        checked(config)


def test_the_summary_sets_the_papers_accuracies_beside_this_runs():
    from imprint.stats import lowshot_summary

    rows = pd.DataFrame(
        [
            dict(model="m", task="cub", seed=s, scope="head", init="mean", embedding_dim=64,
                 n_shot=n, method=method, epoch=pd.NA, novel_accuracy=0.2, all_accuracy=0.4)
            for s in (0, 1)
            for n in (1, 3)
            for method in ("imprint", "nearest_neighbour")
        ]
    ).astype({"epoch": "Int64", "embedding_dim": "Int64"})  # fmt: skip
    paper = {
        "cub": {
            "source": "Qi et al. 2018, Tables 1-2",
            "n_shot": [1, 2, 5],
            "novel_accuracy": {"imprint": [21.26, 28.69, 39.52]},
            "all_accuracy": {"imprint": [44.75, None, 52.95]},
        }
    }
    summary = lowshot_summary(rows, paper).set_index(["method", "n_shot"])
    assert summary.loc[("imprint", 1), "paper_novel_accuracy"] == pytest.approx(0.2126)
    assert summary.loc[("imprint", 1), "paper_all_accuracy"] == pytest.approx(0.4475)
    assert np.isnan(summary.loc[("imprint", 3), "paper_novel_accuracy"])  # n = 3 not published
    assert np.isnan(summary.loc[("nearest_neighbour", 1), "paper_novel_accuracy"])
    assert (summary["embedding_dim"] == 64).all()
    assert "paper_novel_accuracy" not in lowshot_summary(rows)  # nothing published, no column


def test_every_training_run_decays_its_rates_once_per_epoch(monkeypatch):
    import imprint.lowshot

    schedules = []

    def recorded(groups, options):
        optimiser, schedule = optimizer_and_schedule(groups, options)
        schedules.append(schedule)
        return optimiser, schedule

    monkeypatch.setattr(imprint.lowshot, "optimizer_and_schedule", recorded)
    options = LowShotOptions(
        scope="head",
        methods=("imprint_ft",),
        embedding_dims=(4,),
        lr_decay_factor=0.5,
        lr_decay_epochs=2,
        **{**FAST, "n_shot": (1,)},
    )
    run_seed(head_data(), options, seed=0)
    base, fine_tune = schedules  # base training (5 epochs), then imprint_ft (3)
    assert (base.last_epoch, fine_tune.last_epoch) == (5, 3)
    assert fine_tune.get_last_lr()[0] == pytest.approx(options.learning_rate * 0.5)
