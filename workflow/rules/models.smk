rule model:
    """Obtain a foundation model once (offline default: train the base-class CNN)."""
    input:
        unpack(model_inputs),
    output:
        network=model_file("{model}"),
    log:
        results_path("logs/model/{model}.log"),
    benchmark:
        results_path("benchmarks/model/{model}.tsv")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=lookup(dpath="models/{model}", within=config),
        dataset_spec=lambda wc: config["datasets"].get(model_training_dataset(wc.model)),
        code=code("prepare_model.py"),
    script:
        "../../scripts/prepare_model.py"
