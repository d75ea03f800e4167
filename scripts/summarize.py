"""Snakemake script of rule `summary`: per-configuration statistics over all groups."""

from imprint.stages import logged, run_summary

with logged(snakemake.log[0], snakemake.threads):
    run_summary(snakemake.input[0], snakemake.output[0])
