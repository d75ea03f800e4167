"""Snakemake script of rule `selection_summary`."""

from imprint.stages import run_rule, run_selection_summary

run_rule(snakemake, run_selection_summary)
