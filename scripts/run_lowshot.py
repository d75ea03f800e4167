"""Snakemake script of rule `lowshot`: Qi et al.'s methods for one (model, low-shot task, seed)."""

from imprint.stages import logged, run_lowshot

with logged(snakemake.log[0], snakemake.threads):
    run_lowshot(
        snakemake.params.model_spec,
        snakemake.input.model,
        snakemake.params.dataset_spec,
        snakemake.input.dataset,
        {split: snakemake.input.get(split) for split in ("train", "test")},
        snakemake.params.task_spec,
        snakemake.params.section,
        snakemake.wildcards.model,
        snakemake.wildcards.task,
        int(snakemake.wildcards.seed),
        snakemake.output[0],
    )
