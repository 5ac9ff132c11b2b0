# gibbs-enum trigger search (Appendix A, Algorithm 3) and hit tables (paper §3.2).


rule hits:
    """o- and io-mode gibbs-enum triggers and hit rates of one model on one target list (paper §3.2, App. A)"""
    input:
        seq2seq=model_ckpt,
        lm="results/{dataset}/models/lm.pt",
        vocab="results/{dataset}/data/vocab.txt",
        targets="results/targets/{target_list}_0.5k.txt",
        targets_checked=ancient("results/{dataset}/data/targets_checked.txt"),  # rule check_targets
        thresholds="results/{dataset}/thresholds.json",
    output:
        hits="results/{dataset}/hits/{model}/{target_list}.parquet",
        rates=report("results/{dataset}/hits/{model}/{target_list}_rates.csv",
                     caption="../report/captions/hit_rates.rst",
                     category="{dataset}", subcategory=nreport.MALICIOUS),
    params:
        settings=settings,
        settings_key=settings_key("hits"),
    log:
        "logs/{dataset}/hits_{model}_{target_list}.log",
    benchmark:
        "benchmarks_out/{dataset}/hits_{model}_{target_list}.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/hits.py"
