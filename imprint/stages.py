"""One function per workflow stage: what a Snakemake job does, callable without Snakemake.

Each stage function takes keyword-only arguments named as its rule's ``input``, ``output``,
``params`` and wildcards (and ``threads``). The scripts in ``scripts/`` are one line each,
``run_rule(snakemake, run_<stage>)``: :func:`run_rule` passes every argument by its name, so
rule, script and stage agree by name, not by position (tests/test_rules.py checks every rule
against its stage's signature).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imprint.io import load_arrays, save_arrays, write_table

log = logging.getLogger("imprint")


@contextlib.contextmanager
def logged(path: str | Path, threads: int = 1) -> Iterator[None]:
    """Run a job's body with logging, stdout and stderr (progress bars included) sent to its log
    file, and numerical libraries limited to the job's ``threads`` (parallel jobs would otherwise
    oversubscribe the cores).

    A job that fails ends its log with one line, ``Error: <what was wrong>`` (the library's own
    message), and exits with status 1 without a traceback on the console (Snakemake prints the
    log); the traceback goes to ``<log>.traceback`` for whoever debugs the code.
    """
    from threadpoolctl import threadpool_limits

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    traceback_file = Path(f"{path}.traceback")
    traceback_file.unlink(missing_ok=True)  # from an earlier failed attempt
    failure = None
    with (
        open(path, "w") as handle,
        contextlib.redirect_stdout(handle),
        contextlib.redirect_stderr(handle),
        threadpool_limits(limits=threads),
    ):
        logging.basicConfig(
            stream=handle,
            level=logging.INFO,
            force=True,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        try:
            yield
        except Exception as error:
            failure = error
            traceback_file.write_text(traceback.format_exc())
        finally:
            # What the job ran, for checking the code hashes of imprint.codehash against it.
            log.info("imprint modules loaded: %s", " ".join(loaded_modules()))
        if failure is not None:
            log.error("job failed; its traceback is in %s", traceback_file)
            handle.flush()
            handle.write(f"Error: {failure_message(failure)}\n")
    if failure is not None:
        raise SystemExit(1)


def failure_message(error: BaseException) -> str:
    """One line for a failed job: the message of the library's own errors (``ValueError`` and
    ``OSError`` and their kinds, which name the file or key), the type too for anything else."""
    message = " ".join(str(error).split()) or repr(error)
    if isinstance(error, (ValueError, OSError)):
        return message
    return f"{type(error).__name__}: {message}"


def loaded_modules() -> list[str]:
    """The modules of this package imported in this process so far."""
    package = __name__.split(".")[0]
    return sorted(name for name in sys.modules if name == package or name.startswith(f"{package}."))


def rule_arguments(job: Any, stage: Callable[..., Any], given: Sequence[str] = ()) -> dict:
    """The arguments of ``stage`` for a Snakemake ``job`` (the ``snakemake`` object of a rule's
    script): each parameter by its name from the job's input, output, params or wildcards, and
    ``threads`` from the job; a ``**`` parameter takes every named input not taken otherwise.
    Parameters in ``given`` are left to the caller. A parameter without default that the rule
    does not name, or that it names twice, is an error naming both."""
    parts = {
        "input": job.input,
        "output": job.output,
        "params": job.params,
        "wildcards": job.wildcards,
    }
    arguments: dict[str, Any] = {}
    rest = None
    for name, parameter in inspect.signature(stage).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            rest = name
            continue
        if name in given:
            continue
        if name == "threads":
            arguments[name] = job.threads
            continue
        found = [part for part, values in parts.items() if name in values.keys()]
        if len(found) > 1:
            raise TypeError(f"{stage.__name__}: the rule names {name!r} as {' and '.join(found)}")
        if found:
            arguments[name] = getattr(parts[found[0]], name)
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(
                f"{stage.__name__} needs {name!r}, which its rule names in none of its "
                "input, output, params or wildcards"
            )
    if rest is not None:
        taken = set(arguments) | set(given)
        arguments |= {name: path for name, path in job.input.items() if name not in taken}
    return arguments


def run_rule(job: Any, stage: Callable[..., Any], **given: Any) -> None:
    """The body of every rule's script: ``stage`` with its arguments from the rule by name
    (:func:`rule_arguments`) and ``given``, logged to the rule's log (:func:`logged`)."""
    with logged(job.log[0], job.threads):
        stage(**rule_arguments(job, stage, tuple(given)), **given)


