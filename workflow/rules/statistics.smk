localrules:
    collect_imprinting,
    collect_gen_time,
    collect_nc1,
    collect_selection,
    gen_time_summary,
    selection_summary,


rule collect_imprinting:
    """All imprinting results in one tidy table: one row per configuration run."""
    input:
        tables=imprinting_tables(),
    output:
        table=table_file("imprinting"),
    log:
        results_path("logs/statistics/collect_imprinting.log"),
    conda:
        ENV
    params:
        code=code("concat_tables.py"),
    script:
        "../../scripts/concat_tables.py"


rule collect_gen_time:
    """GEN wall time per (model, task, seed, gen, k, norm_pre): a measurement of the machine,
    kept apart from the reproducible results."""
    input:
        tables=imprinting_tables(".gen_time"),
    output:
        table=report(
            table_file("gen_time"),
            caption="../report/gen_time.rst",
            category="GEN time",
            labels={"table": "gen_time"},
        ),
    log:
        results_path("logs/statistics/collect_gen_time.log"),
    conda:
        ENV
    params:
        code=code("concat_tables.py"),
    script:
        "../../scripts/concat_tables.py"


rule collect_nc1:
    input:
        tables=nc1_tables(),
    output:
        table=table_file("nc1"),
    log:
        results_path("logs/statistics/collect_nc1.log"),
    conda:
        ENV
    params:
        code=code("concat_tables.py"),
    script:
        "../../scripts/concat_tables.py"


rule collect_selection:
    """The configuration chosen on held-out training data per (model, task, seed), with its
    validation and honest test accuracy: one row per run."""
    input:
        tables=selection_tables(),
    output:
        table=table_file("selection"),
    log:
        results_path("logs/statistics/collect_selection.log"),
    conda:
        ENV
    params:
        code=code("concat_tables.py"),
    script:
        "../../scripts/concat_tables.py"


rule selection_summary:
    """Per (model, task): honest test accuracy of the selected configurations against the best
    test accuracy of any configuration, means over seeds."""
    input:
        selection=rules.collect_selection.output.table,
    output:
        summary=report(
            table_file("selection_summary"),
            caption="../report/selection_summary.rst",
            category="Model selection",
            labels={"table": "selection_summary"},
        ),
    log:
        results_path("logs/statistics/selection_summary.log"),
    conda:
        ENV
    params:
        code=code("summarize_selection.py"),
    script:
        "../../scripts/summarize_selection.py"


rule nc1_summary:
    """NC1 per (model, task): mean and std over seeds."""
    input:
        nc1=rules.collect_nc1.output.table,
    output:
        summary=report(
            table_file("nc1_summary"),
            caption="../report/nc1_summary.rst",
            category="Neural collapse",
            labels={"table": "nc1_summary"},
        ),
    log:
        results_path("logs/statistics/nc1_summary.log"),
    conda:
        ENV
    params:
        code=code("summarize_nc1.py"),
    script:
        "../../scripts/summarize_nc1.py"


rule summary:
    """Per configuration: median over seeds, mean and std over groups, mean rank."""
    input:
        results=rules.collect_imprinting.output.table,
    output:
        summary=report(
            table_file("summary"),
            caption="../report/summary.rst",
            category="All configurations",
            labels={"table": "summary"},
        ),
    log:
        results_path("logs/statistics/summary.log"),
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    params:
        code=code("summarize.py"),
    script:
        "../../scripts/summarize.py"


rule comparison:
    """Friedman test over (model, task) groups, then Nemenyi or Wilcoxon-Holm; table + CD
    diagram; the comparison in the paper's table layout (CSV and LaTeX)."""
    input:
        results=rules.collect_imprinting.output.table,
    output:
        table=report(
            table_file("{comparison}"),
            caption="../report/comparison_table.rst",
            category="Comparisons",
            subcategory="{comparison}",
            labels={"comparison": "{comparison}", "file": "table"},
        ),
        pdf=cd_diagram_file("{comparison}", "pdf"),
        png=report(
            cd_diagram_file("{comparison}", "png"),
            caption="../report/cd_diagram.rst",
            category="Comparisons",
            subcategory="{comparison}",
            labels={"comparison": "{comparison}", "file": "CD diagram"},
        ),
        paper_csv=report(
            paper_table_file("{comparison}", "csv"),
            caption="../report/paper_table.rst",
            category="Comparisons",
            subcategory="{comparison}",
            labels={"comparison": "{comparison}", "file": "paper layout"},
        ),
        paper_tex=paper_table_file("{comparison}", "tex"),
    log:
        results_path("logs/statistics/comparison_{comparison}.log"),
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    params:
        spec=lookup(dpath="comparisons/{comparison}", within=config),
        alpha=config["statistics"]["alpha"],
        posthoc=lambda wc: comparison_posthoc(wc.comparison),
        code=code("compare.py"),
    script:
        "../../scripts/compare.py"


rule gen_time_summary:
    """GEN wall time per (gen, k): mean, median, min and max across (model, task) groups."""
    input:
        gen_time=rules.collect_gen_time.output.table,
    output:
        summary=report(
            table_file("gen_time_summary"),
            caption="../report/gen_time_summary.rst",
            category="GEN time",
            labels={"table": "gen_time_summary"},
        ),
    log:
        results_path("logs/statistics/gen_time_summary.log"),
    conda:
        ENV
    params:
        code=code("summarize_gen_time.py"),
    script:
        "../../scripts/summarize_gen_time.py"


rule nc1_vs_gain:
    """Per (model, task): NC1 against the gain of k-means over the mean, Spearman per k."""
    input:
        results=rules.collect_imprinting.output.table,
        nc1=rules.collect_nc1.output.table,
    output:
        table=report(
            table_file("nc1_vs_gain"),
            caption="../report/nc1_vs_gain.rst",
            category="Neural collapse",
            labels={"table": "nc1_vs_gain"},
        ),
    log:
        results_path("logs/statistics/nc1_vs_gain.log"),
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    params:
        k=FIGURE_PLAN.get("nc1_vs_gain", {}).get("k", []),
        tasks=FIGURE_PLAN.get("nc1_vs_gain", {}).get("tasks", []),
        code=code("nc1_vs_gain.py"),
    script:
        "../../scripts/nc1_vs_gain.py"
