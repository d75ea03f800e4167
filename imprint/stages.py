"""One function per workflow stage: what a Snakemake job does, callable without Snakemake.

The scripts in ``scripts/`` only unpack ``snakemake.input/params/output`` and call these.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
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


def run_prepare_dataset(
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
    spec: Mapping[str, Any],
    out: str,
    dataset_spec: Mapping[str, Any] | None,
    dataset_manifest: str | None,
    threads: int,
) -> None:
    from imprint.datasets import split_images
    from imprint.models import model_source

    source = model_source(spec)
    training_data = (
        split_images(dataset_spec, dataset_manifest, "train", transform=source.preprocess(spec))
        if dataset_manifest
        else None
    )
    source.prepare(spec, Path(out), training_data, threads)


def run_embed(
    model_spec: Mapping[str, Any],
    model_file: str,
    dataset_spec: Mapping[str, Any],
    dataset_manifest: str,
    split: str,
    out: str,
    embedding: Mapping[str, Any],
    threads: int,
    model: str = "",
) -> None:
    from imprint.datasets import split_embeddings, split_images
    from imprint.embed import extract_embeddings
    from imprint.models import model_source

    source = model_source(model_spec)
    if getattr(source, "reads_embeddings", False):  # precomputed: read, no extraction
        embeddings, labels = split_embeddings(dataset_spec, dataset_manifest, split, model)
        log.info("%d precomputed embeddings of dimension %d", *embeddings.shape)
        save_arrays(out, embeddings=embeddings, labels=labels)
        return
    network = source.load(model_spec, Path(model_file))
    images = split_images(
        dataset_spec, dataset_manifest, split, transform=source.preprocess(model_spec)
    )
    start = time.perf_counter()
    embeddings, labels = extract_embeddings(
        network,
        images,
        batch_size=embedding["batch_size"],
        num_workers=embedding["num_workers"],
        device=embedding["device"],
        threads=threads,
    )
    seconds = time.perf_counter() - start
    if not np.isfinite(embeddings).all():
        raise ValueError(f"{out}: the model produced NaN or inf embeddings")
    log.info(
        "%d embeddings of dimension %d in %.2f s (%.0f images/s)",
        *embeddings.shape,
        seconds,
        len(embeddings) / max(seconds, 1e-9),
    )
    save_arrays(out, embeddings=embeddings, labels=labels)


def run_build_task(
    spec: Mapping[str, Any],
    dataset_spec: Mapping[str, Any],
    dataset_manifest: str,
    seed: int,
    out: str,
) -> None:
    from imprint.datasets import all_split_labels, class_ids_of
    from imprint.tasks import build_task

    labels = all_split_labels(dataset_spec, dataset_manifest)
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
    save_arrays(out, **task)


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
    train_embeddings: str,
    test_embeddings: str,
    task_file: str,
    grid_section: Mapping[str, Any],
    ls_lambda: float,
    model: str,
    task: str,
    seed: int,
    out: str,
    out_gen_time: str,
    selection_section: Mapping[str, Any] | None = None,
    out_selection: str | None = None,
) -> None:
    """The grid of one (model, task, seed) on its train/test split; with ``out_selection``, also
    the configuration chosen on held-out training data (``selection_section``, see
    :mod:`imprint.selection`) with its test accuracy, one row."""
    from imprint.grid import Grid, run_grid

    grid = Grid.from_config(grid_section, ls_lambda)
    split = load_arrays(task_file)
    train = _embeddings(train_embeddings, split["train_index"])
    test = _embeddings(test_embeddings, split["test_index"])
    check_same_width(train, test, train_embeddings, test_embeddings)
    start = time.perf_counter()
    results, timing = run_grid(
        train,
        split["train_label"],
        test,
        split["test_label"],
        grid,
        seed,
    )
    log.info("%d configurations in %.2f s", len(results), time.perf_counter() - start)
    tables = [(results, out), (timing, out_gen_time)]
    if out_selection is not None:
        from imprint.selection import SelectionSpec, select_configuration, selection_row

        start = time.perf_counter()
        chosen = select_configuration(
            train, split["train_label"], grid, seed, SelectionSpec.from_config(selection_section)
        )
        row = selection_row(chosen, results)
        log.info("selected %s in %.2f s: %s", chosen.selected_by, time.perf_counter() - start, row)
        tables.append((pd.DataFrame([row]).astype({"k": "Int64", "m": "Int64"}), out_selection))
    for table, path in tables:
        table.insert(0, "seed", seed)
        table.insert(0, "task", task)
        table.insert(0, "model", model)
        write_table(table, path)


def run_selection_summary(selection_table: str, out: str) -> None:
    from imprint.selection import selection_summary

    write_table(selection_summary(read_table(selection_table)), out)


def run_export_classifiers(
    tasks: Sequence[str],
    inputs: Mapping[str, str],
    outputs: Sequence[str],
    model_spec: Mapping[str, Any],
    grid_section: Mapping[str, Any],
    ls_lambda: float,
    config_sha256: Mapping[str, str],
) -> None:
    """Per task, the configuration selected for (model, task) at its first seed, fit on that
    seed's whole training split, as a classifier folder (:mod:`imprint.artifact`) named by class.

    ``inputs``: ``<kind>__<task>`` -> file for the kinds train (embeddings), task, selection,
    dataset (manifest) and nc1, and ``model`` (the model file) where the network was trained by
    the workflow: its weights travel with the classifiers. Each embeddings file and the model
    file are read once, however many tasks share them."""
    from imprint.models import model_source

    source = model_source(model_spec)
    carried = None
    if source.training_dataset(model_spec):
        import torch

        carried = torch.load(inputs["model"], map_location="cpu", weights_only=True)
    backbone = None if getattr(source, "reads_embeddings", False) else dict(model_spec)
    embeddings: dict[str, np.ndarray] = {}
    for task, out in zip(tasks, outputs, strict=True):
        train = inputs[f"train__{task}"]
        if train not in embeddings:
            embeddings[train] = _all_embeddings(train)
        _export_classifier(
            embeddings[train],
            {kind: inputs[f"{kind}__{task}"] for kind in ("task", "selection", "dataset", "nc1")},
            backbone,
            carried,
            grid_section,
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
    train_embeddings: str,
    task_files: Sequence[str],
    seeds: Sequence[int],
    model: str,
    task: str,
    out: str,
    variants: Sequence[str] = ("papyan",),
) -> None:
    """NC1 of a task's full train split (before n-shot subsampling), one row per seed and
    variant (see :func:`imprint.nc.nc1`)."""
    from imprint.nc import nc1

    embeddings = load_arrays(train_embeddings)["embeddings"]
    rows = []
    for seed, task_file in zip(seeds, task_files, strict=True):
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
    write_table(pd.DataFrame(rows), out)


def run_lowshot(
    model_spec: Mapping[str, Any],
    model_file: str,
    dataset_spec: Mapping[str, Any],
    dataset_manifest: str,
    embeddings: Mapping[str, str],
    task_spec: Mapping[str, Any],
    section: Mapping[str, Any],
    model: str,
    task: str,
    seed: int,
    out: str,
) -> None:
    """Qi et al.'s low-shot methods for one (model, low-shot task, seed); ``embeddings``: the
    cached ``train`` and ``test`` embeddings (read by the ``head`` scope only)."""
    from imprint.datasets import all_split_labels, class_ids_of, split_images
    from imprint.lowshot import (
        LowShotData,
        LowShotOptions,
        lowshot_scope,
        results_table,
        run_seed,
        task_classes,
    )
    from imprint.models import model_source, small_cnn

    scope = lowshot_scope(section["scope"], model_spec)
    options = LowShotOptions.from_config(section, scope, task_spec["n_shot"])
    labels = all_split_labels(dataset_spec, dataset_manifest)
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
        trained = source.load_with_head(model_spec, Path(model_file))
        data.network = trained[0]
        if model_spec.get("head", "cosine") == "cosine":
            data.base_head = trained[1]
        in_channels, dim = trained[0][0].in_channels, model_spec["embedding_dim"]
        data.fresh_network = lambda: small_cnn(in_channels, dim, 1)[0]
    elif scope == "full" or "imprint_aug" in options.methods:
        data.network = source.load(model_spec, Path(model_file))
    if data.network is not None:
        preprocess = source.preprocess(model_spec)
        data.train_images, data.test_images = (
            split_images(dataset_spec, dataset_manifest, split, transform=preprocess)
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
    table = results_table(rows, model=model, task=task, seed=seed, scope=scope, init=options.init)
    write_table(table, out)


def run_lowshot_summary(
    lowshot_table: str, out: str, paper: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Qi et al.'s Tables 1-2; ``paper``: published accuracies per low-shot task, set beside."""
    from imprint.stats import lowshot_summary

    write_table(lowshot_summary(read_table(lowshot_table), paper), out)


