# Preprocessing: raw corpus -> tokenised (context, response) pairs in Parquet, vocabulary and stats.


rule preprocess:
    input:
        raw=raw_input,
    output:
        train="results/{dataset}/data/train.parquet",
        valid="results/{dataset}/data/valid.parquet",
        test="results/{dataset}/data/test.parquet",
        vocab="results/{dataset}/data/vocab.txt",
        stats=report("results/{dataset}/data/stats.csv", caption="../report/captions/stats.rst", category="{dataset}",
                     subcategory=nreport.DATA),
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


# A missing raw input with datasets.<name>.raw.url, when `download: true`: the HTTP storage plugin downloads it,
# negtrain_core.data.raw.install checks sha256 (when pinned) and that the archive opens, and moves it to raw.path.
# The rule matches only those missing files; it runs on the submitting host (compute nodes may be offline).
rule fetch_raw:
    input:
        download=raw_download,
    output:
        raw="{raw_path}",
    params:
        source=raw_source,
    log:
        "logs/fetch_raw/{raw_path}.log",
    wildcard_constraints:
        raw_path=nraw.download_pattern(config),
    localrule: True
    script:
        "../workflow_scripts/fetch_raw.py"