def run_prepare_dataset(
    *,
    spec: Mapping[str, Any],
    manifest: str,
    components: Mapping[str, tuple[Mapping[str, Any], str]] | None = None,
) -> None:
    """``components``: name -> (spec, manifest) of the datasets this one is built from."""
    from imprint.datasets import prepare_dataset

    log.info("preparing dataset %s into %s", dict(spec), Path(manifest).parent)
    parts = dict(components or {})
    prepare_dataset(spec, manifest, resolve=lambda name: (parts[name][0], Path(parts[name][1])))


def run_prepare_model(
    *,
    spec: Mapping[str, Any],
    network: str,
    dataset_spec: Mapping[str, Any] | None = None,
    manifest: str | None = None,
    threads: int = 1,
) -> None:
    """The model file ``network``; ``manifest``: that of the dataset it is trained on,
    where the workflow trains it."""
    from imprint.datasets import split_images
    from imprint.models import model_source

    source = model_source(spec)
    training_data = (
        split_images(dataset_spec, manifest, "train", transform=source.preprocess(spec))
        if manifest
        else None
    )
    source.prepare(spec, Path(network), training_data, threads)


def run_embed(
    *,
    model_spec: Mapping[str, Any],
    network: str,
    dataset_spec: Mapping[str, Any],
    manifest: str,
    split: str,
    embeddings: str,
    embedding: Mapping[str, Any],
    threads: int = 1,
    model: str = "",
) -> None:
    """The ``embeddings`` file of one split of the dataset of ``manifest`` under the model file
    ``network``, with the ``embedding:`` section's batch size, workers and device."""
    from imprint.datasets import split_embeddings, split_images
    from imprint.embed import extract_embeddings
    from imprint.models import model_source

    source = model_source(model_spec)
    if getattr(source, "reads_embeddings", False):  # precomputed: read, no extraction
        vectors, labels = split_embeddings(dataset_spec, manifest, split, model)
        log.info("%d precomputed embeddings of dimension %d", *vectors.shape)
        save_arrays(embeddings, embeddings=vectors, labels=labels)
        return
    loaded = source.load(model_spec, Path(network))
    images = split_images(dataset_spec, manifest, split, transform=source.preprocess(model_spec))
    start = time.perf_counter()
    vectors, labels = extract_embeddings(
        loaded,
        images,
        batch_size=embedding["batch_size"],
        num_workers=embedding["num_workers"],
        device=embedding["device"],
        threads=threads,
    )
    seconds = time.perf_counter() - start
    if not np.isfinite(vectors).all():
        raise ValueError(f"{embeddings}: the model produced NaN or inf embeddings")
    log.info(
        "%d embeddings of dimension %d in %.2f s (%.0f images/s)",
        *vectors.shape,
        seconds,
        len(vectors) / max(seconds, 1e-9),
    )
    save_arrays(embeddings, embeddings=vectors, labels=labels)


def run_build_task(
    *,
    spec: Mapping[str, Any],
    dataset_spec: Mapping[str, Any],
    manifest: str,
    seed: int | str,
    task_split: str,
) -> None:
    """The index file ``task_split`` of one task and seed on the dataset of ``manifest``."""
    from imprint.datasets import all_split_labels, class_ids_of
    from imprint.tasks import build_task

    seed = int(seed)  # a wildcard is a string
    labels = all_split_labels(dataset_spec, manifest)
    available = class_ids_of(dataset_spec, labels["train"])
    task = build_task(spec, labels["train"], labels["test"], available, seed)
    log.info(
        "task %s seed %d: %d train (%d before n-shot), %d test samples, %d labels",
        dict(spec),
        seed,
        len(task["train_index"]),
        len(task["full_train_index"]),
        len(task["test_index"]),
        task["task_label"].max() + 1,
    )
    save_arrays(task_split, **task)


