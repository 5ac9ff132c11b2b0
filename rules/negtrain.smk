# Negative training: malicious targets (Algorithm 1) and frequent responses (Algorithm 2), plus the GAN and
# unlikelihood comparisons (paper §3, §4, Appendix E).


rule negtrain_malicious:
    """Algorithm 1: negative training against the hits of a malicious target list, o or io mode"""
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        lm="results/{dataset}/models/lm.pt",
        train="results/{dataset}/data/train.parquet",
        vocab="results/{dataset}/data/vocab.txt",
        targets="results/targets/train_{size}.txt",
        targets_checked=ancient("results/{dataset}/data/targets_checked.txt"),  # rule check_targets
        thresholds="results/{dataset}/thresholds.json",
        test=malicious_test_input,  # only with malicious.eval_every_epoch (rules/common.smk)
    output:
        ckpt="results/{dataset}/models/negtr-{mode}-{size}.pt",
        curve=report("results/{dataset}/models/negtr-{mode}-{size}_curve.csv",
                     caption="../report/captions/negtr_curve.rst",
                     category="{dataset}", subcategory=nreport.MALICIOUS),
    params:
        settings=settings,
        settings_key=settings_key("negtrain_malicious"),
    log:
        "logs/{dataset}/negtr-{mode}-{size}.log",
    priority: 1  # first among ready jobs: Algorithm 1 and its hit tests are the longest chain after the baselines
    benchmark:
        "benchmarks_out/{dataset}/negtr-{mode}-{size}.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/negtrain_malicious.py"


# Algorithm 2 at each r_thres of datasets.X.frequent, frequent.runs_per_job of them per GPU job (default 2,
# interleaved on their own CUDA streams: negtrain_core/negtrain/frequent.py FrequentRun, same results, faster; see
# config.yaml). Rules are defined per dataset: a job's outputs are part of the dataset's r_thres list, which no wildcard
# can express.
for _ds in DATASETS:
    _rs = [f.r_thres for f in ncfg.settings(config, _ds).frequent]
    _per_job = frequent_runs_per_job()
    for _i, _group in enumerate(_rs[j:j + _per_job] for j in range(0, len(_rs), _per_job)):

        rule:
            """Algorithm 2: negative training against frequent responses, one model per r_thres"""
            name:
                f"negtrain_frequent_{_ds}" + (f"_{_i}" if _per_job < len(_rs) else "")
            input:
                seq2seq=f"results/{_ds}/models/seq2seq.pt",
                train=f"results/{_ds}/data/train.parquet",
                test=f"results/{_ds}/data/test.parquet",
            output:
                ckpt=[f"results/{_ds}/models/freq-{r:g}.pt" for r in _group],
                curve=[report(f"results/{_ds}/models/freq-{r:g}_curve.csv", caption="../report/captions/freq_curve.rst",
                              category=_ds, subcategory=nreport.FREQUENT) for r in _group],
            params:
                settings=lambda w, ds=_ds: dataset_settings(ds),
                settings_key=lambda w, ds=_ds: dataset_key(ds, "negtrain_frequent"),
                r_thres=list(_group),
            log:
                f"logs/{_ds}/freq-{'_'.join(f'{r:g}' for r in _group)}.log",
            benchmark:
                f"benchmarks_out/{_ds}/freq-{'_'.join(f'{r:g}' for r in _group)}.tsv"
            priority: 1  # first among ready jobs with Algorithm 1: its epochs are the whole set's longest chain
            resources:
                **gpu_resources(),
            script:
                "../workflow_scripts/negtrain_frequent.py"


# Snakemake's bare "No rule to produce" for an r_thres the dataset does not configure becomes one line naming the key.
rule unconfigured_r_thres:
    """Never runs: an Algorithm 2 model at an r_thres its dataset does not configure stops with one line naming it"""
    input:
        unconfigured_r_thres,
    output:
        "results/{run}",
    wildcard_constraints:
        run=UNCONFIGURED_FREQUENT,
    localrule: True


rule train_gan_lr:
    """The GAN comparison at one generator learning rate (paper §4.3, App. E)"""
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        train="results/{dataset}/data/train.parquet",
        valid="results/{dataset}/data/valid.parquet",
    output:
        ckpt="results/{dataset}/models/gan/g_lr-{g_lr}.pt",
        row="results/{dataset}/models/gan/g_lr-{g_lr}.csv",
    wildcard_constraints:
        g_lr="[0-9.e-]+",
    params:
        settings=settings,
        settings_key=settings_key("train_gan_lr"),
    log:
        "logs/{dataset}/gan/g_lr-{g_lr}.log",
    benchmark:
        "benchmarks_out/{dataset}/gan/g_lr-{g_lr}.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_gan_lr.py"


# The validation pick among the per-lr runs: reads their rows, copies one checkpoint; seconds, so it runs where
# Snakemake runs.
rule train_gan:
    """The GAN picked among its generator learning rates by validation PPL"""
    input:
        rows=lambda w: expand("results/{dataset}/models/gan/g_lr-{g_lr}.csv", dataset=w.dataset, g_lr=gan_lrs(w)),
        ckpts=lambda w: expand("results/{dataset}/models/gan/g_lr-{g_lr}.pt", dataset=w.dataset, g_lr=gan_lrs(w)),
    output:
        ckpt="results/{dataset}/models/gan.pt",
        sweep=report("results/{dataset}/models/gan_sweep.csv",
                     caption="../report/captions/gan_sweep.rst", category="{dataset}",
                     subcategory=nreport.FREQUENT),
    params:
        settings=settings,
        settings_key=settings_key("train_gan"),
    log:
        "logs/{dataset}/gan.log",
    localrule: True
    script:
        "../workflow_scripts/train_gan.py"


rule train_unlikelihood:
    """Vocabulary unlikelihood training, a Table 4 comparison"""
    input:
        seq2seq="results/{dataset}/models/seq2seq.pt",
        train="results/{dataset}/data/train.parquet",
    output:
        ckpt="results/{dataset}/models/ul.pt",
        curve=report("results/{dataset}/models/ul_curve.csv",
                     caption="../report/captions/ul_curve.rst", category="{dataset}",
                     subcategory=nreport.FREQUENT),
    params:
        settings=settings,
        settings_key=settings_key("train_unlikelihood"),
    log:
        "logs/{dataset}/ul.log",
    benchmark:
        "benchmarks_out/{dataset}/ul.tsv"
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_unlikelihood.py"
