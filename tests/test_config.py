import copy
import re

import pytest
import yaml

from imprint.config import (
    ConfigError,
    check_config,
    check_devices,
    classifier_config_sha256,
    validate_config,
)
from imprint.datasets import train_labels_if_known
from tests.conftest import REPO, SCHEMA, tiny_config


def validated(config):
    validate_config(config, SCHEMA)
    check_config(
        config,
        train_labels=lambda name: train_labels_if_known(
            config["datasets"][name], "/nonexistent/manifest.json"
        ),
    )
    return config


def test_the_shipped_configs_are_valid():
    validated(yaml.safe_load((REPO / "config.yaml").read_text()))
    validated(tiny_config())


def test_defaults_are_filled_in():
    config = validated(tiny_config())
    assert config["embedding"] == {
        "batch_size": "auto",
        "device": "auto",
        "num_workers": "auto",
        "gpus": 0,
    }
    assert config["imprinting"]["ls_lambda"] == 1e-4
    assert config["models"]["cnn"]["learning_rate"] == 0.001
    assert config["statistics"]["alpha"] == 0.05


def setter(path, value):
    def apply(config):
        *parents, last = path
        target = config
        for key in parents:
            target = target[key]
        target[last] = value

    return apply


def deleter(*path):
    def apply(config):
        *parents, last = path
        target = config
        for key in parents:
            target = target[key]
        del target[last]

    return apply


