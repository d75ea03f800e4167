"""The ``imprint`` command: a classifier from a folder of labelled images in seconds, without
Snakemake. Each subcommand parses its options, calls :mod:`imprint.app` and prints; results go
to stdout (``--format json`` / ``csv`` for machines), progress and notes to stderr.

Exit status: 0 on success, 1 when the input is wrong (one line saying which file or option),
2 for a usage error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from imprint.gen import GEN_METHODS, gen_method
from imprint.norm import NORM_INF, NORM_POST, NORM_PRE

FORMATS = ("table", "csv", "json")


class _Failure(click.ClickException):
    """An input error: printed as one line ``Error: ...``, exit status 1."""


def _fail_cleanly(function):
    """Turn the library's input errors into one-line failures (bugs still show a traceback)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from imprint.artifact import ArtifactError
        from imprint.backbone import ImageError
        from imprint.config import ConfigError

        global _results
        _results = sys.stdout
        try:
            # stdout carries the results (JSON, CSV): what libraries and model factories
            # print while loading goes to stderr with the progress bars
            with contextlib.redirect_stdout(sys.stderr):
                return function(*args, **kwargs)
        except (ArtifactError, ImageError, ConfigError, FileNotFoundError, ValueError) as error:
            raise _Failure(str(error).splitlines()[0]) from None

    return wrapper


#: Where results go: the command's stdout, taken before the work's own output is redirected.
_results = sys.stdout


def _out(text: str = "", nl: bool = True) -> None:
    click.echo(text, file=_results, nl=nl)


def _note(message: str) -> None:
    click.echo(message, err=True)


def _report_skipped(skipped) -> None:
    for path, why in skipped:
        _note(f"skipped {path}: {why}")


def _embed_options(batch_size: str, device: str, quiet: bool) -> dict[str, Any]:
    return {
        "batch_size": batch_size if batch_size == "auto" else int(batch_size),
        "device": device,
        "progress": not quiet,
    }


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--model-option")
        options[key] = yaml.safe_load(value)
    return options


def _emit(frame, fmt: str) -> None:
    if fmt == "json":
        _out(frame.to_json(orient="records", indent=2))
    elif fmt == "csv":
        _out(frame.to_csv(index=False), nl=False)
    else:
        _out(frame.to_string(index=False))


def _load(path: str):
    from imprint.artifact import load_artifact

    return load_artifact(path)


embedding_options = [
    click.option(
        "--skip-unreadable",
        is_flag=True,
        help="Leave out images that cannot be read (each is listed on stderr) instead of stopping.",
    ),
    click.option(
        "--batch-size", default="auto", show_default=True, help="Images per batch, or 'auto'."
    ),
    click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="Where the backbone runs ('auto': CUDA when present).",
    ),
    click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
]


def with_embedding_options(function):
    for option in reversed(embedding_options):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imprint-workflow")
def main() -> None:
    """Weight imprinting: a classifier from a frozen backbone and a folder of labelled images,
    with no gradient descent.

    \b
    imprint fit IMAGES/ --model torchvision:resnet18 -o clf/
    imprint predict clf/ photo.jpg more_photos/
    imprint add clf/ NEW_CLASS/
    """


