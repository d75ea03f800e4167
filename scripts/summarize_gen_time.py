"""Snakemake script of rule `gen_time_summary`: GEN time per method across groups."""

from imprint.stages import logged, run_gen_time_summary

with logged(snakemake.log[0], snakemake.threads):
    run_gen_time_summary(snakemake.input[0], snakemake.output[0])