BAD_CONFIGS = {
    "unknown top-level key": (setter(["colour"], "red"), "'colour': unknown key"),
    "unknown dataset option": (
        setter(["datasets", "digits", "test_fraction"], 0.3),
        "'datasets.digits.test_fraction': unknown key",
    ),
    "unknown dataset source": (
        setter(["datasets", "digits", "source"], "mnist_csv"),
        "'datasets.digits.source'",
    ),
    "unknown model source": (
        setter(["models", "pixels", "source"], "resnet"),
        "'models.pixels.source'",
    ),
    "unknown GEN": (
        setter(["imprinting", "gen"], ["mean", "kmean"]),
        "'imprinting.gen[1]': 'kmean' is not one of",
    ),
    "unknown NORM": (setter(["imprinting", "norm_post"], ["l1"]), "'imprinting.norm_post[0]'"),
    "unknown AGG": (setter(["imprinting", "agg"], ["vote"]), "'imprinting.agg[0]'"),
    "k below 1": (setter(["imprinting", "k"], [0, 2]), "'imprinting.k[0]': 0 is less than"),
    "m below 1": (setter(["imprinting", "m"], [-1]), "'imprinting.m[0]'"),
    "k of the wrong type": (setter(["imprinting", "k"], ["five"]), "'imprinting.k[0]'"),
    "empty grid": (setter(["imprinting", "gen"], []), "'imprinting.gen'"),
    "missing grid key": (deleter("imprinting", "agg"), "'agg' is a required property"),
    "duplicate seeds": (setter(["seeds"], [0, 0]), "'seeds'"),
    "seeds not a list": (setter(["seeds"], 3), "'seeds': 3 is not of type 'array'"),
    "bad task name": (setter(["tasks", "a/b"], {"dataset": "digits"}), "'tasks'"),
    "task on undefined dataset": (
        setter(["tasks", "novel", "dataset"], "mnist"),
        "'tasks.novel.dataset': dataset 'mnist' is not defined",
    ),
    "class the dataset lacks": (
        setter(["tasks", "novel", "classes"], [5, 12]),
        "'tasks.novel.classes': classes [12] do not exist",
    ),
    "d in 1 needing too many classes": (
        setter(["tasks", "pairs", "n_labels"], 6),
        "'tasks.pairs.d_in_1': 6 labels of 2 classes",
    ),
    "one-label task": (setter(["tasks", "novel", "classes"], [5]), "at least two labels"),
    "n_shot zero": (setter(["tasks", "pairs", "n_shot"], 0), "'tasks.pairs.n_shot'"),
    "base class the dataset lacks": (
        setter(["models", "cnn", "base_classes"], [0, 10]),
        "'models.cnn.base_classes'",
    ),
    "comparison selecting nothing": (
        setter(["comparisons", "norm", "where"], {"gen": ["fps"], "agg": ["max"]}),
        "'comparisons.norm.where.gen': none of ['fps']",
    ),
    "comparison leaving a factor open": (
        setter(["comparisons", "norm", "where"], {"gen": ["mean"]}),
        "'comparisons.norm': factor 'agg' has 2 levels",
    ),
    "comparison with a reserved name": (
        setter(["comparisons", "summary"], {"factors": ["gen"]}),
        "'comparisons.summary'",
    ),
    "comparison named like the GEN time table": (
        setter(["comparisons", "gen_time"], {"factors": ["gen"]}),
        "'comparisons.gen_time'",
    ),
    "comparison with both factors and configurations": (
        setter(
            ["comparisons", "norm", "configurations"], {"a": {"gen": "mean"}, "b": {"gen": "ls"}}
        ),
        "'comparisons.norm': needs exactly one of the keys ['factors', 'configurations']",
    ),
    "comparison with neither factors nor configurations": (
        setter(["comparisons", "norm"], {"title": "x"}),
        "'comparisons.norm': needs exactly one of the keys ['factors', 'configurations']",
    ),
    "named configuration outside the grid": (
        setter(
            ["comparisons", "methods"],
            {
                "configurations": {
                    "a": {"gen": "fps", "agg": "max", "norm_post": "l2"},
                    "b": {"gen": "mean", "agg": "max", "norm_post": "l2"},
                }
            },
        ),
        "'comparisons.methods.configurations.a.gen': none of ['fps']",
    ),
    "named configuration leaving a factor open": (
        setter(
            ["comparisons", "methods"],
            {
                "configurations": {
                    "a": {"gen": "mean", "agg": "max"},
                    "b": {"gen": "mean", "agg": "max", "norm_post": "l2"},
                }
            },
        ),
        (
            "'comparisons.methods': factor 'norm_post' has 2 levels in the grid but configuration "
            "'a' neither"
        ),
    ),
    "a single named configuration": (
        setter(["comparisons", "methods"], {"configurations": {"a": {"gen": "mean"}}}),
        "'comparisons.methods.configurations'",
    ),
    "comparison over an unknown task": (
        setter(["comparisons", "norm", "tasks"], ["nope"]),
        "'comparisons.norm.tasks': ['nope'] are not defined",
    ),
    "unknown post-hoc test": (setter(["statistics"], {"posthoc": "tukey"}), "'statistics.posthoc'"),
    "unknown post-hoc test of one comparison": (
        setter(["comparisons", "norm", "posthoc"], "dunn"),
        "'comparisons.norm.posthoc'",
    ),
    "figure of an unknown model": (
        setter(["figures"], {"models": ["vit"]}),
        "'figures.models': ['vit'] are not defined",
    ),
    "lambda for an unknown model": (
        setter(["imprinting", "ls_lambda_per_model"], {"vit": 0.1}),
        "'imprinting.ls_lambda_per_model.vit'",
    ),
    "alpha out of range": (setter(["statistics"], {"alpha": 1.5}), "'statistics.alpha'"),
    "unknown torchvision model": (
        setter(["models", "tv"], {"source": "torchvision", "name": "resnet9000"}),
        "'models.tv.name': torchvision has no model 'resnet9000'",
    ),
    "unknown torchvision weights": (
        setter(
            ["models", "tv"],
            {"source": "torchvision", "name": "resnet18", "weights": "IMAGENET22K"},
        ),
        "'models.tv.weights': 'IMAGENET22K' is not one of",
    ),
    "unknown torchvision dataset": (
        setter(["datasets", "mnist"], {"source": "torchvision", "name": "MNIST-M"}),
        "'datasets.mnist.name'",
    ),
    "pooling an undefined dataset": (
        setter(["datasets", "combi"], {"source": "combine", "datasets": ["digits", "svhn"]}),
        "'datasets.combi.datasets': 'svhn' is not another configured dataset",
    ),
    "duplicate task seeds": (setter(["tasks", "novel", "seeds"], [1, 1]), "'tasks.novel.seeds'"),
    "n-shot larger than a class": (
        setter(["tasks", "novel", "n_shot"], 90),
        "'tasks.novel.n_shot': 90 exceeds the 87 train samples",
    ),
    "n-shot larger than a merged label": (
        setter(["tasks", "pairs", "n_shot"], 180),
        "'tasks.pairs.n_shot': 180 exceeds the",
    ),
    "class sample larger than the dataset": (
        setter(["tasks", "novel", "classes"], {"sample": 11, "seed": 0}),
        "'tasks.novel.classes': cannot sample 11 of 10 classes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configs_are_rejected_with_the_key_named(case):
    mutate, message = BAD_CONFIGS[case]
    config = copy.deepcopy(tiny_config())
    mutate(config)
    with pytest.raises(ConfigError) as error:
        validated(config)
    assert message in str(error.value)


@pytest.mark.parametrize("section", ["imprinting", "embedding"])
def test_cuda_on_a_machine_without_it_is_refused_before_any_job_naming_the_key(section):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tiny_config()
    config.setdefault(section, {})["device"] = "cuda"
    validated(config)  # the rest is fine: on a cluster the jobs run on other machines
    with pytest.raises(ConfigError, match=rf"'{section}.device': 'cuda', but this machine has no"):
        check_devices(config)


def test_the_imprinting_engine_defaults_to_float32_on_the_best_device():
    imprinting = validated(tiny_config())["imprinting"]
    assert imprinting["device"] == "auto" and imprinting["dtype"] == "float32"


def test_command_line_strings_become_the_numbers_the_schema_wants():
    """`--config seeds='[0,1]'` arrives from Snakemake as ['0', '1'] (YAML's BaseLoader)."""
    config = tiny_config()
    config["seeds"] = ["0", "1"]
    config["imprinting"].update(k=["1", "3"], ls_lambda="1e-3", device="cpu")
    config["models"]["cnn"]["embedding_dim"] = "16"
    config["lowshot"]["augmentation"] = {"copies": "2"}
    validate_config(config, SCHEMA)
    assert config["seeds"] == [0, 1] and config["imprinting"]["k"] == [1, 3]
    assert (
        config["imprinting"]["ls_lambda"] == 1e-3 and config["models"]["cnn"]["embedding_dim"] == 16
    )
    assert config["lowshot"]["augmentation"]["copies"] == 2
    assert config["imprinting"]["device"] == "cpu"  # a string where the schema wants one


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seeds", ["zero"], "config key 'seeds[0]': 'zero' is not of type 'integer'"),
        ("seeds", ["true"], "config key 'seeds[0]': 'true' is not of type 'integer'"),
    ],
)
def test_command_line_strings_that_are_not_the_wanted_type_are_still_refused(key, value, message):
    config = tiny_config()
    config[key] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(config, SCHEMA)


