"""Snakemake script of rule `export_classifiers`: the selected configuration of each (model,
task) as a classifier folder."""

from imprint.stages import logged, run_export_classifier

with logged(snakemake.log[0], snakemake.threads):
    for task, out in zip(snakemake.params.tasks, snakemake.output, strict=True):
        run_export_classifier(
            snakemake.input[f"train__{task}"],
            snakemake.input[f"task__{task}"],
            snakemake.input[f"selection__{task}"],
            snakemake.input[f"dataset__{task}"],
            snakemake.input[f"nc1__{task}"],
            snakemake.params.model_spec,
            snakemake.input.get("model"),
            snakemake.params.grid,
            snakemake.params.ls_lambda,
            snakemake.params.config_sha256[task],
            out,
        )
