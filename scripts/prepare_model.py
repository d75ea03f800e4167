"""Snakemake script of rule `model`: obtain (or train) one foundation model."""

from imprint.stages import logged, run_prepare_model

with logged(snakemake.log[0], snakemake.threads):
    run_prepare_model(
        snakemake.params.spec,
        snakemake.output[0],
        snakemake.params.dataset_spec,
        snakemake.input.get("dataset"),
        snakemake.threads,
    )
