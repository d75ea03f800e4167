"""Snakemake script of rule `nc1_vs_gain`: NC1 against the gain of k-means over the mean."""

from imprint.stages import run_nc1_vs_gain, run_rule

run_rule(snakemake, run_nc1_vs_gain)
