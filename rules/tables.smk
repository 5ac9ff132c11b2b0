# The paper's tables and figure (Tables 3, 4, 8, 9; Figure 1). Table 8 is written by evaluate_baselines.


rule table3:
    """Table 3, hit rates and PPL before and after Algorithm 1 with the beam overlap, and Figure 1 (App. D)"""
    input:
        hits=expand(
            "results/{{dataset}}/hits/{model}/{target_list}.parquet",
            model=MALICIOUS_MODELS,
            target_list=["train", "test"],
        ),
        metrics=expand("results/{{dataset}}/eval/{model}/metrics.json", model=MALICIOUS_MODELS),
        lists=expand("results/targets/train_{size}.txt", size=MALICIOUS_SIZES),
        overlap="results/{dataset}/eval/beam_overlap.csv",
        seq2seq="results/{dataset}/models/seq2seq.pt",
        negtr="results/{dataset}/models/negtr-io-0.5k.pt",
        test="results/{dataset}/data/test.parquet",
        vocab="results/{dataset}/data/vocab.txt",
    output:
        table=report("results/{dataset}/table3.csv", caption="../report/captions/table3.rst", category="{dataset}",
                     subcategory=nreport.MALICIOUS),
        figure=report("results/{dataset}/figure1.png", caption="../report/captions/figure1.rst", category="{dataset}",
                      subcategory=nreport.MALICIOUS),
        samples="results/{dataset}/samples_malicious.txt",
    params:
        settings=settings,
        settings_key=settings_key("table3"),
        not_run=AUGMENTATION,
    log:
        "logs/{dataset}/table3.log",
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/table3.py"


rule table4_table9:
    """Tables 4 and 9: max-ratio, entropy, PPL and BLEU of the baseline, Algorithm 2 and the comparisons"""
    input:
        test="results/{dataset}/data/test.parquet",
        metrics=lambda w: expand(
            "results/{dataset}/eval/{model}/metrics.json",
            dataset=w.dataset,
            model=["baseline", "gan", "ul", "mmi"] + frequent_models(w),
        ),
        responses=lambda w: expand(
            "results/{dataset}/eval/{model}/greedy.parquet",
            dataset=w.dataset,
            model=["baseline", "gan"] + frequent_models(w),
        ),
    output:
        table4=report("results/{dataset}/table4.csv", caption="../report/captions/table4.rst", category="{dataset}",
                      subcategory=nreport.FREQUENT),
        table9=report("results/{dataset}/table9.csv", caption="../report/captions/table9.rst", category="{dataset}",
                      subcategory=nreport.FREQUENT),
        samples="results/{dataset}/samples_frequent.txt",
    params:
        settings=settings,
        settings_key=settings_key("table4_table9"),
    log:
        "logs/{dataset}/table4.log",
    script:
        "../workflow_scripts/table4.py"
