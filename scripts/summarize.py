"""Snakemake script of rule `summary`: per-configuration statistics over all groups."""

from imprint.stages import run_rule, run_summary

run_rule(snakemake, run_summary)
