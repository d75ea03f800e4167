# One rule draws every figure of results/figures/: the figures are registered in
# imprint.figures.FIGURES (plot function, tables read, caption); which ones a config draws, with
# which panels, comes from imprint.figures.figure_plan (FIGURE_PLAN in common.smk).


rule figure:
    """One figure as PDF and PNG, from its tables."""
    input:
        unpack(figure_tables),
    output:
        pdf=figure_file("{figure}", "pdf"),
        png=report(
            figure_file("{figure}", "png"),
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        results_path("logs/figures/{figure}.log"),
    conda:
        ENV
    resources:
        mem_mb=table_mem_mb,
    params:
        options=lambda wc: figure_options(wc.figure),
        caption=lambda wc: figure_caption(wc.figure, figure_options(wc.figure)),
        code=code("plot_figure.py"),
    script:
        "../../scripts/plot_figure.py"
