"""Snakemake script of rule `lowshot`: Qi et al.'s methods for one (model, low-shot task, seed)."""

from imprint.stages import run_lowshot, run_rule

run_rule(snakemake, run_lowshot)
