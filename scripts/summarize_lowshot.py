"""Snakemake script of rule `lowshot_summary`: Qi et al.'s Tables 1-2 (mean ± std over seeds)."""

from imprint.stages import run_lowshot_summary, run_rule

run_rule(snakemake, run_lowshot_summary)
