"""imprint-workflow: weight imprinting (GEN + NORM + AGG) on frozen foundation models.

Stages, each cached on disk under results/: datasets -> models -> embeddings -> tasks ->
imprinting -> nc1 -> statistics. See README.md.
"""

from snakemake.utils import min_version

min_version("8.20")


# The offline default runs when no --configfile is given. A --configfile replaces it instead of
# being merged into it (Snakemake's default would add the default's tasks to the user's).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/imprinting.smk"
include: "workflow/rules/nc1.smk"
include: "workflow/rules/statistics.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
