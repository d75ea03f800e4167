"""imprint-workflow: weight imprinting (GEN + NORM + AGG) on frozen foundation models.

Stages, each cached on disk under the config's results folder (key `results`; results/ for
config.yaml): datasets -> models -> embeddings -> tasks ->
imprinting -> nc1 -> statistics -> figures, and models -> low-shot (Qi et al.) -> figures.
See README.md; `snakemake --report report.html` after a run gathers every figure and table
with its caption.
"""

from snakemake.utils import min_version

min_version("8.20")


# The offline default runs when no --configfile is given. A --configfile replaces it instead of
# being merged into it (Snakemake's default would add the default's tasks to the user's).
if not workflow.overwrite_configfiles:
    # Snakemake's own loader would not say where a YAML error is.
    import sys

    from snakemake.exceptions import WorkflowError

    sys.path.insert(0, workflow.basedir)
    from imprint.config import ConfigError, load_config_file

    try:
        load_config_file("config.yaml")
    except ConfigError as error:
        raise WorkflowError(f"invalid configuration: {error}") from None

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/imprinting.smk"
include: "workflow/rules/nc1.smk"
include: "workflow/rules/lowshot.smk"
include: "workflow/rules/statistics.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
