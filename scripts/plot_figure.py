"""Snakemake script of rule `figure`: one figure as PDF and PNG."""

from imprint.stages import run_figure, run_rule

run_rule(snakemake, run_figure)
