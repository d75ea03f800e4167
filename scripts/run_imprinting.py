"""Snakemake script of rule `imprinting`: the whole grid of one (model, task, seed)."""

from imprint.stages import run_imprinting, run_rule

run_rule(snakemake, run_imprinting)
