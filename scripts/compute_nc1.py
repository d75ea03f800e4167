"""Snakemake script of rule `nc1`: NC1 of one (model, task), one row per seed."""

from imprint.stages import run_nc1, run_rule

run_rule(snakemake, run_nc1)