@main.command()
@click.argument("image_dir", type=click.Path(file_okay=False))
@click.option(
    "--model",
    "model",
    required=True,
    help="Backbone: SOURCE:NAME (torchvision:resnet18, timm:convnext_tiny, "
    "python:package.module:function), 'pixels', or a YAML/JSON file with a model spec as under "
    "'models:' in the workflow config.",
)
@click.option(
    "-O",
    "--model-option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A key of the model spec (weights=IMAGENET1K_V1, checkpoint=w.pth, layer=layer3, "
    "image_size=224, pretrained=false, ...); repeatable.",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="Classifier folder to write."
)
@click.option("--gen", type=click.Choice(GEN_METHODS), default="mean", show_default=True)
@click.option(
    "--k", type=click.IntRange(min=1), default=1, show_default=True, help="Proxies per class."
)
@click.option("--norm-pre", type=click.Choice(NORM_PRE), default="l2", show_default=True)
@click.option("--norm-post", type=click.Choice(NORM_POST), default="l2", show_default=True)
@click.option("--norm-inf", type=click.Choice(NORM_INF), default="l2", show_default=True)
@click.option("--agg", type=click.Choice(["max", "mnn"]), default="max", show_default=True)
@click.option(
    "--m", type=click.IntRange(min=1), default=1, show_default=True, help="Neighbours of mnn."
)
@click.option(
    "--select",
    type=click.Choice(["cv", "holdout"]),
    default=None,
    help="Choose GEN/k/NORM/AGG/m on held-out images of IMAGE_DIR instead of the options "
    "above (every configuration of the IMPRINT paper's grid, or --grid's).",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option(
    "--grid",
    "grid_file",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML file with an 'imprinting:' section as in the workflow config, for --select.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--keep-embeddings",
    is_flag=True,
    help="Store the training embeddings, so that 'imprint add' can extend classes whose GEN "
    "needs them (kmeans, kmedoids, ...).",
)
@click.option("--include-backbone", is_flag=True, help="Store the backbone's weights too.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_embedding_options
@_fail_cleanly
def fit(
    image_dir,
    model,
    model_options,
    output,
    gen,
    k,
    norm_pre,
    norm_post,
    norm_inf,
    agg,
    m,
    select,
    folds,
    grid_file,
    seed,
    keep_embeddings,
    include_backbone,
    as_json,
    skip_unreadable,
    batch_size,
    device,
    quiet,
):
    """Imprint a classifier from IMAGE_DIR, one sub-folder of images per class."""
    import time

    from imprint.app import SELECTION_GRID, describe, fit_folder
    from imprint.artifact import save_artifact
    from imprint.backbone import parse_model_spec
    from imprint.selection import SelectionSpec

    spec = parse_model_spec(model, _parse_options(model_options))
    grid = SELECTION_GRID if grid_file is None else _grid_from_file(grid_file)
    start = time.perf_counter()
    artifact, data = fit_folder(
        image_dir,
        spec,
        configuration={
            "gen": gen,
            "k": k,
            "norm_pre": norm_pre,
            "norm_post": norm_post,
            "norm_inf": norm_inf,
            "agg": agg,
            "m": m,
        },
        select=SelectionSpec(select, folds) if select else None,
        grid=grid,
        seed=seed,
        keep_embeddings=keep_embeddings,
        include_backbone=include_backbone,
        skip_unreadable=skip_unreadable,
        **_embed_options(batch_size, device, quiet),
    )
    _report_skipped(data.skipped)
    save_artifact(output, artifact, include_embeddings=keep_embeddings)
    summary = {**describe(artifact), "output": str(output), "seconds": time.perf_counter() - start}
    if as_json:
        _out(json.dumps(summary, indent=2, default=str))
        return
    configuration = ", ".join(f"{key}={value}" for key, value in summary["configuration"].items())
    _out(
        f"{output}: {len(summary['classes'])} classes from {len(data.labels)} images "
        f"({configuration}) in {summary['seconds']:.1f} s"
    )
    selection = artifact.provenance.get("selection")
    if selection:
        _out(
            f"chosen by {selection['selected_by']} over {selection['grid_size']} configurations: "
            f"validation accuracy {selection['validation_accuracy']:.4f}"
        )


def _grid_from_file(path: str):
    import yaml

    from imprint.config import ConfigError
    from imprint.grid import Grid

    section = (yaml.safe_load(Path(path).read_text()) or {}).get("imprinting")
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: no 'imprinting:' section")
    try:
        return Grid.from_config(section, section.get("ls_lambda", 1e-4))
    except KeyError as error:
        raise ConfigError(f"{path}: 'imprinting:' lacks the key {error}") from None


@main.command()
@click.argument("classifier", type=click.Path(file_okay=False))
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--top", type=click.IntRange(min=1), default=1, show_default=True, help="Classes per image."
)
@click.option(
    "--reject-below",
    type=float,
    default=None,
    help="Answer 'unknown' where the best class score is under this (open-set rejection; with "
    "L2 NORMpost and NORMinf the score is a cosine similarity).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@with_embedding_options
@_fail_cleanly
def predict(classifier, images, top, reject_below, fmt, skip_unreadable, batch_size, device, quiet):
    """Class names and scores of IMAGES (files, or folders searched recursively)."""
    from imprint.app import predict_paths

    table, skipped = predict_paths(
        _load(classifier),
        images,
        top,
        reject_below,
        skip_unreadable,
        **_embed_options(batch_size, device, quiet),
    )
    _report_skipped(skipped)
    _emit(table, fmt)


@main.command()
@click.argument("classifier", type=click.Path(file_okay=False))
@click.argument("test_dir", type=click.Path(file_okay=False))
@click.option(
    "--unknown",
    "unknown_dirs",
    multiple=True,
    type=click.Path(),
    help="Images of classes the classifier does not know: reports how a rejection threshold "
    "trades accuracy against rejected unknowns. Repeatable.",
)
@click.option("--reject-below", type=float, default=None, help="Rejection threshold to evaluate.")
@click.option(
    "--confusion", type=click.Path(dir_okay=False), help="Write the confusion matrix as PNG."
)
@click.option(
    "--tradeoff-csv", type=click.Path(dir_okay=False), help="Write the rejection trade-off table."
)
@click.option(
    "--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True
)
@with_embedding_options
@_fail_cleanly
def evaluate(
    classifier,
    test_dir,
    unknown_dirs,
    reject_below,
    confusion,
    tradeoff_csv,
    fmt,
    skip_unreadable,
    batch_size,
    device,
    quiet,
):
    """Accuracy and per-class precision/recall on TEST_DIR (one sub-folder per class)."""
    from imprint.app import evaluate_folder
    from imprint.io import write_table

    report = evaluate_folder(
        _load(classifier),
        test_dir,
        unknown_dirs,
        reject_below,
        confusion,
        skip_unreadable,
        **_embed_options(batch_size, device, quiet),
    )
    _report_skipped(report.pop("skipped"))
    tradeoff = report.get("tradeoff")
    if tradeoff_csv and tradeoff is not None:
        write_table(tradeoff, tradeoff_csv)
    if fmt == "json":
        out = {
            key: value.to_dict(orient="records") if hasattr(value, "to_dict") else value
            for key, value in report.items()
        }
        _out(json.dumps(out, indent=2, default=float))
        return
    _out(f"accuracy {report['accuracy']:.4f} on {report['n_images']} images")
    if "rejected" in report:
        _out(f"rejected below {reject_below}: {report['rejected']:.4f} of the known images")
    _out(report["per_class"].to_string(index=False, float_format="%.4f"))
    if tradeoff is not None:
        _out(
            f"known vs {report['n_unknown']} unknown images: AUROC of the best score "
            f"{report['unknown_auroc']:.4f}"
        )
        if "unknown_rejected" in report:
            _out(f"unknown images rejected below {reject_below}: {report['unknown_rejected']:.4f}")
        rows = tradeoff.iloc[:: max(1, len(tradeoff) // 10)]
        _out(rows.to_string(index=False, float_format="%.4f"))
    if confusion:
        _out(f"confusion matrix: {confusion}")


@main.command()
@click.argument("classifier", type=click.Path(file_okay=False))
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "-o", "--output", type=click.Path(), help="Write the grown classifier here (default: in place)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_embedding_options
@_fail_cleanly
def add(classifier, dirs, output, as_json, skip_unreadable, batch_size, device, quiet):
    """Add classes, or images of existing classes, from DIRS: each a folder of class folders,
    or one folder of images named as its class. Other classes' proxies are not touched."""
    import time

    from imprint.app import add_folders
    from imprint.artifact import save_artifact

    start = time.perf_counter()
    artifact = _load(classifier)
    summary = add_folders(
        artifact, dirs, skip_unreadable, **_embed_options(batch_size, device, quiet)
    )
    _report_skipped(summary.pop("skipped"))
    kept = artifact.classifier.class_embeddings_ is not None
    save_artifact(output or classifier, artifact, include_embeddings=kept)
    summary["seconds"] = time.perf_counter() - start
    if as_json:
        _out(json.dumps(summary, indent=2))
        return
    for name in summary["added"]:
        _out(f"added class {name!r} ({summary['images'][name]} images)")
    for name in summary["extended"]:
        _out(f"extended class {name!r} with {summary['images'][name]} images")
    if not gen_method(artifact.classifier.gen).per_class:
        _note(f"GEN {artifact.classifier.gen} solved again for all classes: every class changed")
    _out(f"{output or classifier}: {len(artifact.classes)} classes")


@main.command()
@click.argument("classifier", type=click.Path(file_okay=False))
@click.option(
    "--onnx",
    "onnx_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="ONNX file to write.",
)
@click.option(
    "--check",
    "check_images",
    multiple=True,
    type=click.Path(),
    help="Images to compare onnxruntime's predictions with PyTorch's on (default: random inputs).",
)
@click.option("--opset", type=int, default=18, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_fail_cleanly
def export(classifier, onnx_file, check_images, opset, as_json):
    """Backbone and head as one ONNX graph: preprocessed images in, class scores out."""
    from imprint.app import export_onnx

    result = export_onnx(_load(classifier), onnx_file, check_images, opset)
    if as_json:
        _out(json.dumps(result, indent=2))
        return
    _out(
        f"{onnx_file}: input 'image' {result['input_shape']}, output 'scores' "
        f"(exported with {result['exporter']}); onnxruntime agrees on "
        f"{result['top1_agreement']:.2%} of {result['checked_on']} inputs (largest score "
        f"difference {result['max_abs_score_difference']:.2e})"
    )


@main.command()
@click.argument("classifier", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@_fail_cleanly
def info(classifier, as_json):
    """What a classifier folder holds."""
    from imprint.app import describe

    about = describe(_load(classifier))
    if as_json:
        _out(json.dumps(about, indent=2, default=str))
        return
    _out(f"classes ({len(about['classes'])}):")
    for name, images, proxies in zip(
        about["classes"], about["images_per_class"], about["proxies_per_class"], strict=True
    ):
        _out(f"  {name}: {images} images, {proxies} proxies")
    configuration = ", ".join(f"{key}={value}" for key, value in about["configuration"].items())
    _out(f"configuration: {configuration} (seed {about['seed']})")
    _out(f"embedding dimension: {about['embedding_dim']}")
    weights = "included" if about["backbone_weights_included"] else "not included"
    _out(f"backbone: {json.dumps(about['backbone'])} (weights {weights})")
    _out(f"training embeddings kept: {'yes' if about['embeddings_kept'] else 'no'}")
    for key, value in about["provenance"].items():
        _out(f"{key}: {json.dumps(value, default=str)}")


@main.command("check-config")
@click.argument("config_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_fail_cleanly
def check_config_command(config_files):
    """Check workflow config files as a run would before its first job: YAML syntax (file and
    line), the schema, the files they name, classes and cross-references."""
    from imprint.config import check_config_file

    for path in config_files:
        config, notes = check_config_file(path)
        for line in notes:
            _note(line)
        counts = ", ".join(
            f"{len(config[section])} {section}" for section in ("datasets", "models", "tasks")
        )
        _out(f"{path}: valid ({counts}; results in {config['results']}/)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