def test_an_exported_classifiers_config_hash_follows_its_values_only():
    config = tiny_config()
    validate_config(config, SCHEMA)
    first = classifier_config_sha256(config, "cnn", "novel")
    reordered = copy.deepcopy(config)
    reordered["imprinting"] = dict(reversed(list(config["imprinting"].items())))
    assert classifier_config_sha256(reordered, "cnn", "novel") == first  # by value
    other = copy.deepcopy(config)
    other["tasks"]["pairs"]["n_shot"] = 5  # another task
    other["models"]["pixels"] = {"source": "pixels"}
    assert classifier_config_sha256(other, "cnn", "novel") == first
    for edit in (
        lambda c: c["models"]["cnn"].update(epochs=3),
        lambda c: c["imprinting"].update(m=[1]),
        lambda c: c["selection"].update(folds=3),
        lambda c: c.update(seeds=[5, 1]),
    ):
        changed = copy.deepcopy(config)
        edit(changed)
        assert classifier_config_sha256(changed, "cnn", "novel") != first


def reversed_mappings(value, ordered=False):
    """``value`` with every mapping's keys in reverse order (lists keep theirs, and so do a
    comparison's ``configurations`` and each of them, whose order is part of their value)."""
    if isinstance(value, dict):
        keys = list(value) if ordered else reversed(list(value))
        return {
            key: reversed_mappings(value[key], ordered or key == "configurations") for key in keys
        }
    if isinstance(value, list):
        return [reversed_mappings(item) for item in value]
    return value