def run_concat(tables: Sequence[str], out: str) -> None:
    frames = [read_table(path) for path in tables]
    write_table(pd.concat(frames, ignore_index=True), out)


def run_summary(results_table: str, out: str) -> None:
    from imprint.stats import configuration_summary

    write_table(configuration_summary(read_table(results_table)), out)


def run_nc1_summary(nc1_table: str, out: str) -> None:
    from imprint.stats import nc1_summary

    write_table(nc1_summary(pd.read_csv(nc1_table)), out)


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
    results_table: str, nc1_table: str, k_values: Sequence[int], tasks: Sequence[str], out: str
) -> None:
    from imprint.stats import nc1_vs_gain

    table = nc1_vs_gain(
        read_table(results_table), primary_nc1(pd.read_csv(nc1_table)), k_values, tasks
    )
    for k, rows in table.groupby("k"):
        log.info(
            "k=%d: Spearman rho(NC1, gain) = %.3f (p = %.3g, %d points)",
            k,
            rows["spearman_rho"].iloc[0],
            rows["spearman_pvalue"].iloc[0],
            len(rows),
        )
    write_table(table, out)


def run_gen_time_summary(gen_time_table: str, out: str) -> None:
    from imprint.stats import gen_time_summary

    write_table(gen_time_summary(read_table(gen_time_table)), out)


