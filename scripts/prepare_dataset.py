"""Snakemake script of rule `dataset`: obtain one dataset into its cache folder."""

from imprint.stages import logged, run_prepare_dataset

with logged(snakemake.log[0], snakemake.threads):
    run_prepare_dataset(
        snakemake.params.spec, snakemake.output.manifest, snakemake.params.components
    )
