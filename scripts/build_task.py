"""Snakemake script of rule `task`: index files of one task for one seed."""

from imprint.stages import logged, run_build_task

with logged(snakemake.log[0], snakemake.threads):
    run_build_task(
        snakemake.params.spec,
        snakemake.params.dataset_spec,
        snakemake.input.dataset,
        int(snakemake.wildcards.seed),
        snakemake.output[0],
    )
