import functools
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.basedir)
# Jobs import the library from this checkout: scripts, conda environments and cluster nodes all
# see it through PYTHONPATH (set here for child processes, not required from the user; every
# job re-reads this file), the Snakefile through sys.path.
sys.path.insert(0, str(REPO))
os.environ.update(
    PYTHONPATH=os.pathsep.join(part for part in (str(REPO), os.environ.get("PYTHONPATH")) if part),
    # Fixed hash seed: string-set order inside libraries (e.g. scikit-posthocs' CD diagrams)
    # then no longer varies between runs, so equal results give equal files.
    PYTHONHASHSEED="0",
)

from imprint.codehash import code_hash
from imprint.config import (
    NAME_PATTERN,
    ConfigError,
    check_config,
    check_inputs,
    check_results_owner,
    claim_results_root,
    finished_message,
    classifier_config_sha256,
    check_devices,
    lowshot_runs,
    model_lambda,
    results_root,
    task_seeds,
    validate_config,
)
from imprint.datasets import (
    dataset_input_digest,
    dataset_input_files,
    dataset_source,
    train_labels_if_known,
)
from imprint.figures import FIGURES, figure_caption, figure_plan
from imprint.io import files_size_mb
from imprint.lowshot import lowshot_scope, task_dataset as lowshot_task_dataset
from imprint.models import model_input_files, model_source


def results_path(path):
    """``path`` under this config's results folder (config key ``results``)."""
    return f"{RESULTS}/{path}"


# Before any job runs: the JSON schema (filling its defaults), then cross-references and facts
# about the datasets. One line naming the offending key, instead of a dump of the whole config.
# A job on a cluster node parses this file again: it still needs the schema's defaults, but the
# cross-checks (they read dataset labels and import torchvision) ran once, in the main process.
try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    RESULTS = results_root(config)
    if workflow.is_main_process:
        check_results_owner(RESULTS, workflow.overwrite_configfiles)
        # Files the config names: a dry run lists what is missing and plans on; a run stops
        # here, even where every output exists (they were made from what is gone).
        missing_inputs, input_notes = check_inputs(config, ".snakemake/imprint/images_checked")
        for line in [*input_notes, *missing_inputs]:
            print(f"note: {line}", file=sys.stderr)
        if missing_inputs and not workflow.output_settings.dryrun:
            raise ConfigError(
                f"{len(missing_inputs)} file(s) or folder(s) the config names do not exist "
                "(the notes above); put them there or drop what needs them"
            )
        check_config(
            config,
            # once per dataset, however many n-shot tasks use it
            train_labels=functools.cache(
                lambda dataset: train_labels_if_known(
                    config["datasets"][dataset],
                    results_path(f"datasets/{dataset}/manifest.json"),
                )
            ),
        )
except ConfigError as error:
    raise WorkflowError(f"invalid configuration: {error}") from None


onstart:
    # Once the executor is known, before the first job: a device asked for must be where the
    # jobs run (on a cluster that is its nodes, not this machine).
    if workflow.is_main_process and workflow.local_exec:
        try:
            check_devices(config)
        except ConfigError as error:
            raise WorkflowError(f"invalid configuration: {error}") from None
    if workflow.is_main_process:
        claim_results_root(RESULTS, workflow.overwrite_configfiles)


onsuccess:
    if workflow.is_main_process:
        print(finished_message(RESULTS, workflow.overwrite_configfiles), file=sys.stderr)


ENV = "../../envs/imprint.yaml"
SELECTION = config["selection"]["method"] != "none"
MODELS = sorted(config["models"])
TASKS = sorted(config["tasks"])
COMPARISONS = sorted(config["comparisons"])
FIGURE_PLAN = figure_plan(config)
NAME = NAME_PATTERN.strip("^$")


wildcard_constraints:
    dataset=NAME,
    model=NAME,
    task=NAME,
    split="train|test",
    seed=r"\d+",
    comparison="|".join(map(re.escape, COMPARISONS)) or "(?!)",
    figure="|".join(map(re.escape, FIGURES)),


def dataset_manifest(dataset):
    return results_path(f"datasets/{dataset}/manifest.json")


def dataset_components(dataset):
    """name -> (spec, manifest) of the datasets a pooled dataset is built from."""
    spec = config["datasets"][dataset]
    return {
        part: (config["datasets"][part], dataset_manifest(part))
        for part in dataset_source(spec).requires(spec)
    }


def task_dataset(task):
    return config["tasks"][task]["dataset"]


def embeddings_file(model, dataset, split):
    return results_path(f"embeddings/{model}/{dataset}/{split}.npz")


def model_training_dataset(model):
    spec = config["models"][model]
    return model_source(spec).training_dataset(spec)


def embeddings_are_read(model):
    """A precomputed model's embeddings job only reads arrays: one thread, no GPU."""
    return getattr(model_source(config["models"][model]), "reads_embeddings", False)


def embeddings_mem_mb(wildcards):
    """16 GB for a network's forward passes; a read-only job a few times the arrays it reads
    (the user's files of its dataset, an upper bound for one split)."""
    if not embeddings_are_read(wildcards.model):
        return 16000
    return max(
        1000,
        int(3 * files_size_mb(dataset_input_files(config["datasets"][wildcards.dataset]))) + 500,
    )


def model_inputs(wc):
    dataset = model_training_dataset(wc.model)
    inputs = {"dataset": dataset_manifest(dataset)} if dataset else {}
    weights_files = model_input_files(config["models"][wc.model])
    if weights_files:
        inputs["weights_file"] = weights_files
    return inputs


