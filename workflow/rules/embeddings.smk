rule embeddings:
    """Embeddings and labels of one dataset split under one foundation model."""
    input:
        network=rules.model.output.network,
        manifest=rules.dataset.output.manifest,
    output:
        embeddings=embeddings_file("{model}", "{dataset}", "{split}"),
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
        model_spec=lookup(dpath="models/{model}", within=config),
        dataset_spec=lookup(dpath="datasets/{dataset}", within=config),
        embedding=config["embedding"],
        code=code("extract_embeddings.py"),
    script:
        "../../scripts/extract_embeddings.py"
