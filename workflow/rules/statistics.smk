localrules:
    collect_imprinting,
    collect_gen_time,
    collect_nc1,


rule collect_imprinting:
    """All imprinting results in one tidy table: one row per configuration run."""
    input:
        imprinting_tables(),
    output:
        "results/tables/imprinting.csv",
    log:
        "results/logs/statistics/collect_imprinting.log",
    conda:
        ENV
    script:
        "../../scripts/concat_tables.py"


rule collect_gen_time:
    """GEN wall time per (model, task, seed, gen, k, norm_pre): a measurement of the machine,
    kept apart from the reproducible results."""
    input:
        gen_time_tables(),
    output:
        "results/tables/gen_time.csv",
    log:
        "results/logs/statistics/collect_gen_time.log",
    conda:
        ENV
    script:
        "../../scripts/concat_tables.py"


rule collect_nc1:
    input:
        nc1_tables(),
    output:
        "results/tables/nc1.csv",
    log:
        "results/logs/statistics/collect_nc1.log",
    conda:
        ENV
    script:
        "../../scripts/concat_tables.py"


rule nc1_summary:
    """NC1 per (model, task): mean and std over seeds."""
    input:
        "results/tables/nc1.csv",
    output:
        "results/tables/nc1_summary.csv",
    params:
        code=source_hash("stats"),
    log:
        "results/logs/statistics/nc1_summary.log",
    conda:
        ENV
    script:
        "../../scripts/summarize_nc1.py"


rule summary:
    """Per configuration: median over seeds, mean and std over groups, mean rank."""
    input:
        "results/tables/imprinting.csv",
    output:
        "results/tables/summary.csv",
    params:
        code=source_hash("stats", "grid"),
    log:
        "results/logs/statistics/summary.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
    script:
        "../../scripts/summarize.py"


rule comparison:
    """Friedman + Nemenyi over (model, task) groups; a table and a CD diagram."""
    input:
        "results/tables/imprinting.csv",
    output:
        table="results/tables/{comparison}.csv",
        diagram="results/cd_diagrams/{comparison}.pdf",
    params:
        spec=lambda wc: config["comparisons"][wc.comparison],
        alpha=config["statistics"]["alpha"],
        code=source_hash("stats", "grid"),
    log:
        "results/logs/statistics/comparison_{comparison}.log",
    conda:
        ENV
    resources:
        mem_mb=4000,
    script:
        "../../scripts/compare.py"
