rule imprinting:
    """The whole configured GEN x k x NORM x AGG x m grid of one (model, task, seed)."""
    input:
        train=lambda wc: embeddings_file(wc.model, task_dataset(wc.task), "train"),
        test=lambda wc: embeddings_file(wc.model, task_dataset(wc.task), "test"),
        task_split=rules.task.output.task_split,
    output:
        **selection_output(),
        results=imprinting_table("{model}", "{task}", "{seed}"),
        gen_time=imprinting_table("{model}", "{task}", "{seed}", ".gen_time"),
    log:
        results_path("logs/imprinting/{model}/{task}/seed{seed}.log"),
    benchmark:
        results_path("benchmarks/imprinting/{model}/{task}/seed{seed}.tsv")
    conda:
        ENV
    threads: 1
    resources:
        # float64 copies of the task's embeddings, normalised variants, score chunks and a
        # k-medoids distance matrix: measured 2.4 GiB for MNIST-sized float32 inputs at 512-d
        # (0.14 GB) and 7.5 GiB at 2,048-d (0.57 GB) (benchmarks/bench_grid.py)
        mem_mb=lambda wc, input: max(2000, int(13 * files_size_mb(input)) + 1500),
        gpu=1 if config["imprinting"]["device"] == "cuda" else 0,
    params:
        grid={
            key: value
            for key, value in config["imprinting"].items()
            if not key.startswith("ls_lambda")
        },
        ls_lambda=lambda wc: model_lambda(config, wc.model),
        selection_spec=config["selection"],
        code=code("run_imprinting.py"),
    script:
        "../../scripts/run_imprinting.py"


rule export_classifiers:
    """For every task, the configuration selected for (model, task) at the task's first seed,
    refit on that seed's whole training split: classifier folders that `imprint predict` and
    `imprint add` read (imprint.artifact), named by class, with their provenance. One job per
    model: each folder is a few milliseconds' work."""
    input:
        unpack(export_inputs),
    output:
        [directory(classifier_folder("{model}", task)) for task in TASKS],
    log:
        results_path("logs/classifiers/{model}.log"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=lambda wc, input: max(2000, int(4 * files_size_mb(input)) + 1000),
    params:
        tasks=TASKS,
        model_spec=lookup(dpath="models/{model}", within=config),
        grid=config["imprinting"],
        ls_lambda=lambda wc: model_lambda(config, wc.model),
        config_sha256=lambda wc: {
            task: classifier_config_sha256(config, wc.model, task) for task in TASKS
        },
        code=code("export_classifiers.py"),
    script:
        "../../scripts/export_classifiers.py"
