# Paraphrase model and target-list augmentation (paper §4.2, Table 2). Lists are shared by all datasets.


rule malicious_lists:
    """The 0.5k malicious target lists, targets.train and targets.test, in the pipeline's form"""
    input:
        unpack(target_lists),
    output:
        train="results/targets/train_0.5k.txt",
        test="results/targets/test_0.5k.txt",
    params:
        settings=SHARED_SETTINGS,
        settings_key=shared_key("malicious_lists"),
    log:
        "logs/targets/lists.log",
    script:
        "../workflow_scripts/malicious_lists.py"


rule train_paraphraser:
    """The paraphrase model that augments the training target list (paper §4.2)"""
    input:
        corpora=paraphrase_files,
    output:
        ckpt="results/paraphrase/models/paraphraser.pt",
        curve="results/paraphrase/models/paraphraser_curve.csv",
    params:
        settings=SHARED_SETTINGS,
        settings_key=shared_key("train_paraphraser"),
    log:
        "logs/paraphrase/train.log",
    benchmark:
        "benchmarks_out/paraphrase/train.tsv"
    threads: 2
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/train_paraphraser.py"


rule augment_targets:
    """The 1k and 2.5k training target lists: the 0.5k list and paraphrases of it (paper §4.2)"""
    input:
        train="results/targets/train_0.5k.txt",
        test="results/targets/test_0.5k.txt",
        ckpt=paraphraser_ckpt,
        given=given_lists,
    output:
        aug1="results/targets/train_1k.txt",
        aug4="results/targets/train_2.5k.txt",
    params:
        settings=SHARED_SETTINGS,
        settings_key=shared_key("augment_targets"),
    log:
        "logs/paraphrase/augment.log",
    resources:
        **gpu_resources(),
    script:
        "../workflow_scripts/augment_targets.py"
