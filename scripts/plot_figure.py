"""Snakemake script of the figure_* rules: one figure as PDF and PNG."""

from imprint.stages import logged, run_figure

with logged(snakemake.log[0], snakemake.threads):
    run_figure(
        snakemake.params.figure,
        dict(snakemake.input.items()),
        snakemake.params.options,
        snakemake.output.pdf,
        snakemake.output.png,
    )
