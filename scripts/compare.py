"""Snakemake script of rule `comparison`: Friedman + Nemenyi, table and CD diagram."""

from imprint.stages import logged, run_comparison

with logged(snakemake.log[0], snakemake.threads):
    run_comparison(
        snakemake.input[0],
        snakemake.wildcards.comparison,
        snakemake.params.spec,
        snakemake.params.alpha,
        snakemake.output.table,
        snakemake.output.diagram,
    )