def _embeddings(path: str, index: np.ndarray) -> np.ndarray:
    return _all_embeddings(path)[index]


def _all_embeddings(path: str) -> np.ndarray:
    embeddings = load_arrays(path)["embeddings"]
    if not np.isfinite(embeddings).all():
        raise ValueError(f"{path}: embeddings contain NaN or inf")
    return embeddings


def check_same_width(
    train: np.ndarray, test: np.ndarray, train_file: str | Path, test_file: str | Path
) -> None:
    """Train and test embeddings must have one width (the same model's): otherwise scoring
    fails deep in torch without naming a file."""
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(
            f"{train_file} holds {train.shape[1]}-d embeddings but {test_file} "
            f"{test.shape[1]}-d; train and test must come from the same model"
        )


def run_imprinting(
    *,
    train: str,
    test: str,
    task_split: str,
    grid: Mapping[str, Any],
    ls_lambda: float,
    model: str,
    task: str,
    seed: int | str,
    results: str,
    gen_time: str,
    selection_spec: Mapping[str, Any] | None = None,
    selection: str | None = None,
) -> None:
    """The ``grid`` (the ``imprinting:`` section) of one (model, task, seed) on the ``train``
    and ``test`` embeddings and the task's ``task_split``: the ``results`` and ``gen_time``
    tables; with ``selection``, also the configuration chosen on held-out training data
    (``selection_spec``, see :mod:`imprint.selection`) with its test accuracy, one row."""
    from imprint.grid import Grid, run_grid

    seed = int(seed)  # a wildcard is a string
    train_file, test_file = train, test
    levels = Grid.from_config(grid, ls_lambda)
    split = load_arrays(task_split)
    train = _embeddings(train_file, split["train_index"])
    test = _embeddings(test_file, split["test_index"])
    check_same_width(train, test, train_file, test_file)
    start = time.perf_counter()
    rows, timing = run_grid(
        train,
        split["train_label"],
        test,
        split["test_label"],
        levels,
        seed,
    )
    log.info("%d configurations in %.2f s", len(rows), time.perf_counter() - start)
    tables = [(rows, results), (timing, gen_time)]
    if selection is not None:
        from imprint.selection import SelectionSpec, select_configuration, selection_row

        start = time.perf_counter()
        chosen = select_configuration(
            train, split["train_label"], levels, seed, SelectionSpec.from_config(selection_spec)
        )
        row = selection_row(chosen, rows)
        log.info("selected %s in %.2f s: %s", chosen.selected_by, time.perf_counter() - start, row)
        tables.append((pd.DataFrame([row]).astype({"k": "Int64", "m": "Int64"}), selection))
    for table, path in tables:
        table.insert(0, "seed", seed)
        table.insert(0, "task", task)
        table.insert(0, "model", model)
        write_table(table, path)


def run_selection_summary(*, selection: str, summary: str) -> None:
    from imprint.selection import selection_summary

    write_table(selection_summary(read_table(selection)), summary)


def run_export_classifiers(
    *,
    tasks: Sequence[str],
    folders: Sequence[str],
    model_spec: Mapping[str, Any],
    grid: Mapping[str, Any],
    ls_lambda: float,
    config_sha256: Mapping[str, str],
    **inputs: str,
) -> None:
    """Per task, the configuration selected for (model, task) at its first seed, fit on that
    seed's whole training split, as a classifier folder (:mod:`imprint.artifact`) named by class,
    one of ``folders`` per task.

    ``inputs``: ``<kind>__<task>`` -> file for the kinds train (embeddings), task, selection,
    dataset (manifest) and nc1, and ``network`` (the model file) where the network was trained
    by the workflow: its weights travel with the classifiers. Each embeddings file and the model
    file are read once, however many tasks share them."""
    from imprint.models import model_source

    source = model_source(model_spec)
    carried = None
    if source.training_dataset(model_spec):
        import torch

        carried = torch.load(inputs["network"], map_location="cpu", weights_only=True)
    backbone = None if getattr(source, "reads_embeddings", False) else dict(model_spec)
    embeddings: dict[str, np.ndarray] = {}
    for task, out in zip(tasks, folders, strict=True):
        train = inputs[f"train__{task}"]
        if train not in embeddings:
            embeddings[train] = _all_embeddings(train)
        _export_classifier(
            embeddings[train],
            {kind: inputs[f"{kind}__{task}"] for kind in ("task", "selection", "dataset", "nc1")},
            backbone,
            carried,
            grid,
            ls_lambda,
            config_sha256[task],
            out,
        )


