rule nc1:
    """NC1 of one task's train split under one model, one row per seed and variant."""
    input:
        train=lambda wc: embeddings_file(wc.model, task_dataset(wc.task), "train"),
        tasks=lambda wc: task_files(wc.task),
    output:
        table=nc1_table("{model}", "{task}"),
    log:
        results_path("logs/nc1/{model}/{task}.log"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wc, input: max(2000, int(4 * files_size_mb(input)) + 1000),
    params:
        seeds=lambda wc: task_seeds(config, wc.task),
        variants=config["nc1"]["variants"],
        code=code("compute_nc1.py"),
    script:
        "../../scripts/compute_nc1.py"
