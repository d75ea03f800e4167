"""Snakemake script of rule `model`: obtain (or train) one foundation model."""

from imprint.stages import run_prepare_model, run_rule

run_rule(snakemake, run_prepare_model)
