# Qi et al.'s low-shot learning (imprint.lowshot): one job per (model, low-shot task, seed).


localrules:
    collect_lowshot,
    lowshot_summary,


rule lowshot:
    """Rand-noFT, Imprinting(+Aug), Rand+FT, Imprinting+FT and AllClassJoint for every n."""
    input:
        unpack(lowshot_inputs),
    output:
        table=lowshot_table("{model}", "{task}", "{seed}"),
    log:
        results_path("logs/lowshot/{model}/{task}/seed{seed}.log"),
    benchmark:
        results_path("benchmarks/lowshot/{model}/{task}/seed{seed}.tsv")
    conda:
        ENV
    threads: 1
    resources:
        # the images of a split are kept in memory up to 1 GiB (imprint.lowshot.IN_MEMORY_BYTES)
        mem_mb=lambda wc, input: max(4000, int(4 * files_size_mb(input)) + 3000),
        gpu=config["lowshot"]["gpus"],
    params:
        model_spec=lookup(dpath="models/{model}", within=config),
        dataset_spec=lambda wc: config["datasets"][lowshot_dataset(wc.task, wc.model)],
        task_spec=lookup(dpath="lowshot/tasks/{task}", within=config),
        section={key: value for key, value in config["lowshot"].items() if key != "tasks"},
        code=code("run_lowshot.py"),
    script:
        "../../scripts/run_lowshot.py"


rule collect_lowshot:
    """Every low-shot job's rows in one tidy table."""
    input:
        tables=lowshot_tables(),
    output:
        table=table_file("lowshot"),
    log:
        results_path("logs/statistics/collect_lowshot.log"),
    conda:
        ENV
    params:
        code=code("concat_tables.py"),
    script:
        "../../scripts/concat_tables.py"


rule lowshot_summary:
    """Qi et al.'s Tables 1-2: mean and std over seeds per method and n, final epoch."""
    input:
        lowshot=rules.collect_lowshot.output.table,
    output:
        summary=report(
            table_file("lowshot_summary"),
            caption="../report/lowshot_summary.rst",
            category="Low-shot (Qi et al.)",
            labels={"table": "lowshot_summary"},
        ),
    log:
        results_path("logs/statistics/lowshot_summary.log"),
    conda:
        ENV
    params:
        # published accuracies to set beside this run's, per low-shot task (Qi et al.'s Tables)
        paper={
            name: task["paper"]
            for name, task in config["lowshot"]["tasks"].items()
            if "paper" in task
        },
        code=code("summarize_lowshot.py"),
    script:
        "../../scripts/summarize_lowshot.py"