def _export_classifier(
    embeddings, files, backbone, carried, grid_section, ls_lambda, config_sha256, out
) -> None:
    from imprint.artifact import ClassifierArtifact, save_artifact
    from imprint.classifier import ImprintingClassifier
    from imprint.datasets import task_class_names
    from imprint.io import read_manifest
    from imprint.selection import classifier_params, configuration_of

    chosen = read_table(files["selection"]).iloc[0]
    split = load_arrays(files["task"])
    names = task_class_names(read_manifest(files["dataset"], verify=False), split)
    configuration = configuration_of(chosen)
    clf = ImprintingClassifier(
        **classifier_params(configuration),
        ls_lambda=ls_lambda,
        random_state=int(chosen["seed"]),
        device=grid_section["device"],
        dtype=grid_section["dtype"],
        compat=grid_section["compat"],
        keep_embeddings=False,
    )
    labels = np.asarray(names)[split["train_label"]]
    clf.fit(embeddings[split["train_index"]], labels)
    nc1 = read_table(files["nc1"])
    nc1 = nc1[nc1["seed"] == chosen["seed"]]
    artifact = ClassifierArtifact(
        classifier=clf,
        backbone=backbone,
        provenance={
            "model": str(chosen["model"]),
            "task": str(chosen["task"]),
            "seed": int(chosen["seed"]),
            "configuration": configuration,
            "selected_by": str(chosen["selected_by"]),
            "validation_accuracy": float(chosen["validation_accuracy"]),
            "test_accuracy": float(chosen["test_accuracy"]),
            "best_test_accuracy": float(chosen["best_test_accuracy"]),
            "nc1": {str(r["variant"]): float(r["nc1"]) for _, r in nc1.iterrows()},
            "n_train": len(labels),
            "config_sha256": config_sha256,
        },
        backbone_file=carried,
    )
    save_artifact(out, artifact)
    log.info("exported %s: %s", out, configuration)


def run_nc1(
    *,
    train: str,
    tasks: Sequence[str],
    seeds: Sequence[int],
    model: str,
    task: str,
    table: str,
    variants: Sequence[str] = ("papyan",),
) -> None:
    """NC1 of a task's full train split (before n-shot subsampling) from the ``train``
    embeddings and the task's split files (``tasks``, one per seed of ``seeds``), one row per
    seed and variant (see :func:`imprint.nc.nc1`)."""
    from imprint.nc import nc1

    embeddings = load_arrays(train)["embeddings"]
    rows = []
    for seed, task_file in zip(seeds, tasks, strict=True):
        split = load_arrays(task_file)
        for variant in variants:
            value = nc1(embeddings[split["full_train_index"]], split["full_train_label"], variant)
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "seed": seed,
                    "variant": variant,
                    "nc1": value,
                    "n_labels": int(split["full_train_label"].max()) + 1,
                    "n_samples": len(split["full_train_index"]),
                }
            )
            log.info("seed %d: NC1 (%s) = %.4g", seed, variant, value)
    write_table(pd.DataFrame(rows), table)


