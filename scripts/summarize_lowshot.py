"""Snakemake script of rule `lowshot_summary`: Qi et al.'s Tables 1-2 (mean ± std over seeds)."""

from imprint.stages import logged, run_lowshot_summary

with logged(snakemake.log[0], snakemake.threads):
    run_lowshot_summary(snakemake.input[0], snakemake.output[0], snakemake.params.paper)
