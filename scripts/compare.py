"""Snakemake script of rule `comparison`: Friedman + post-hoc test, table and CD diagram, and
the comparison in the paper's table layout."""

from imprint.stages import run_comparison, run_rule

run_rule(snakemake, run_comparison)
