"""Snakemake script of rule `embeddings`: embed one dataset split with one model."""

from imprint.stages import logged, run_embed

with logged(snakemake.log[0], snakemake.threads):
    run_embed(
        snakemake.params.model_spec,
        snakemake.input.model,
        snakemake.params.dataset_spec,
        snakemake.input.dataset,
        snakemake.wildcards.split,
        snakemake.output[0],
        snakemake.params.embedding,
        snakemake.threads,
        snakemake.wildcards.model,
    )
