# Baselines (paper §2, §4.1): LSTM LM and attention seq2seq, and the hit thresholds of Appendix C.


rule train_baseline:
    """The LSTM LM or the attention seq2seq, {kind}.pt, on a dataset's training pairs (paper §4.1)"""
    input:
        train="results/{dataset}/data/train.parquet",
        valid="results/{dataset}/data/valid.parquet",
        vocab="results/{dataset}/data/vocab.txt",
    output:
        ckpt="results/{dataset}/models/{kind}.pt",
        curve=report("results/{dataset}/models/{kind}_curve.csv", caption="../report/captions/baseline_curve.rst",
                     category="{dataset}", subcategory=nreport.BASELINES),
    params:
        settings=settings,
        settings_key=settings_key("train_baseline"),
    log:
        "logs/{dataset}/train_{kind}.log",
    benchmark:
        "benchmarks_out/{dataset}/train_{kind}.tsv"
    threads: baseline_threads()
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_baseline.py"


rule evaluate_baselines:
    """Table 8, test PPL of both baselines (App. C), and the hit thresholds T_out, T_in (§3.2)"""
    input:
        test="results/{dataset}/data/test.parquet",
        vocab="results/{dataset}/data/vocab.txt",
        seq2seq="results/{dataset}/models/seq2seq.pt",
        lm="results/{dataset}/models/lm.pt",
    output:
        table8=report("results/{dataset}/table8.csv", caption="../report/captions/table8.rst", category="{dataset}",
                      subcategory=nreport.BASELINES),
        thresholds="results/{dataset}/thresholds.json",
    params:
        settings=settings,
        settings_key=settings_key("evaluate_baselines"),
    log:
        "logs/{dataset}/evaluate_baselines.log",
    threads: 2
    priority: 1  # first among ready jobs: Algorithm 1 and its hit tests are the longest chain after the baselines
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/evaluate_baselines.py"