@pytest.mark.parametrize(
    "shipped", ["config.yaml", "configs/paper.yaml", "configs/modern.yaml", "configs/qi.yaml"]
)
def test_every_section_is_the_same_value_whatever_the_key_order_or_spelled_out_defaults(shipped):
    """Snakemake compares a job's params by repr, which follows a dict's key order: the same
    values must give the same repr in every section, with defaults left out or written out
    (in any order)."""
    written = yaml.safe_load((REPO / shipped).read_text())
    as_written = copy.deepcopy(written)
    validate_config(as_written, SCHEMA)
    spelled_out = reversed_mappings(copy.deepcopy(as_written))  # every default written out
    validate_config(spelled_out, SCHEMA)
    reordered = reversed_mappings(written)
    validate_config(reordered, SCHEMA)
    assert set(as_written) >= {"datasets", "models", "tasks", "imprinting", "embedding"}
    for section in as_written:
        assert repr(spelled_out[section]) == repr(as_written[section]), section
        assert repr(reordered[section]) == repr(as_written[section]), section


def test_a_comparisons_configurations_keep_their_order():
    config = tiny_config()
    config["comparisons"] = {
        "methods": {
            "configurations": {
                "Qi et al.": {"gen": "mean", "agg": "max"},
                "Janson et al.": {"gen": "mean", "agg": "mnn", "m": 1},
            }
        }
    }
    validate_config(config, SCHEMA)
    configurations = config["comparisons"]["methods"]["configurations"]
    assert list(configurations) == ["Qi et al.", "Janson et al."]  # not sorted: their order
    assert list(configurations["Janson et al."]) == ["gen", "agg", "m"]  # as the report lists it


def test_a_results_folder_belongs_to_the_config_files_that_first_wrote_there(tmp_path, monkeypatch):
    from imprint.config import check_results_owner, claim_results_root, finished_message

    monkeypatch.chdir(tmp_path)
    check_results_owner("results", [])  # a new folder: anyone's
    claim_results_root("results", [])
    assert (tmp_path / "results/config_files.json").read_text() == '["config.yaml"]\n'
    check_results_owner("results", [])
    check_results_owner("results", ["config.yaml"])  # the offline default named or not
    check_results_owner("results", [str(tmp_path / "config.yaml")])
    with pytest.raises(ConfigError, match=r"^config key 'results': results/ holds the results of"):
        check_results_owner("results", ["configs/mine.yaml"])
    claim_results_root("results", ["configs/mine.yaml"])  # never taken over silently
    assert (tmp_path / "results/config_files.json").read_text() == '["config.yaml"]\n'
    assert finished_message("results/x", ["configs/x.yaml"]).endswith(
        "snakemake --configfile configs/x.yaml --report results/x/report.html"
    )


def test_the_results_folder_is_normalised_and_must_not_be_blank():
    from imprint.config import results_root

    config = tiny_config() | {"results": "./out/paper/"}
    validate_config(config, SCHEMA)
    assert results_root(config) == "out/paper"
    with pytest.raises(ConfigError, match="config key 'results'"):
        validate_config(tiny_config() | {"results": " "}, SCHEMA)
    assert results_root(validated(tiny_config())) == "results"
