# Preprocessing: raw corpus -> tokenised (context, response) pairs in Parquet, vocabulary and stats.


rule preprocess:
    input:
        raw=raw_input,
    output:
        train="results/{dataset}/data/train.parquet",
        valid="results/{dataset}/data/valid.parquet",
        test="results/{dataset}/data/test.parquet",
        vocab="results/{dataset}/data/vocab.txt",
        stats="results/{dataset}/data/stats.csv",
        notes="results/{dataset}/data/notes.json",
    params:
        settings=settings,
    log:
        "logs/{dataset}/preprocess.log",
    benchmark:
        "benchmarks_out/{dataset}/preprocess.tsv"
    resources:
        **gpu_resources("cpu"),
    script:
        "../workflow_scripts/preprocess.py"
