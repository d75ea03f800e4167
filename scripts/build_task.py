"""Snakemake script of rule `task`: index files of one task for one seed."""

from imprint.stages import run_build_task, run_rule

run_rule(snakemake, run_build_task)
