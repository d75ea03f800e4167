"""Every list kept in two places agrees: the schema's and the library's, the conda
environment's and pyproject's."""

import re

import pytest
import yaml

from imprint.agg import AGG_METHODS
from imprint.config import NAME_PATTERN
from imprint.datasets import DATASET_SOURCES, TorchvisionDataset
from imprint.devices import DEVICES, DTYPES
from imprint.gen import COMPAT_MODES, GEN_METHODS
from imprint.grid import FACTORS
from imprint.lowshot import (
    DEFAULT_METHODS,
    INIT_GENS,
    LOWSHOT_METHODS,
    OPTIMIZERS,
    SCOPES,
    LowShotOptions,
)
from imprint.models import CNN_HEADS, MODEL_SOURCES
from imprint.nc import NC1_VARIANTS
from imprint.norm import NORM_INF, NORM_POST, NORM_PRE
from imprint.selection import SELECTION_METHODS
from imprint.stats import POSTHOC_TESTS
from tests.conftest import REPO, SCHEMA

DEFS = yaml.safe_load(SCHEMA.read_text())["$defs"]
PROPERTIES = yaml.safe_load(SCHEMA.read_text())["properties"]


@pytest.mark.parametrize(
    "name,library",
    [
        ("gen", GEN_METHODS),
        ("norm_pre", NORM_PRE),
        ("norm_post", NORM_POST),
        ("norm_inf", NORM_INF),
        ("agg", AGG_METHODS),
        ("factor", FACTORS),
        ("posthoc", tuple(POSTHOC_TESTS)),
    ],
)
def test_the_schemas_factor_levels_are_the_librarys(name, library):
    assert DEFS[name]["enum"] == list(library)


@pytest.mark.parametrize(
    "section,key,library",
    [
        ("imprinting", "device", DEVICES),
        ("imprinting", "dtype", DTYPES),
        ("imprinting", "compat", COMPAT_MODES),
        ("embedding", "device", DEVICES),
        ("nc1", "variants", NC1_VARIANTS),
        ("lowshot", "methods", LOWSHOT_METHODS),
        ("lowshot", "scope", ("auto", *SCOPES)),
        ("lowshot", "optimizer", OPTIMIZERS),
        ("lowshot", "device", DEVICES),
        ("selection", "method", (*SELECTION_METHODS, "none")),
    ],
)
def test_the_schemas_engine_settings_are_the_librarys(section, key, library):
    setting = PROPERTIES[section]["properties"][key]
    assert setting.get("enum", setting.get("items", {}).get("enum")) == list(library)


def test_the_schemas_lowshot_defaults_and_choices_are_the_librarys():
    lowshot = PROPERTIES["lowshot"]["properties"]
    assert lowshot["methods"]["default"] == list(DEFAULT_METHODS)
    assert lowshot["init"]["properties"]["gen"]["enum"] == list(INIT_GENS)
    base_cnn = next(
        rule["then"]["properties"]
        for rule in PROPERTIES["models"]["allOf"][1]["additionalProperties"]["allOf"]
        if rule["if"]["properties"]["source"]["const"] == "base_cnn"
    )
    assert base_cnn["head"]["enum"] == list(CNN_HEADS)
    # the library's defaults (LowShotOptions) are the schema's
    defaults = LowShotOptions()
    for key in (
        "epochs",
        "joint_epochs",
        "base_epochs",
        "learning_rate",
        "new_weight_multiplier",
        "batch_size",
        "momentum",
        "weight_decay",
        "num_workers",
    ):
        assert getattr(defaults, key) == lowshot[key]["default"], key
    for key in ("shift", "flip", "copies"):
        assert getattr(defaults, key) == lowshot["augmentation"]["properties"][key]["default"]
    init = lowshot["init"]["properties"]
    assert (defaults.init_gen, defaults.init_k) == (init["gen"]["default"], init["k"]["default"])
    assert defaults.optimizer == lowshot["optimizer"]["default"]
    rmsprop, decay = lowshot["rmsprop"]["properties"], lowshot["lr_decay"]["properties"]
    assert (defaults.rmsprop_alpha, defaults.rmsprop_eps) == (
        rmsprop["alpha"]["default"],
        rmsprop["eps"]["default"],
    )
    assert (defaults.lr_decay_factor, defaults.lr_decay_epochs) == (
        decay["factor"]["default"],
        decay["every_epochs"]["default"],
    )
    assert DEFS["published_accuracies"]["propertyNames"]["enum"] == list(LOWSHOT_METHODS)
    task = lowshot["tasks"]["additionalProperties"]["properties"]
    assert list(defaults.n_shot) == task["n_shot"]["default"]


def test_the_schemas_name_pattern_is_the_librarys():
    assert DEFS["name"]["pattern"] == NAME_PATTERN


def _sources(section: str) -> tuple[list[str], list[str]]:
    """The section's `source` enum, and the sources that have an options block."""
    items = PROPERTIES[section]["allOf"][1]["additionalProperties"]
    blocks = [block["if"]["properties"]["source"]["const"] for block in items["allOf"]]
    return items["properties"]["source"]["enum"], blocks


@pytest.mark.parametrize(
    "section,registry", [("datasets", DATASET_SOURCES), ("models", MODEL_SOURCES)]
)
def test_every_registered_source_and_only_those_has_its_options_in_the_schema(section, registry):
    enum, blocks = _sources(section)
    assert enum == list(registry)
    assert sorted(blocks) == sorted(registry)


def test_the_schemas_torchvision_datasets_are_those_the_loader_knows():
    items = PROPERTIES["datasets"]["allOf"][1]["additionalProperties"]["allOf"]
    torchvision = next(
        block["then"]
        for block in items
        if block["if"]["properties"]["source"]["const"] == "torchvision"
    )
    assert torchvision["properties"]["name"]["enum"] == list(TorchvisionDataset.FILES)