def run_figure(
    figure: str, tables: Mapping[str, str], options: Mapping[str, Any], out_pdf: str, out_png: str
) -> None:
    """Draw one of :data:`imprint.figures.FIGURES` from its tables (argument name -> path)."""
    from imprint.figures import FIGURES, save_figure

    loaded = {name: read_table(path) for name, path in tables.items()}
    if "nc1" in loaded:
        loaded["nc1"] = primary_nc1(loaded["nc1"])
    fig = FIGURES[figure].plot(**loaded, **options)
    save_figure(fig, out_pdf, out_png)


def primary_nc1(nc1_rows: pd.DataFrame) -> pd.DataFrame:
    """The NC1 rows that figures draw: the textbook variant where it was computed, else the
    first one."""
    if "variant" not in nc1_rows:
        return nc1_rows
    variants = list(nc1_rows["variant"].unique())
    chosen = "papyan" if "papyan" in variants else variants[0]
    return nc1_rows[nc1_rows["variant"] == chosen].reset_index(drop=True)


def run_comparison(
    results_table: str,
    name: str,
    spec: Mapping[str, Any],
    alpha: float,
    posthoc: str,
    out_table: str,
    out_pdf: str,
    out_png: str,
    out_paper_csv: str | None = None,
    out_paper_tex: str | None = None,
) -> None:
    """A comparison's Friedman + post-hoc table and CD diagram, and (with ``out_paper_*``) the
    same comparison in the IMPRINT paper's table layout (:func:`imprint.stats.paper_table`)."""
    from imprint.figures import cd_diagram, save_figure
    from imprint.io import atomic_path
    from imprint.stats import (
        compare,
        comparison_matrix,
        comparison_table,
        paper_table,
        paper_table_latex,
    )

    results = read_table(results_table)
    matrix = comparison_matrix(results, name, spec)
    result = compare(matrix, alpha, posthoc)
    log.info("comparison %s: %s", name, result.note)
    write_table(comparison_table(result), out_table)
    fig, _ = cd_diagram(result, spec.get("title", name), alpha)
    save_figure(fig, out_pdf, out_png)
    if out_paper_csv is None or out_paper_tex is None:
        return
    table = paper_table(results, spec)
    write_table(table, out_paper_csv)
    with atomic_path(out_paper_tex) as tmp:
        tmp.write_text(paper_table_latex(table, spec.get("title", name)))
