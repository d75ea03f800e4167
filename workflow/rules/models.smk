rule model:
    """Obtain a foundation model once (offline default: train the base-class CNN)."""
    input:
        unpack(model_inputs),
    output:
        "results/models/{model}.pt",
    log:
        "results/logs/model/{model}.log",
    benchmark:
        "results/benchmarks/model/{model}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
    params:
        spec=lambda wc: config["models"][wc.model],
        dataset_spec=lambda wc: config["datasets"].get(model_training_dataset(wc.model)),
        code=code("prepare_model.py"),
    script:
        "../../scripts/prepare_model.py"
