"""Snakemake script of rules `collect_*`: concatenate per-job tables into one."""

from imprint.stages import run_concat, run_rule

run_rule(snakemake, run_concat)