# conda-forge's names of the packages that PyPI names otherwise
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
# needed by the Snakemake process, not by the jobs that run in the conda environment
MAIN_PROCESS_ONLY = {"snakemake", "jsonschema"}


def test_the_jobs_conda_environment_holds_the_projects_runtime_requirements():
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["timm"]]
    required = {Requirement(line).name for line in lines} - MAIN_PROCESS_ONLY
    environment = yaml.safe_load((REPO / "envs" / "imprint.yaml").read_text())["dependencies"]
    listed = set()
    for entry in environment:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            listed.add(re.match(r"[A-Za-z0-9_.-]+", line).group())  # conda: "name >=1.2"
    assert {CONDA_NAMES.get(name, name) for name in required} == listed - {"python", "pip"}


def _environment_pins() -> dict[str, str]:
    """PyPI name -> version of every package envs/imprint.yaml pins (conda names mapped)."""
    pypi_names = {conda: pypi for pypi, conda in CONDA_NAMES.items()}
    environment = yaml.safe_load((REPO / "envs" / "imprint.yaml").read_text())["dependencies"]
    pins = {}
    for entry in environment:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            if line in ("python =3.11", "pip"):
                continue
            name, version = re.fullmatch(r"([A-Za-z0-9_.-]+) ?==?([0-9][0-9.]*)", line).groups()
            pins[pypi_names.get(name, name)] = version
    return pins


def test_the_jobs_environment_pins_the_versions_ci_installs_and_this_install_has():
    """envs/imprint.yaml (conda jobs), envs/constraints.txt (what .ci/run installs), the README's
    torch install and this environment: the same versions."""
    import importlib.metadata

    constraints = dict(
        line.split("==")
        for line in (REPO / "envs" / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert _environment_pins() == constraints
    assert "-c envs/constraints.txt torch torchvision" in (REPO / ".ci" / "run").read_text()
    assert "pip install -c envs/constraints.txt -e '.[test]'" in (REPO / "README.md").read_text()
    quick_start = f"torch=={constraints['torch']} torchvision=={constraints['torchvision']}"
    assert quick_start in (REPO / "README.md").read_text()
    installed = {name: importlib.metadata.version(name) for name in constraints}
    mismatched = {
        name: installed[name] for name in constraints if installed[name] != constraints[name]
    }
    assert not mismatched, (
        f"installed {mismatched}, pinned {[f'{n}=={constraints[n]}' for n in mismatched]}: "
        "pip install -c envs/constraints.txt -e '.[test]'"
    )


def test_the_suites_start_order_names_existing_test_modules_that_run_snakemake():
    from tests.conftest import LONGEST_FIRST

    for name in LONGEST_FIRST:
        module = REPO / "tests" / f"{name}.py"
        assert module.is_file(), name
        assert "pytest.mark.workflow" in module.read_text(), f"{name} is not an end-to-end module"


def test_the_commands_selection_grid_is_the_offline_defaults():
    from imprint.app import SELECTION_GRID

    section = yaml.safe_load((REPO / "config.yaml").read_text())["imprinting"]
    assert {factor: list(getattr(SELECTION_GRID, factor)) for factor in FACTORS} == {
        factor: section[factor] for factor in FACTORS
    }


def test_the_low_shot_options_default_to_the_schemas_defaults():
    """The library's LowShotOptions (for callers without a config) and the schema (for the
    workflow) give the same defaults; the schema's ``scope: auto`` is resolved per model."""
    import dataclasses

    from imprint.lowshot import LowShotOptions

    properties = yaml.safe_load(SCHEMA.read_text())["properties"]["lowshot"]["properties"]
    compared = {
        field.name: (field.default, properties[field.name]["default"])
        for field in dataclasses.fields(LowShotOptions)
        if "default" in properties.get(field.name, {}) and field.name != "scope"
    }
    assert len(compared) >= 10
    for name, (library, schema) in compared.items():
        assert (list(library) if isinstance(library, tuple) else library) == schema, name


def test_the_grids_engine_defaults_are_the_schemas():
    """Grid.from_config falls back on Grid's own defaults for a section without device, dtype
    or compat (the schema fills them in a validated config): the two must agree."""
    import dataclasses

    from imprint.grid import Grid

    properties = yaml.safe_load(SCHEMA.read_text())["properties"]["imprinting"]["properties"]
    defaults = {field.name: field.default for field in dataclasses.fields(Grid)}
    for key in ("device", "dtype", "compat"):
        assert defaults[key] == properties[key]["default"], key


def _source_options(schema: dict, source: str) -> dict:
    """The schema's options of a model source (its ``if source: const`` branch)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            condition = node.get("if", {}).get("properties", {}).get("source", {})
            if condition.get("const") == source:
                found.append(node["then"]["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert len(found) == 1, source
    return found[0]


def test_the_model_sources_fallbacks_are_the_schemas_defaults():
    """Options a model source reads with a fallback (for specs built without the schema, as the
    `imprint` command builds them) fall back on the schema's defaults."""
    from imprint.models import BASE_CNN_DEFAULTS, PYTHON_MODEL_DEFAULTS

    schema = yaml.safe_load(SCHEMA.read_text())
    for source, defaults in (("python", PYTHON_MODEL_DEFAULTS), ("base_cnn", BASE_CNN_DEFAULTS)):
        options = _source_options(schema, source)
        for key, value in defaults.items():
            expected = options[key]["default"]
            assert (list(value) if isinstance(value, tuple) else value) == expected, key
