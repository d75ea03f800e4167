"""Snakemake script of rule `embeddings`: embed one dataset split with one model."""

from imprint.stages import run_embed, run_rule

run_rule(snakemake, run_embed)
