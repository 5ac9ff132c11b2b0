# Evaluation: PPL, greedy responses, BLEU-4, max-ratio, Ent-n, distinct-n; MMI-antiLM decoding; beam overlap.


rule evaluate_model:
    """A model's greedy test responses and metrics: PPL, BLEU-4, max-ratio, Ent-n (Tables 4, 9)"""
    input:
        ckpt=model_ckpt,
        test="results/{dataset}/data/test.parquet",
    output:
        responses="results/{dataset}/eval/{model}/greedy.parquet",
        metrics="results/{dataset}/eval/{model}/metrics.json",
    params:
        settings=settings,
        settings_key=settings_key("evaluate_model"),
    log:
        "logs/{dataset}/evaluate_{model}.log",
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/evaluate_model.py"


rule evaluate_mmi:
    """MMI-antiLM decoding (paper §4.3): lambda and gamma swept on validation, test decoded and scored"""
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        lm="results/{dataset}/models/lm.pt",
        valid="results/{dataset}/data/valid.parquet",
        test="results/{dataset}/data/test.parquet",
    output:
        responses="results/{dataset}/eval/mmi/greedy.parquet",
        metrics="results/{dataset}/eval/mmi/metrics.json",
        sweep=report("results/{dataset}/eval/mmi/sweep.csv",
                     caption="../report/captions/mmi_sweep.rst", category="{dataset}",
                     subcategory=nreport.FREQUENT),
    params:
        settings=settings,
        settings_key=settings_key("evaluate_mmi"),
    log:
        "logs/{dataset}/evaluate_mmi.log",
    benchmark:
        "benchmarks_out/{dataset}/evaluate_mmi.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/evaluate_mmi.py"


rule beam_overlap:
    """Overlap of each Algorithm 1 model's beam-search k-best lists with the baseline's (paper §4.2)"""
    input:
        baseline="results/{dataset}/models/seq2seq.pt",
        negtrained=expand("results/{{dataset}}/models/negtr-{mode}-{size}.pt", mode=HIT_MODES, size=MALICIOUS_SIZES),
        test="results/{dataset}/data/test.parquet",
        vocab="results/{dataset}/data/vocab.txt",
    output:
        report("results/{dataset}/eval/beam_overlap.csv",
               caption="../report/captions/beam_overlap.rst", category="{dataset}",
               subcategory=nreport.MALICIOUS),
    params:
        settings=settings,
        settings_key=settings_key("beam_overlap"),
    log:
        "logs/{dataset}/beam_overlap.log",
    benchmark:
        "benchmarks_out/{dataset}/beam_overlap.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/beam_overlap.py"
