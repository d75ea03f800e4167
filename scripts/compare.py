"""Snakemake script of rule `comparison`: Friedman + post-hoc test, table and CD diagram, and
the comparison in the paper's table layout."""

from imprint.stages import logged, run_comparison

with logged(snakemake.log[0], snakemake.threads):
    run_comparison(
        snakemake.input[0],
        snakemake.wildcards.comparison,
        snakemake.params.spec,
        snakemake.params.alpha,
        snakemake.params.posthoc,
        snakemake.output.table,
        snakemake.output.pdf,
        snakemake.output.png,
        snakemake.output.paper_csv,
        snakemake.output.paper_tex,
    )
