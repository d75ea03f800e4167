rule dataset:
    """Obtain a dataset once into results/datasets/<name>/ (checksums in its manifest)."""
    input:
        lambda wc: [manifest for _, manifest in dataset_components(wc.dataset).values()],
        lambda wc: dataset_input_files(config["datasets"][wc.dataset]),
    output:
        manifest=dataset_manifest("{dataset}"),
    log:
        results_path("logs/dataset/{dataset}.log"),
    benchmark:
        results_path("benchmarks/dataset/{dataset}.tsv")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=lookup(dpath="datasets/{dataset}", within=config),
        components=lambda wc: dataset_components(wc.dataset),
        images=lambda wc: dataset_input_digest(config["datasets"][wc.dataset]),
        code=code("prepare_dataset.py"),
    script:
        "../../scripts/prepare_dataset.py"
