"""Snakemake script of rule `nc1_vs_gain`: NC1 against the gain of k-means over the mean."""

from imprint.stages import logged, run_nc1_vs_gain

with logged(snakemake.log[0], snakemake.threads):
    run_nc1_vs_gain(
        snakemake.input.results,
        snakemake.input.nc1,
        snakemake.params.k,
        snakemake.params.tasks,
        snakemake.output[0],
    )
