"""Snakemake script of rule `selection_summary`."""

from imprint.stages import logged, run_selection_summary

with logged(snakemake.log[0], snakemake.threads):
    run_selection_summary(snakemake.input[0], snakemake.output[0])
