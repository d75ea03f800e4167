# One rule per figure of results/figures/: each reads its tables and calls
# imprint.figures through scripts/plot_figure.py. Which figures a config draws, and with which
# panels, comes from imprint.figures.figure_plan (see FIGURE_PLAN in common.smk).

# Small tables: drawn on the submitting machine rather than queued on a cluster. The accuracy
# figures read the whole results table and run as jobs.
localrules:
    figure_nc1,
    figure_gen_time,


rule figure_gen_vs_k:
    """Accuracy against k for every GEN method, best NORM, AGG max."""
    input:
        **figure_tables("gen_vs_k"),
    output:
        pdf="results/figures/gen_vs_k.pdf",
        png=report(
            "results/figures/gen_vs_k.png",
            caption="../report/figure_gen_vs_k.rst",
            category="Figures",
            labels={"figure": "gen_vs_k"},
        ),
    params:
        figure="gen_vs_k",
        options=FIGURE_PLAN.get("gen_vs_k", {}),
        code=source_hash("figures", "stats"),
    log:
        "results/logs/figures/gen_vs_k.log",
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    script:
        "../../scripts/plot_figure.py"


rule figure_few_shot:
    """Few-shot: accuracy against n for k-means k in {1, 5, 20} and k = n."""
    input:
        **figure_tables("few_shot"),
    output:
        pdf="results/figures/few_shot.pdf",
        png=report(
            "results/figures/few_shot.png",
            caption="../report/figure_few_shot.rst",
            category="Figures",
            labels={"figure": "few_shot"},
        ),
    params:
        figure="few_shot",
        options=FIGURE_PLAN.get("few_shot", {}),
        code=source_hash("figures", "stats"),
    log:
        "results/logs/figures/few_shot.log",
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    script:
        "../../scripts/plot_figure.py"


rule figure_nc1:
    """NC1 per task and model."""
    input:
        **figure_tables("nc1"),
    output:
        pdf="results/figures/nc1.pdf",
        png=report(
            "results/figures/nc1.png",
            caption="../report/figure_nc1.rst",
            category="Figures",
            labels={"figure": "nc1"},
        ),
    params:
        figure="nc1",
        options=FIGURE_PLAN.get("nc1", {}),
        code=source_hash("figures", "stats"),
    log:
        "results/logs/figures/nc1.log",
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    script:
        "../../scripts/plot_figure.py"


rule figure_d_in_1:
    """"d in 1" tasks: accuracy against k (peak at k = d) and NC1 against d."""
    input:
        **figure_tables("d_in_1"),
    output:
        pdf="results/figures/d_in_1.pdf",
        png=report(
            "results/figures/d_in_1.png",
            caption="../report/figure_d_in_1.rst",
            category="Figures",
            labels={"figure": "d_in_1"},
        ),
    params:
        figure="d_in_1",
        options=FIGURE_PLAN.get("d_in_1", {}),
        code=source_hash("figures", "stats"),
    log:
        "results/logs/figures/d_in_1.log",
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    script:
        "../../scripts/plot_figure.py"


rule figure_gen_time:
    """GEN wall time per method and k across groups."""
    input:
        **figure_tables("gen_time"),
    output:
        pdf="results/figures/gen_time.pdf",
        png=report(
            "results/figures/gen_time.png",
            caption="../report/figure_gen_time.rst",
            category="Figures",
            labels={"figure": "gen_time"},
        ),
    params:
        figure="gen_time",
        options=FIGURE_PLAN.get("gen_time", {}),
        code=source_hash("figures", "stats"),
    log:
        "results/logs/figures/gen_time.log",
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    script:
        "../../scripts/plot_figure.py"
