"""Snakemake script of rule `export_classifiers`: the selected configuration of each (model,
task) as a classifier folder."""

from imprint.stages import logged, run_export_classifiers

with logged(snakemake.log[0], snakemake.threads):
    run_export_classifiers(
        snakemake.params.tasks,
        dict(snakemake.input.items()),
        list(snakemake.output),
        snakemake.params.model_spec,
        snakemake.params.grid,
        snakemake.params.ls_lambda,
        snakemake.params.config_sha256,
    )
