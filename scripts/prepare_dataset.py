"""Snakemake script of rule `dataset`: obtain one dataset into its cache folder."""

from imprint.stages import run_prepare_dataset, run_rule

run_rule(snakemake, run_prepare_dataset)
