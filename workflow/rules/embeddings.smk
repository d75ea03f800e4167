rule embeddings:
    """Embeddings and labels of one dataset split under one foundation model."""
    input:
        model=results_path("models/{model}.pt"),
        dataset=lambda wc: dataset_manifest(wc.dataset),
    output:
        results_path("embeddings/{model}/{dataset}/{split}.npz"),
    log:
        results_path("logs/embeddings/{model}/{dataset}/{split}.log"),
    benchmark:
        results_path("benchmarks/embeddings/{model}/{dataset}/{split}.tsv")
    conda:
        ENV
    threads: lambda wc: 1 if embeddings_are_read(wc.model) else 2
    resources:
        mem_mb=embeddings_mem_mb,
        gpu=lambda wc: 0 if embeddings_are_read(wc.model) else config["embedding"]["gpus"],
    params:
        model_spec=lambda wc: config["models"][wc.model],
        dataset_spec=lambda wc: config["datasets"][wc.dataset],
        embedding=config["embedding"],
        code=code("extract_embeddings.py"),
    script:
        "../../scripts/extract_embeddings.py"
