"""Checks of a workflow configuration beyond its JSON schema (workflow/schemas/).

The schema checks keys, types and names; these checks follow references between sections and
facts about the datasets, so that a bad configuration stops before any job runs, with a message
that names the offending key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imprint.datasets import class_ids_of, dataset_source
from imprint.errors import SpecError
from imprint.grid import FACTORS
from imprint.models import model_input_files, model_source
from imprint.tasks import label_map, task_classes

#: Names of datasets, models, tasks and comparisons: they become parts of output paths.
NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]*$"

#: Tables in results/tables/ that a comparison (results/tables/<name>.csv) must not overwrite.
RESERVED_TABLES = frozenset(
    {
        "imprinting",
        "summary",
        "nc1",
        "nc1_summary",
        "nc1_vs_gain",
        "gen_time",
        "gen_time_summary",
        "lowshot",
        "lowshot_summary",
        "selection",
        "selection_summary",
    }
)


class ConfigError(ValueError):
    """A configuration that cannot run; the message starts with the offending key."""


def _fail(key: str, message: str) -> None:
    raise ConfigError(f"config key '{key}': {message}")


def _class_ids(
    config: Mapping[str, Any], dataset: str, key: str, train_labels: Callable | None = None
) -> list[int] | None:
    """The dataset's class ids: from its source, else from its train labels where they are
    known before any job (an image folder's listing, a cached dataset); None where they are
    only known once the data is there (such tasks are checked when they are built)."""
    if dataset not in config["datasets"]:
        _fail(
            key,
            f"dataset {dataset!r} is not defined under 'datasets' "
            f"(defined: {sorted(config['datasets'])})",
        )
    spec = config["datasets"][dataset]
    known = dataset_source(spec).class_ids(spec)
    if known is None and train_labels is not None:
        labels = train_labels(dataset)
        if labels is not None:
            return class_ids_of(spec, labels)
    return known


def check_devices(config: Mapping[str, Any]) -> None:
    """For jobs that run on this machine: a device the config asks for must be here.

    (Not part of :func:`check_config`: on a cluster the jobs run on other machines, and which
    executor runs them is only known once Snakemake starts executing.)
    """
    for section in ("embedding", "imprinting", "lowshot"):
        if config.get(section, {}).get("device") != "cuda":
            continue
        import torch

        if not torch.cuda.is_available():
            _fail(
                f"{section}.device",
                "'cuda', but this machine has no CUDA device and the jobs run here; "
                "use 'auto' (CUDA when present) or 'cpu'",
            )


def _check_precomputed(config: Mapping[str, Any]) -> None:
    """Every model runs on every task: precomputed models need datasets of source
    ``embeddings`` holding their files, and such datasets work with precomputed models only."""
    precomputed = {
        name for name, spec in config["models"].items() if spec["source"] == "precomputed"
    }
    stored = {name for name, spec in config["datasets"].items() if spec["source"] == "embeddings"}
    if not precomputed and not stored:
        return
    if precomputed != set(config["models"]):
        other = sorted(set(config["models"]) - precomputed)
        _fail(
            "models",
            f"models {other} compute embeddings, but models "
            f"{sorted(precomputed)} or datasets {sorted(stored)} hold precomputed "
            "ones: every model runs on every task, so use only one kind",
        )
    for name, spec in config["tasks"].items():
        if spec["dataset"] not in stored:
            _fail(
                f"tasks.{name}.dataset",
                f"{spec['dataset']!r} is not a dataset of source "
                "'embeddings', which precomputed models need",
            )
    for name in stored:
        files = set(config["datasets"][name]["models"])
        if files != precomputed:
            _fail(
                f"datasets.{name}.models",
                f"has files for {sorted(files)}, but the "
                f"precomputed models are {sorted(precomputed)}",
            )


def _check_classes(classes: list[int], available: list[int] | None, dataset: str, key: str) -> None:
    if available is None:
        return
    unknown = sorted(set(classes) - set(available))
    if unknown:
        _fail(
            key,
            f"classes {unknown} do not exist in dataset {dataset!r} "
            f"(it has {min(available)}..{max(available)})",
        )


def _key_path(path) -> str:
    parts = []
    for part in path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


#: JSON schema types -> the Python values that satisfy them.
_SCHEMA_TYPES = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _coerce_command_line_strings(config: dict[str, Any], errors) -> bool:
    """Replace strings where the schema wants a number, boolean or null by their YAML value.

    Snakemake parses the inside of ``--config key=[1,2]`` with YAML's BaseLoader, which keeps
    every scalar a string, so without this ``--config seeds='[0,1,2]'`` would fail as "'0' is
    not of type 'integer'". Guided by the schema's own type errors, so a string the schema
    accepts stays a string. Returns whether anything changed (the caller validates again).
    """
    import yaml

    changed = False
    pending = list(errors)
    while pending:
        error = pending.pop()
        pending.extend(error.context or ())
        if error.validator != "type" or not isinstance(error.instance, str):
            continue
        wanted = (
            error.validator_value
            if isinstance(error.validator_value, list)
            else [error.validator_value]
        )
        if "string" in wanted or not error.absolute_path:
            continue
        try:
            value = yaml.safe_load(error.instance)
            if isinstance(value, str) and "number" in wanted:
                value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        except (yaml.YAMLError, ValueError):
            continue
        types = tuple(t for name in wanted for t in _SCHEMA_TYPES.get(name, ()))
        if isinstance(value, bool) and "boolean" not in wanted:
            continue  # bool is an int in Python, not in the schema
        if not isinstance(value, types):
            continue
        *parents, last = error.absolute_path
        container = config
        for part in parents:
            container = container[part]
        if container[last] == error.instance:
            container[last] = value
            changed = True
    return changed


#: The workflow's config schema (a checkout or editable install has it beside the package).
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def validate_config(config: dict[str, Any], schema_file: str | Path = SCHEMA_FILE) -> None:
    """Check ``config`` against the JSON schema, filling in the schema's defaults in place, then
    expand models with a list of layers into one model per layer (:func:`expand_layers`).

    Raises :class:`ConfigError` with the single most relevant violation, named by its key path,
    e.g. ``config key 'imprinting.gen[0]': 'kmean' is not one of [...]``.
    """
    import yaml

    _validate(config, yaml.safe_load(Path(schema_file).read_text()))
    expand_layers(config)
    sort_mappings(config)


#: Mappings whose order is part of their value (key paths; ``*`` is any key): a comparison's
#: configurations are tabulated and drawn in the order the config gives them, and each one's
#: factors are listed in the report as written.
ORDERED_MAPPINGS = (
    ("comparisons", "*", "configurations"),
    ("comparisons", "*", "configurations", "*"),
)


def sort_mappings(config: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    """Sort the keys of every mapping in ``config`` in place, recursively (lists keep their
    order; so do :data:`ORDERED_MAPPINGS`).

    Snakemake reruns a job when the ``repr`` of its params changes, and a dict's ``repr``
    follows its key order: after this, equal values give equal params however the config
    file orders its keys, and spelling out a schema default (filled in at the end of its
    mapping) reruns nothing.
    """
    ordered = any(
        len(pattern) == len(path)
        and all(p in ("*", key) for p, key in zip(pattern, path, strict=True))
        for pattern in ORDERED_MAPPINGS
    )
    if not ordered:
        items = sorted(config.items(), key=lambda item: str(item[0]))
        config.clear()
        config.update(items)
    for key, value in config.items():
        _sort_nested(value, (*path, str(key)))


def _sort_nested(value: Any, path: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        sort_mappings(value, path)
    elif isinstance(value, list):
        for item in value:
            _sort_nested(item, (*path, "*"))


def validate_model_spec(spec: Mapping[str, Any], schema_file: str | Path = SCHEMA_FILE) -> dict:
    """One model spec, checked and completed with the schema's defaults as an entry under
    ``models:`` of a config would be (the ``imprint`` command's ``--model``)."""
    import yaml

    schema = yaml.safe_load(Path(schema_file).read_text())
    config = {"models": {"model": dict(spec)}}
    try:
        _validate(config, {**schema, "required": ["models"]})
    except ConfigError as error:
        message = str(error).replace("config key 'models.model'", "model spec")
        raise ConfigError(message.replace("config key 'models.model.", "model key '")) from None
    if isinstance(config["models"]["model"].get("layer"), list):
        raise ConfigError("model key 'layer': one layer here, not a list")
    return config["models"]["model"]


def _validate(config: dict[str, Any], schema: dict[str, Any]) -> None:
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        # As in the jsonschema FAQ: fill defaults, then validate as usual.
        if isinstance(instance, dict):
            for name, property_schema in properties.items():
                if isinstance(property_schema, dict) and "default" in property_schema:
                    instance.setdefault(name, property_schema["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    validator_class = jsonschema.validators.extend(base, {"properties": properties_with_defaults})
    validator = validator_class(schema)
    while _coerce_command_line_strings(config, validator.iter_errors(config)):
        pass
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        if unknown:
            _fail(
                _key_path([*error.absolute_path, unknown[0]]),
                f"unknown key; allowed here: {allowed}",
            )
    alternatives = error.schema.get(error.validator) if error.validator == "oneOf" else None
    if alternatives and all(set(option) == {"required"} for option in alternatives):
        keys = [key for option in alternatives for key in option["required"]]
        _fail(_key_path(error.absolute_path), f"needs exactly one of the keys {keys}")
    _fail(_key_path(error.absolute_path), error.message)


def check_inputs(
    config: Mapping[str, Any], cache_folder: str | Path | None = None
) -> tuple[list[str], list[str]]:
    """Every file and folder the config names, before any job: ``(missing, notes)``.

    ``missing``: one line per path that does not exist (image folders, dataset roots,
    precomputed embeddings, checkpoints), naming its key. The others are checked in depth by
    their source (``DatasetSource.check``: image folders listed and every image opened,
    precomputed arrays' shapes from their headers); a problem raises :class:`ConfigError`
    naming the key, and ``notes`` lists what is left out (unreadable images with
    ``skip_unreadable``, files that are not images). ``cache_folder``: where the verdicts on
    images are kept between runs (a folder per dataset), so that a folder is read once.
    """
    missing, notes = [], []
    for name, spec in config["datasets"].items():
        source = dataset_source(spec)
        key = f"datasets.{name}"
        paths = source.named_paths(spec) if hasattr(source, "named_paths") else {}
        absent = [
            f"config key '{key}.{sub}': {path} does not exist"
            for sub, path in paths.items()
            if not Path(path).expanduser().exists()
        ]
        missing += absent
        if not absent and hasattr(source, "check"):
            try:
                cache = Path(cache_folder) / name if cache_folder is not None else None
                notes += source.check(spec, key, cache)
            except (ValueError, OSError) as error:
                raise ConfigError(str(error)) from None
    for name, spec in config["models"].items():
        missing += [
            f"config key 'models.{name}.checkpoint': {path} does not exist"
            for path in model_input_files(spec)
            if not Path(path).exists()
        ]
    return missing, notes


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) config file as a dict; a syntax error names the file, line and column
    (Snakemake's own loader says only that a file is not valid YAML)."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(filter(None, (error.context, error.problem)))
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections (datasets:, models:, ...)")
    return loaded


def check_config_file(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """Every check a run makes before its first job, for one config file, without Snakemake:
    YAML syntax (file and line), the schema, the files it names, cross-references and the
    datasets' classes where they are known (cached in its results folder, or computed).
    Returns the validated config and the notes (missing files, files left out)."""
    from imprint.datasets import train_labels_if_known

    config = load_config_file(path)
    validate_config(config)
    root = results_root(config)
    missing, notes = check_inputs(config)
    check_config(
        config,
        train_labels=lambda dataset: train_labels_if_known(
            config["datasets"][dataset], Path(root, "datasets", dataset, "manifest.json")
        ),
    )
    return config, [*notes, *missing]


def results_root(config: Mapping[str, Any]) -> str:
    """The config's results folder (key ``results``), normalised (no trailing ``/``, no ``./``)."""
    return os.path.normpath(config["results"])


#: The file in a results folder that names the config file(s) whose outputs it holds.
RESULTS_OWNER_FILE = "config_files.json"


def config_file_names(config_files: Sequence[str | Path]) -> list[str]:
    """The config files of a run as written in the results folder: relative to the working
    directory where they are inside it, ``config.yaml`` (the offline default) when none is
    given."""
    names = []
    for path in config_files or ["config.yaml"]:
        absolute = Path(path).resolve()
        try:
            names.append(absolute.relative_to(Path.cwd().resolve()).as_posix())
        except ValueError:
            names.append(absolute.as_posix())
    return names


def check_results_owner(root: str | Path, config_files: Sequence[str | Path]) -> None:
    """Refuse a run whose results folder holds the outputs of other config files: they would
    overwrite one another's tables and figures, and each would rerun the other's jobs."""
    owner_file = Path(root) / RESULTS_OWNER_FILE
    if not owner_file.exists():
        return
    owners = json.loads(owner_file.read_text())
    names = config_file_names(config_files)
    if owners != names:
        _fail(
            "results",
            f"{root}/ holds the results of {', '.join(owners)}, not of {', '.join(names)}; "
            f"give this config a folder of its own (results: {root}/{Path(names[-1]).stem}), or "
            f"delete {owner_file} to hand the folder over",
        )


def finished_message(root: str | Path, config_files: Sequence[str | Path]) -> str:
    """What a finished run prints last: where its results are and how to gather them into a
    report (Snakemake's own last lines list every file it made)."""
    options = "".join(f" --configfile {name}" for name in config_file_names(config_files))
    if not config_files:
        options = ""  # the offline default: config.yaml without --configfile
    return (
        f"Done. Results of {', '.join(config_file_names(config_files))} are in {root}/: tables/, "
        f"figures/, cd_diagrams/, paper_tables/, logs/. Report with every figure and table: "
        f"snakemake{options} --report {root}/report.html"
    )


def claim_results_root(root: str | Path, config_files: Sequence[str | Path]) -> None:
    """Record in ``root`` which config file(s) write there (:func:`check_results_owner`)."""
    owner_file = Path(root) / RESULTS_OWNER_FILE
    if not owner_file.exists():
        owner_file.parent.mkdir(parents=True, exist_ok=True)
        owner_file.write_text(json.dumps(config_file_names(config_files)) + "\n")


def layer_model_name(model: str, layer: str) -> str:
    """The name of one layer of a model with a list of layers: ``<model>-<layer>``, '.' -> '_'."""
    return f"{model}-{layer.replace('.', '_')}"


def expand_layers(config: dict[str, Any]) -> None:
    """A model whose ``layer`` is a list becomes one model per layer, named by
    :func:`layer_model_name` and remembering its origin in ``layer_of``, so that tasks,
    imprinting, NC1 and comparisons treat each layer as an FM. Where other sections name the
    model (``figures.models``, a comparison's ``models``, ``ls_lambda_per_model``), the name
    stands for all its layers."""
    expanded: dict[str, list[str]] = {}
    models: dict[str, Any] = {}
    for name, spec in config["models"].items():
        if not isinstance(spec.get("layer"), list):
            models[name] = spec
            continue
        expanded[name] = []
        for layer in spec["layer"]:
            layered = layer_model_name(name, layer)
            if layered in config["models"]:
                _fail(f"models.{name}.layer", f"{layered!r} is also the name of another model")
            models[layered] = {**spec, "layer": layer, "layer_of": name}
            expanded[name].append(layered)
    if not expanded:
        return
    config["models"] = models

    def rename(names: list[str]) -> list[str]:
        return [each for name in names for each in expanded.get(name, [name])]

    if config.get("figures", {}).get("models"):
        config["figures"]["models"] = rename(config["figures"]["models"])
    for comparison in config.get("comparisons", {}).values():
        if "models" in comparison:
            comparison["models"] = rename(comparison["models"])
    per_model = config["imprinting"].get("ls_lambda_per_model", {})
    for name in list(per_model):
        for each in expanded.get(name, []):
            per_model[each] = per_model[name]
        if name in expanded:
            del per_model[name]


def _check_n_shot(
    name: str,
    spec: Mapping[str, Any],
    seeds: list[int],
    available: list[int],
    train_labels: np.ndarray,
) -> None:
    """n_shot must not exceed the train samples of any task label, for any of the task's seeds
    (labels of "d in 1" tasks merge classes drawn per seed, so each seed is checked)."""
    counts = {
        int(c): int(n) for c, n in zip(*np.unique(train_labels, return_counts=True), strict=True)
    }
    for seed in seeds:
        sizes: dict[int, int] = {}
        for original, label in label_map(spec, available, seed).items():
            sizes[label] = sizes.get(label, 0) + counts.get(original, 0)
        label, smallest = min(sizes.items(), key=lambda item: item[1])
        if spec["n_shot"] > smallest:
            _fail(
                f"tasks.{name}.n_shot",
                f"{spec['n_shot']} exceeds the {smallest} train samples of task label {label} "
                f"(seed {seed})",
            )


def check_config(
    config: Mapping[str, Any],
    train_labels: Callable[[str], np.ndarray | None] | None = None,
) -> None:
    """Raise :class:`ConfigError` for the first problem found; return None if the config can run.

    ``train_labels(dataset)`` gives a dataset's train labels where they are known before any job
    runs (or None); with it, n-shot sizes are checked against the real class sizes.
    """
    for name, spec in config["datasets"].items():
        for part in dataset_source(spec).requires(spec):
            if part not in config["datasets"] or part == name:
                _fail(f"datasets.{name}.datasets", f"{part!r} is not another configured dataset")
    _check_precomputed(config)
    for name, spec in config["models"].items():
        _check_model(config, name, spec, train_labels)
    for name, spec in config["tasks"].items():
        _check_task(config, name, spec, train_labels)
    for name in config["imprinting"].get("ls_lambda_per_model", {}):
        if name not in config["models"]:
            _fail(f"imprinting.ls_lambda_per_model.{name}", "no such model under 'models'")
    for name, spec in config.get("comparisons", {}).items():
        _check_comparison(config, name, spec)
    _check_lowshot(config, train_labels)
    figures = config.get("figures", {})
    for key, section in (("models", "models"), ("gen_vs_k_tasks", "tasks")):
        unknown = [item for item in figures.get(key, []) if item not in config[section]]
        if unknown:
            _fail(f"figures.{key}", f"{unknown} are not defined under '{section}'")


def _check_model(
    config: Mapping[str, Any], name: str, spec: Mapping[str, Any], train_labels: Callable | None
) -> None:
    """The source's own check (a model name the library has), and the base classes of a model
    trained on a configured dataset exist there."""
    source = model_source(spec)
    check = getattr(source, "check", None)
    if check is not None:
        try:
            check(spec)
        except SpecError as error:
            _fail(f"models.{name}.{error.field}", error.message)
    dataset = source.training_dataset(spec)
    if dataset is not None:
        available = _class_ids(config, dataset, f"models.{name}.dataset", train_labels)
        _check_classes(spec["base_classes"], available, dataset, f"models.{name}.base_classes")


def _check_task(
    config: Mapping[str, Any], name: str, spec: Mapping[str, Any], train_labels: Callable | None
) -> None:
    """A task's classes exist, its labels ("d in 1") fit them, and its n-shot fits every label
    where the train labels are known before any job."""
    available = _class_ids(config, spec["dataset"], f"tasks.{name}.dataset", train_labels)
    if available is None and not isinstance(spec.get("classes"), list):
        return  # which classes "all" or a sample means is only known with the data
    try:
        classes = task_classes(spec, available or [])
    except ValueError as error:
        _fail(f"tasks.{name}.classes", str(error))
    _check_classes(classes, available, spec["dataset"], f"tasks.{name}.classes")
    d = spec.get("d_in_1", 1)
    n_labels = spec.get("n_labels", len(classes) // d)
    if n_labels < 1 or n_labels * d > len(classes):
        _fail(
            f"tasks.{name}.d_in_1",
            f"{max(n_labels, 1)} labels of {d} classes each need {max(n_labels, 1) * d} "
            f"classes, the task has {len(classes)}",
        )
    if (n_labels if "d_in_1" in spec else len(classes)) < 2:
        _fail(f"tasks.{name}", "a task needs at least two labels to classify")
    if train_labels is not None and spec.get("n_shot", "all") != "all":
        labels = train_labels(spec["dataset"])
        if labels is not None:
            dataset_spec = config["datasets"][spec["dataset"]]
            _check_n_shot(
                name, spec, task_seeds(config, name), class_ids_of(dataset_spec, labels), labels
            )


def _check_lowshot(
    config: Mapping[str, Any], train_labels: Callable[[str], np.ndarray | None] | None
) -> None:
    """Low-shot tasks: their models, dataset and classes exist and fit together (class
    selectors resolved where the classes are known before any job), the largest n fits every
    novel class, and the scope, embedding layer and methods suit every model."""
    from imprint.lowshot import (
        task_base_classes,
        task_dataset,
    )

    section = config.get("lowshot", {})
    for name, spec in section.get("tasks", {}).items():
        key = f"lowshot.tasks.{name}"
        datasets, bases = set(), set()
        for model in spec["models"]:
            if model not in config["models"]:
                _fail(f"{key}.models", f"{model!r} is not defined under 'models'")
            model_spec = config["models"][model]
            dataset = task_dataset(spec, model_spec)
            if dataset is None:
                _fail(f"{key}.dataset", f"needed: model {model!r} is not trained on a dataset")
            datasets.add(dataset)
            base = task_base_classes(spec, model_spec)
            if base is None:
                _fail(f"{key}.base_classes", f"needed: model {model!r} has no base classes")
            bases.add(repr(base))
            _check_lowshot_model(section, model, model_spec)
        if len(datasets) > 1:
            _fail(f"{key}.dataset", f"its models train on different datasets {sorted(datasets)}")
        if len(bases) > 1:
            _fail(f"{key}.base_classes", f"its models have different base classes {sorted(bases)}")
        _check_paper_numbers(key, spec.get("paper", {}))
        _check_lowshot_classes(config, key, spec, train_labels)


def _check_lowshot_classes(
    config: Mapping[str, Any], key: str, spec: Mapping[str, Any], train_labels: Callable | None
) -> None:
    """A low-shot task's base and novel classes (selectors resolved where the labels are known
    before any job) exist, do not overlap, are a base CNN's own base classes, and the largest n
    fits every novel class. Its models share one dataset and base classes (checked before)."""
    from imprint.lowshot import task_base_classes, task_dataset

    first = config["models"][spec["models"][0]]
    dataset, base = task_dataset(spec, first), task_base_classes(spec, first)
    base_cnns = [
        model
        for model in spec["models"]
        if getattr(model_source(config["models"][model]), "own_embedding_layer", False)
    ]
    available = _class_ids(config, dataset, f"{key}.dataset", train_labels)
    labels = train_labels(dataset) if train_labels is not None else None
    base = _selected(base, f"{key}.base_classes", available, labels)
    novel = _selected(spec["novel_classes"], f"{key}.novel_classes", available, labels)
    for model in base_cnns:
        model_spec = config["models"][model]
        if base is not None and (
            dataset != model_spec["dataset"] or base != list(model_spec["base_classes"])
        ):
            _fail(
                f"{key}.base_classes",
                f"model {model!r} was trained on classes {model_spec['base_classes']} of "
                f"{model_spec['dataset']!r}; its low-shot base classes must be those",
            )
    if base is None or novel is None:
        return  # a selector of classes only known with the data: resolved by the job
    overlap = sorted(set(base) & set(novel))
    if overlap:
        _fail(
            f"{key}.novel_classes",
            f"{overlap if len(overlap) <= 10 else f'{len(overlap)} classes'} are also base classes",
        )
    _check_classes(base, available, dataset, f"{key}.base_classes")
    _check_classes(novel, available, dataset, f"{key}.novel_classes")
    if labels is not None:
        counts = {int(c): int((labels == c).sum()) for c in novel}
        smallest = min(counts, key=counts.__getitem__)
        if max(spec["n_shot"]) > counts[smallest]:
            _fail(
                f"{key}.n_shot",
                f"{max(spec['n_shot'])} exceeds the {counts[smallest]} train examples of "
                f"novel class {smallest}",
            )


def _check_lowshot_model(
    section: Mapping[str, Any], model: str, model_spec: Mapping[str, Any]
) -> None:
    """The low-shot scope, embedding layer and methods suit one model's source."""
    from imprint.lowshot import embedding_dims, lowshot_scope

    methods = section.get("methods", [])
    with_layer = bool(embedding_dims(section))
    kind = model_source(model_spec)
    source = model_spec["source"]
    if getattr(kind, "own_embedding_layer", False) and with_layer:
        _fail(
            "lowshot.embedding_dim",
            f"model {model!r} is a base_cnn, whose network has its own embedding layer "
            f"(models.{model}.embedding_dim); leave lowshot.embedding_dim out for it",
        )
    scope = lowshot_scope(section["scope"], model_spec)
    if scope == "full" and not getattr(kind, "fine_tunable", False):
        _fail(
            "lowshot.scope",
            f"'full' fine-tuning needs a network; model {model!r} ({source}) has none "
            "(use 'head' or 'auto')",
        )
    if "imprint_aug" in methods and getattr(kind, "reads_embeddings", False):
        _fail("lowshot.methods", f"imprint_aug needs images; model {model!r} has none")
    if (
        "all_class_joint" in methods
        and scope == "full"
        and not getattr(kind, "own_embedding_layer", False)
        and not with_layer
    ):
        _fail(
            "lowshot.methods",
            f"all_class_joint with 'full' scope trains from scratch what base training "
            f"learnt, which for model {model!r} ({source}) is only a classifier on its "
            "embedding: use scope 'head', or add an embedding layer (embedding_dim)",
        )


def _check_paper_numbers(key: str, paper: Mapping[str, Any]) -> None:
    """A low-shot task's published accuracies: one value per n of ``paper.n_shot``."""
    for metric in ("novel_accuracy", "all_accuracy"):
        for method, values in paper.get(metric, {}).items():
            if len(values) != len(paper["n_shot"]):
                _fail(
                    f"{key}.paper.{metric}.{method}",
                    f"{len(values)} values for the {len(paper['n_shot'])} n of "
                    f"paper.n_shot {paper['n_shot']}",
                )


def _selected(
    selector: Any, key: str, available: list[int] | None, labels: np.ndarray | None
) -> list[int] | None:
    """The classes of a list or class selector, None where only the data will tell."""
    from imprint.tasks import needs_train_labels, select_classes

    if isinstance(selector, list):
        return selector
    if available is None or (needs_train_labels(selector) and labels is None):
        return None
    try:
        return select_classes(selector, available, labels)
    except ValueError as error:
        _fail(key, str(error))


def lowshot_runs(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """Every (model, low-shot task, seed) job of a validated config."""
    section = config.get("lowshot", {})
    seeds = section.get("seeds") or config["seeds"]
    return [
        (model, task, seed)
        for task, spec in sorted(section.get("tasks", {}).items())
        for model in spec["models"]
        for seed in seeds
    ]


def _check_levels(grid: Mapping[str, Any], key: str, factor: str, condition: Any) -> None:
    """A filter must keep at least one level of the grid (ranges are checked on the results)."""
    if isinstance(condition, Mapping):
        return
    values = condition if isinstance(condition, list) else [condition]
    if not any(value in grid[factor] for value in values):
        _fail(
            key,
            f"none of {values} is in imprinting.{factor} {list(grid[factor])}, "
            "so the comparison would select nothing",
        )


def _check_comparison(config: Mapping[str, Any], name: str, spec: Mapping[str, Any]) -> None:
    grid = config["imprinting"]
    key = f"comparisons.{name}"
    if name in RESERVED_TABLES:
        _fail(
            key,
            f"the names {sorted(RESERVED_TABLES)} are taken by the workflow's own tables "
            "in results/tables/",
        )
    for section in ("models", "tasks"):
        unknown = [item for item in spec.get(section, []) if item not in config[section]]
        if unknown:
            _fail(f"{key}.{section}", f"{unknown} are not defined under '{section}'")
    best_of = set(spec.get("best_of", []))
    overlap = set(spec.get("factors", [])) & best_of
    if overlap:
        _fail(f"{key}.best_of", f"{sorted(overlap)} are also compared in 'factors'")
    where = spec.get("where", {})
    for factor, condition in where.items():
        _check_levels(grid, f"{key}.where.{factor}", factor, condition)
    # Each treatment must be one configuration: every factor with several levels in the grid is
    # compared, fixed or maximised over. (k and m may be legitimately empty: checked on results.)
    treatments = spec.get("configurations") or {"": {}}
    for label, configuration in treatments.items():
        for factor, condition in configuration.items():
            _check_levels(grid, f"{key}.configurations.{label}.{factor}", factor, condition)
        for factor in FACTORS:
            if (
                factor in spec.get("factors", [])
                or factor in best_of
                or factor in where
                or factor in configuration
                or factor in ("k", "m")
            ):
                continue
            if len(grid[factor]) > 1:
                what = f"configuration {label!r}" if label else "it"
                _fail(
                    key,
                    f"factor {factor!r} has {len(grid[factor])} levels in the grid but "
                    f"{what} neither compares ('factors'), fixes ('where') nor maximises "
                    "('best_of') it",
                )


def task_seeds(config: Mapping[str, Any], task: str) -> list[int]:
    """A task's seeds: its own ``seeds`` if given, else the global ones."""
    return sorted(config["tasks"][task].get("seeds", config["seeds"]))


def model_lambda(config: Mapping[str, Any], model: str) -> float:
    """The LS ridge term for a model: its override, else the grid's default."""
    section = config["imprinting"]
    return section.get("ls_lambda_per_model", {}).get(model, section["ls_lambda"])


def classifier_config_sha256(config: Mapping[str, Any], model: str, task: str) -> str:
    """A hash of the config values an exported classifier of (model, task) depends on: the
    model, the task and its dataset, its seeds, the grid and the selection; independent of key
    order and of every other model, task or section."""
    import hashlib
    import json

    dataset = config["tasks"][task]["dataset"]
    relevant = {
        "model": config["models"][model],
        "dataset": config["datasets"][dataset],
        "task": config["tasks"][task],
        "seeds": task_seeds(config, task),
        "imprinting": config["imprinting"],
        "selection": config["selection"],
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