def run_lowshot(
    *,
    model_spec: Mapping[str, Any],
    network: str,
    dataset_spec: Mapping[str, Any],
    manifest: str,
    task_spec: Mapping[str, Any],
    section: Mapping[str, Any],
    model: str,
    task: str,
    seed: int | str,
    table: str,
    train: str | None = None,
    test: str | None = None,
) -> None:
    """Qi et al.'s low-shot methods for one (model, low-shot task, seed) with the model file
    ``network`` on the dataset of ``manifest``: the rows in ``table``. ``train`` and ``test``:
    the cached embeddings (read by the ``head`` scope only)."""
    seed = int(seed)  # a wildcard is a string
    embeddings = {"train": train, "test": test}
    from imprint.datasets import all_split_labels, class_ids_of, split_images
    from imprint.lowshot import (
        LowShotData,
        LowShotOptions,
        lowshot_scope,
        results_table,
        run_seed,
        task_classes,
    )
    from imprint.models import BASE_CNN_DEFAULTS, model_source, small_cnn

    scope = lowshot_scope(section["scope"], model_spec)
    options = LowShotOptions.from_config(section, scope, task_spec["n_shot"])
    labels = all_split_labels(dataset_spec, manifest)
    base_classes, novel_classes = task_classes(
        task_spec, model_spec, class_ids_of(dataset_spec, labels["train"]), labels["train"]
    )
    data = LowShotData(
        base_classes=base_classes,
        novel_classes=novel_classes,
        train_labels=labels["train"],
        test_labels=labels["test"],
    )
    source = model_source(model_spec)
    if model_spec["source"] == "base_cnn":
        trained = source.load_with_head(model_spec, Path(network))
        data.network = trained[0]
        if model_spec.get("head", BASE_CNN_DEFAULTS["head"]) == "cosine":
            data.base_head = trained[1]
        in_channels, dim = trained[0][0].in_channels, model_spec["embedding_dim"]
        data.fresh_network = lambda: small_cnn(in_channels, dim, 1)[0]
    elif scope == "full" or "imprint_aug" in options.methods:
        data.network = source.load(model_spec, Path(network))
    if data.network is not None:
        preprocess = source.preprocess(model_spec)
        data.train_images, data.test_images = (
            split_images(dataset_spec, manifest, split, transform=preprocess)
            for split in ("train", "test")
        )
    if scope == "head":
        for split in ("train", "test"):
            arrays = load_arrays(embeddings[split])
            if not np.array_equal(arrays["labels"], labels[split]):
                raise ValueError(f"{embeddings[split]}: labels differ from the dataset's {split}")
            setattr(data, f"{split}_embeddings", arrays["embeddings"])
        check_same_width(
            data.train_embeddings, data.test_embeddings, embeddings["train"], embeddings["test"]
        )
    log.info(
        "low-shot %s on %s, seed %d: scope %s, init %s, embedding layer %s, %d base classes %s, "
        "%d novel %s, n %s, methods %s",
        task,
        model,
        seed,
        scope,
        options.init,
        list(options.embedding_dims) or "none",
        len(data.base_classes),
        data.base_classes,
        len(data.novel_classes),
        data.novel_classes,
        list(options.n_shot),
        list(options.methods),
    )
    start = time.perf_counter()
    rows = run_seed(data, options, seed)
    log.info("%d rows in %.2f s", len(rows), time.perf_counter() - start)
    rows_table = results_table(
        rows, model=model, task=task, seed=seed, scope=scope, init=options.init
    )
    write_table(rows_table, table)


