# Negative training: malicious targets (Algorithm 1) and frequent responses (Algorithm 2), plus the GAN and
# unlikelihood comparisons (paper §3, §4, Appendix E).


rule negtrain_malicious:
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        lm="results/{dataset}/models/lm.pt",
        train="results/{dataset}/data/train.parquet",
        vocab="results/{dataset}/data/vocab.txt",
        targets="results/targets/train_{size}.txt",
        thresholds="results/{dataset}/thresholds.json",
    output:
        ckpt="results/{dataset}/models/negtr-{mode}-{size}.pt",
        curve=report("results/{dataset}/models/negtr-{mode}-{size}_curve.csv", caption="../report/captions/negtr_curve.rst",
                     category="{dataset}", subcategory=nreport.MALICIOUS),
    params:
        settings=settings,
    log:
        "logs/{dataset}/negtr-{mode}-{size}.log",
    benchmark:
        "benchmarks_out/{dataset}/negtr-{mode}-{size}.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/negtrain_malicious.py"


rule negtrain_frequent:
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        train="results/{dataset}/data/train.parquet",
        test="results/{dataset}/data/test.parquet",
    output:
        ckpt="results/{dataset}/models/freq-{r}.pt",
        curve=report("results/{dataset}/models/freq-{r}_curve.csv", caption="../report/captions/freq_curve.rst",
                     category="{dataset}", subcategory=nreport.FREQUENT),
    wildcard_constraints:
        r="[0-9.]+",
    params:
        settings=settings,
    log:
        "logs/{dataset}/freq-{r}.log",
    benchmark:
        "benchmarks_out/{dataset}/freq-{r}.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/negtrain_frequent.py"


rule train_gan:
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        train="results/{dataset}/data/train.parquet",
        valid="results/{dataset}/data/valid.parquet",
    output:
        ckpt="results/{dataset}/models/gan.pt",
        sweep=report("results/{dataset}/models/gan_sweep.csv", caption="../report/captions/gan_sweep.rst", category="{dataset}",
                     subcategory=nreport.FREQUENT),
    params:
        settings=settings,
    log:
        "logs/{dataset}/gan.log",
    benchmark:
        "benchmarks_out/{dataset}/gan.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_gan.py"


rule train_unlikelihood:
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        train="results/{dataset}/data/train.parquet",
    output:
        ckpt="results/{dataset}/models/ul.pt",
        curve=report("results/{dataset}/models/ul_curve.csv", caption="../report/captions/ul_curve.rst", category="{dataset}",
                     subcategory=nreport.FREQUENT),
    params:
        settings=settings,
    log:
        "logs/{dataset}/ul.log",
    benchmark:
        "benchmarks_out/{dataset}/ul.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_unlikelihood.py"
