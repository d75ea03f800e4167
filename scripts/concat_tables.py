"""Snakemake script of rules `collect_*`: concatenate per-job tables into one."""

from imprint.stages import logged, run_concat

with logged(snakemake.log[0], snakemake.threads):
    run_concat(list(snakemake.input), snakemake.output[0])
