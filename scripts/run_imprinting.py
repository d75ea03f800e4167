"""Snakemake script of rule `imprinting`: the whole grid of one (model, task, seed)."""

from imprint.stages import logged, run_imprinting

with logged(snakemake.log[0], snakemake.threads):
    run_imprinting(
        snakemake.input.train,
        snakemake.input.test,
        snakemake.input.task,
        snakemake.params.grid,
        snakemake.params.ls_lambda,
        snakemake.wildcards.model,
        snakemake.wildcards.task,
        int(snakemake.wildcards.seed),
        snakemake.output.results,
        snakemake.output.gen_time,
        snakemake.params.selection,
        snakemake.output.get("selection"),
    )