def run_lowshot_summary(
    *, lowshot: str, summary: str, paper: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Qi et al.'s Tables 1-2; ``paper``: published accuracies per low-shot task, set beside."""
    from imprint.stats import lowshot_summary

    write_table(lowshot_summary(read_table(lowshot), paper), summary)


def run_concat(*, tables: Sequence[str], table: str) -> None:
    """The rows of ``tables`` in one ``table``."""
    frames = [read_table(path) for path in tables]
    write_table(pd.concat(frames, ignore_index=True), table)


def run_summary(*, results: str, summary: str) -> None:
    from imprint.stats import configuration_summary

    write_table(configuration_summary(read_table(results)), summary)


def run_nc1_summary(*, nc1: str, summary: str) -> None:
    from imprint.stats import nc1_summary

    write_table(nc1_summary(pd.read_csv(nc1)), summary)


def read_table(path: str) -> pd.DataFrame:
    """A table from results/, with k, m, epoch and embedding_dim as nullable integers where
    present (empty where they do not apply), so that they stay integers when written again."""
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(
        path,
        dtype={
            column: "Int64" for column in ("k", "m", "epoch", "embedding_dim") if column in header
        },
    )


def run_nc1_vs_gain(
    *, results: str, nc1: str, k: Sequence[int], tasks: Sequence[str], table: str
) -> None:
    """NC1 against the gain of k-means (each of ``k``) over the mean, on ``tasks``."""
    from imprint.stats import nc1_vs_gain

    gains = nc1_vs_gain(read_table(results), primary_nc1(pd.read_csv(nc1)), k, tasks)
    for k_value, rows in gains.groupby("k"):
        log.info(
            "k=%d: Spearman rho(NC1, gain) = %.3f (p = %.3g, %d points)",
            k_value,
            rows["spearman_rho"].iloc[0],
            rows["spearman_pvalue"].iloc[0],
            len(rows),
        )
    write_table(gains, table)


def run_gen_time_summary(*, gen_time: str, summary: str) -> None:
    from imprint.stats import gen_time_summary

    write_table(gen_time_summary(read_table(gen_time)), summary)


def run_figure(
    *, figure: str, options: Mapping[str, Any], pdf: str, png: str, **tables: str
) -> None:
    """Draw one of :data:`imprint.figures.FIGURES` from its ``tables`` (the plot function's
    argument name -> path) with its plan ``options``, as ``pdf`` and ``png``."""
    from imprint.figures import FIGURES, save_figure

    loaded = {name: read_table(path) for name, path in tables.items()}
    if "nc1" in loaded:
        loaded["nc1"] = primary_nc1(loaded["nc1"])
    fig = FIGURES[figure].plot(**loaded, **options)
    save_figure(fig, pdf, png)


def primary_nc1(nc1_rows: pd.DataFrame) -> pd.DataFrame:
    """The NC1 rows that figures draw: the textbook variant where it was computed, else the
    first one."""
    if "variant" not in nc1_rows:
        return nc1_rows
    variants = list(nc1_rows["variant"].unique())
    chosen = "papyan" if "papyan" in variants else variants[0]
    return nc1_rows[nc1_rows["variant"] == chosen].reset_index(drop=True)


def run_comparison(
    *,
    results: str,
    comparison: str,
    spec: Mapping[str, Any],
    alpha: float,
    posthoc: str,
    table: str,
    pdf: str,
    png: str,
    paper_csv: str | None = None,
    paper_tex: str | None = None,
) -> None:
    """Comparison ``comparison``'s Friedman + post-hoc ``table`` and CD diagram (``pdf``,
    ``png``), and (with ``paper_csv`` and ``paper_tex``) the same comparison in the IMPRINT
    paper's table layout (:func:`imprint.stats.paper_table`)."""
    from imprint.figures import cd_diagram, save_figure
    from imprint.io import atomic_path
    from imprint.stats import (
        compare,
        comparison_matrix,
        comparison_table,
        paper_table,
        paper_table_latex,
    )

    rows = read_table(results)
    matrix = comparison_matrix(rows, comparison, spec)
    result = compare(matrix, alpha, posthoc)
    log.info("comparison %s: %s", comparison, result.note)
    write_table(comparison_table(result), table)
    fig, _ = cd_diagram(result, spec.get("title", comparison), alpha)
    save_figure(fig, pdf, png)
    if paper_csv is None or paper_tex is None:
        return
    in_paper_layout = paper_table(rows, spec)
    write_table(in_paper_layout, paper_csv)
    with atomic_path(paper_tex) as tmp:
        tmp.write_text(paper_table_latex(in_paper_layout, spec.get("title", comparison)))
