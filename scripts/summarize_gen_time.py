"""Snakemake script of rule `gen_time_summary`: GEN time per method across groups."""

from imprint.stages import run_gen_time_summary, run_rule

run_rule(snakemake, run_gen_time_summary)