def task_files(task):
    return [results_path(f"tasks/{task}/seed{seed}.npz") for seed in task_seeds(config, task)]


def imprinting_tables():
    return [
        results_path(f"imprinting/{model}/{task}/seed{seed}.csv")
        for model in MODELS
        for task in TASKS
        for seed in task_seeds(config, task)
    ]


def gen_time_tables():
    return [path.replace(".csv", ".gen_time.csv") for path in imprinting_tables()]


def nc1_tables():
    return expand(results_path("nc1/{model}/{task}.csv"), model=MODELS, task=TASKS)


def selection_output():
    """The imprinting job's selection table, where the config selects (method not none): the
    configuration chosen on held-out training data, by the grid once per fold in the same job."""
    return (
        {"selection": results_path("selection/{model}/{task}/seed{seed}.csv")} if SELECTION else {}
    )


def selection_tables():
    return [
        path.replace(results_path("imprinting/"), results_path("selection/"))
        for path in imprinting_tables()
    ]


def exported_classifiers():
    return expand(results_path("classifiers/{model}/{task}"), model=MODELS, task=TASKS)


def export_inputs(wc):
    """A model's exported classifiers' data, per task (keys ``<kind>__<task>``): the first
    seed's task, selection and NC1, and the model file where the network was trained by the
    workflow (its weights travel with the classifiers)."""
    inputs = {}
    for task in TASKS:
        seed = task_seeds(config, task)[0]
        dataset = task_dataset(task)
        inputs |= {
            f"train__{task}": embeddings_file(wc.model, dataset, "train"),
            f"task__{task}": results_path(f"tasks/{task}/seed{seed}.npz"),
            f"selection__{task}": results_path(f"selection/{wc.model}/{task}/seed{seed}.csv"),
            f"dataset__{task}": dataset_manifest(dataset),
            f"nc1__{task}": results_path(f"nc1/{wc.model}/{task}.csv"),
        }
    if model_training_dataset(wc.model):
        inputs["model"] = results_path(f"models/{wc.model}.pt")
    return inputs


def lowshot_tables():
    return [
        results_path(f"lowshot/{model}/{task}/seed{seed}.csv")
        for model, task, seed in lowshot_runs(config)
    ]


def lowshot_dataset(task, model):
    return lowshot_task_dataset(config["lowshot"]["tasks"][task], config["models"][model])


def lowshot_inputs(wc):
    """A low-shot job's model and dataset, and for the 'head' scope the cached embeddings."""
    dataset = lowshot_dataset(wc.task, wc.model)
    inputs = {"model": results_path(f"models/{wc.model}.pt"), "dataset": dataset_manifest(dataset)}
    if lowshot_scope(config["lowshot"]["scope"], config["models"][wc.model]) == "head":
        inputs.update(
            {split: embeddings_file(wc.model, dataset, split) for split in ("train", "test")}
        )
    return inputs


def code(script):
    """A rule's ``code`` param: a hash of its script in scripts/ and of the library code that the
    script can run (imprint.codehash), so that editing that code reruns the rule."""
    return code_hash(REPO / "scripts" / script)


def table_mem_mb(wildcards, input):
    """Memory of a job that loads the results table: pandas takes about 8x the CSV's size, so 10x
    (measured with benchmarks/bench_statistics.py: 1.9 GB for a 251 MiB table)."""
    return max(2000, int(10 * files_size_mb(input)))


def figure_tables(wildcards):
    """The tables a figure reads: its plot function's argument names -> results/tables/ files."""
    tables = FIGURES[wildcards.figure].tables
    return {argument: results_path(f"tables/{table}.csv") for argument, table in tables.items()}


def figure_options(figure):
    """The figure's entry in the plan, or a clear error for a figure this config cannot draw."""
    if figure not in FIGURE_PLAN:
        raise WorkflowError(
            f"figure {figure!r} cannot be drawn from this configuration "
            f"(it draws {sorted(FIGURE_PLAN)}; see imprint.figures.figure_plan)"
        )
    return FIGURE_PLAN[figure]


def comparison_posthoc(comparison):
    """The comparison's own post-hoc test, else the one under 'statistics'."""
    return config["comparisons"][comparison].get("posthoc", config["statistics"]["posthoc"])


def final_outputs():
    return [
        results_path("tables/imprinting.csv"),
        results_path("tables/gen_time.csv"),
        results_path("tables/gen_time_summary.csv"),
        results_path("tables/summary.csv"),
        results_path("tables/nc1.csv"),
        results_path("tables/nc1_summary.csv"),
        *([results_path("tables/nc1_vs_gain.csv")] if "nc1_vs_gain" in FIGURE_PLAN else []),
        *expand(results_path("tables/{comparison}.csv"), comparison=COMPARISONS),
        *expand(
            results_path("cd_diagrams/{comparison}.{ext}"),
            comparison=COMPARISONS,
            ext=["pdf", "png"],
        ),
        *expand(
            results_path("paper_tables/{comparison}.{ext}"),
            comparison=COMPARISONS,
            ext=["csv", "tex"],
        ),
        *expand(results_path("figures/{figure}.{ext}"), figure=FIGURE_PLAN, ext=["pdf", "png"]),
        *(
            [results_path("tables/lowshot.csv"), results_path("tables/lowshot_summary.csv")]
            if lowshot_runs(config)
            else []
        ),
        *(
            [
                results_path("tables/selection.csv"),
                results_path("tables/selection_summary.csv"),
                *exported_classifiers(),
            ]
            if SELECTION
            else []
        ),
    ]
