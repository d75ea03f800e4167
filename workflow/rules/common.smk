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


# Every result path is typed once, in one of these helpers: the rule that writes it calls the
# helper with wildcards ("{model}"), the rules and functions that read it with values.


def dataset_manifest(dataset):
    return results_path(f"datasets/{dataset}/manifest.json")


def model_file(model):
    return results_path(f"models/{model}.pt")


def embeddings_file(model, dataset, split):
    return results_path(f"embeddings/{model}/{dataset}/{split}.npz")


def task_file(task, seed):
    return results_path(f"tasks/{task}/seed{seed}.npz")


def imprinting_table(model, task, seed, kind=""):
    """A grid job's results (``kind`` ``""``) or GEN timings (``".gen_time"``)."""
    return results_path(f"imprinting/{model}/{task}/seed{seed}{kind}.csv")


def selection_table(model, task, seed):
    return results_path(f"selection/{model}/{task}/seed{seed}.csv")


def nc1_table(model, task):
    return results_path(f"nc1/{model}/{task}.csv")


def lowshot_table(model, task, seed):
    return results_path(f"lowshot/{model}/{task}/seed{seed}.csv")


def classifier_folder(model, task):
    return results_path(f"classifiers/{model}/{task}")


def table_file(name):
    """A table of results/tables/ (the collected, summarised and compared results)."""
    return results_path(f"tables/{name}.csv")


def figure_file(figure, ext):
    return results_path(f"figures/{figure}.{ext}")


def cd_diagram_file(comparison, ext):
    return results_path(f"cd_diagrams/{comparison}.{ext}")


def paper_table_file(comparison, ext):
    return results_path(f"paper_tables/{comparison}.{ext}")


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
                    dataset_manifest(dataset),
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


def dataset_components(dataset):
    """name -> (spec, manifest) of the datasets a pooled dataset is built from."""
    spec = config["datasets"][dataset]
    return {
        part: (config["datasets"][part], dataset_manifest(part))
        for part in dataset_source(spec).requires(spec)
    }


def task_dataset(task):
    return config["tasks"][task]["dataset"]


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
    inputs = {"manifest": dataset_manifest(dataset)} if dataset else {}
    weights_files = model_input_files(config["models"][wc.model])
    if weights_files:
        inputs["weights_file"] = weights_files
    return inputs


def task_files(task):
    return [task_file(task, seed) for seed in task_seeds(config, task)]


def grid_runs():
    """(model, task, seed) of every grid job."""
    return [
        (model, task, seed)
        for model in MODELS
        for task in TASKS
        for seed in task_seeds(config, task)
    ]


def imprinting_tables(kind=""):
    return [imprinting_table(*run, kind) for run in grid_runs()]


def nc1_tables():
    return [nc1_table(model, task) for model in MODELS for task in TASKS]


def selection_output():
    """The imprinting job's selection table, where the config selects (method not none): the
    configuration chosen on held-out training data, by the grid once per fold in the same job."""
    return {"selection": selection_table("{model}", "{task}", "{seed}")} if SELECTION else {}


def selection_tables():
    return [selection_table(*run) for run in grid_runs()]


def exported_classifiers():
    return [classifier_folder(model, task) for model in MODELS for task in TASKS]


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
            f"task__{task}": task_file(task, seed),
            f"selection__{task}": selection_table(wc.model, task, seed),
            f"dataset__{task}": dataset_manifest(dataset),
            f"nc1__{task}": nc1_table(wc.model, task),
        }
    if model_training_dataset(wc.model):
        inputs["network"] = model_file(wc.model)
    return inputs


def lowshot_tables():
    return [lowshot_table(model, task, seed) for model, task, seed in lowshot_runs(config)]


def lowshot_dataset(task, model):
    return lowshot_task_dataset(config["lowshot"]["tasks"][task], config["models"][model])


def lowshot_inputs(wc):
    """A low-shot job's model and dataset, and for the 'head' scope the cached embeddings."""
    dataset = lowshot_dataset(wc.task, wc.model)
    inputs = {"network": model_file(wc.model), "manifest": dataset_manifest(dataset)}
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
    return {argument: table_file(table) for argument, table in tables.items()}


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
    comparisons = [
        *map(table_file, COMPARISONS),
        *[cd_diagram_file(name, ext) for name in COMPARISONS for ext in ("pdf", "png")],
        *[paper_table_file(name, ext) for name in COMPARISONS for ext in ("csv", "tex")],
    ]
    tables = ["imprinting", "gen_time", "gen_time_summary", "summary", "nc1", "nc1_summary"]
    if "nc1_vs_gain" in FIGURE_PLAN:
        tables.append("nc1_vs_gain")
    if lowshot_runs(config):
        tables += ["lowshot", "lowshot_summary"]
    if SELECTION:
        tables += ["selection", "selection_summary"]
    return [
        *map(table_file, tables),
        *comparisons,
        *[figure_file(figure, ext) for figure in FIGURE_PLAN for ext in ("pdf", "png")],
        *(exported_classifiers() if SELECTION else []),
    ]
