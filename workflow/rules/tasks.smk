rule task:
    """Index files of one task for one seed: class subset, label remap, n-shot subsample."""
    input:
        manifest=lambda wc: dataset_manifest(task_dataset(wc.task)),
    output:
        task_split=task_file("{task}", "{seed}"),
    log:
        results_path("logs/task/{task}/seed{seed}.log"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
    params:
        spec=lookup(dpath="tasks/{task}", within=config),
        dataset_spec=lambda wc: config["datasets"][task_dataset(wc.task)],
        code=code("build_task.py"),
    script:
        "../../scripts/build_task.py"
