"""Snakemake script of rule `nc1_summary`: NC1 per (model, task) over seeds."""

from imprint.stages import logged, run_nc1_summary

with logged(snakemake.log[0], snakemake.threads):
    run_nc1_summary(snakemake.input[0], snakemake.output[0])
