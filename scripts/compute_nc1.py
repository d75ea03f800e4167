"""Snakemake script of rule `nc1`: NC1 of one (model, task), one row per seed."""

from imprint.stages import logged, run_nc1

with logged(snakemake.log[0], snakemake.threads):
    run_nc1(
        snakemake.input.train,
        snakemake.input.tasks,
        snakemake.params.seeds,
        snakemake.wildcards.model,
        snakemake.wildcards.task,
        snakemake.output[0],
        snakemake.params.variants,
    )
