"""Snakemake script of rule `figure`: one figure as PDF and PNG."""

from imprint.stages import logged, run_figure

with logged(snakemake.log[0], snakemake.threads):
    run_figure(
        snakemake.wildcards.figure,
        dict(snakemake.input.items()),
        snakemake.params.options,
        snakemake.output.pdf,
        snakemake.output.png,
    )
