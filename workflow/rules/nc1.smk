rule nc1:
    """NC1 of one task's train split under one model, one row per seed."""
    input:
        train=lambda wc: embeddings_file(wc.model, task_dataset(wc.task), "train"),
        tasks=expand("results/tasks/{{task}}/seed{seed}.npz", seed=SEEDS),
    output:
        "results/nc1/{model}/{task}.csv",
    params:
        seeds=SEEDS,
        code=source_hash("nc", "io"),
    log:
        "results/logs/nc1/{model}/{task}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../../scripts/compute_nc1.py"
