"""Snakemake script of rule `nc1_summary`: NC1 per (model, task) over seeds."""

from imprint.stages import run_nc1_summary, run_rule

run_rule(snakemake, run_nc1_summary)
