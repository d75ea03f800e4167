"""Snakemake script of rule `export_classifiers`: the selected configuration of each (model,
task) as a classifier folder."""

from imprint.stages import run_export_classifiers, run_rule

run_rule(snakemake, run_export_classifiers, folders=list(snakemake.output))
