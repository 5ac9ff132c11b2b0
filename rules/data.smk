# Preprocessing: raw corpus -> tokenised (context, response) pairs in Parquet, vocabulary and stats.


rule preprocess:
    """A raw corpus to train, valid and test (context, response) pairs in Parquet, its vocabulary, stats"""
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
        settings_key=settings_key("preprocess"),
    log:
        "logs/{dataset}/preprocess.log",
    benchmark:
        "benchmarks_out/{dataset}/preprocess.tsv"
    resources:
        **gpu_resources("cpu"),
    script:
        "../workflow_scripts/preprocess.py"


# The configured target lists checked against a dataset's vocabulary as soon as it exists: a list the dataset cannot
# use (bytes that are not UTF-8, a blank line, a target too long, more than targets.max_oov_share of its targets out of
# vocabulary) stops the run, naming the configured file and line. It runs first among the jobs ready after
# preprocessing (priority), beside the baselines, whose training finishes and is kept: they do not depend on the lists,
# and Table 4 needs none, so a corpus the lists do not fit (another language) still gets Tables 4, 8 and 9 when they
# are asked for by name (or with --keep-going; without it a failed job stops the scheduling of new ones). The rules
# that read the lists (hits, Algorithm 1) wait for it (ancient: an edited list reruns only what reads it). The report is
# kept: were it deleted after use, any later change to Algorithm 1 would run the check again for it, and Snakemake
# would then rerun the baselines' hit tests after the check as well.
rule check_targets:
    """The malicious target lists against the dataset's vocabulary: a list it cannot use stops the run"""
    input:
        vocab="results/{dataset}/data/vocab.txt",
        lists=lambda wildcards: list(target_lists(wildcards).values()),
    output:
        checked="results/{dataset}/data/targets_checked.txt",
    params:
        settings=settings,
        settings_key=settings_key("check_targets"),
    log:
        "logs/{dataset}/check_targets.log",
    priority: 2  # before the baselines start, so that a bad list is reported at once
    localrule: True
    script:
        "../workflow_scripts/check_targets.py"


# A missing raw input with datasets.<name>.raw.url, when `download: true`: the HTTP storage plugin downloads it,
# negtrain_core.data.raw.install checks sha256 (when pinned) and that the archive opens, and moves it to raw.path.
# The rule matches only those missing files; it runs on the submitting host (compute nodes may be offline).
rule fetch_raw:
    """A missing raw corpus downloaded from datasets.<name>.raw.url (with download: true) and checked"""
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


# A results/ path of a dataset without a block under `datasets` (a misspelt name, or a dataset of one's own asked for
# without its --configfile) would get Snakemake's bare "No rule to produce"; this rule matches only such paths, and
# its input function stops the run with one line naming the dataset and those configured. It never runs.
rule unknown_dataset:
    """Never runs: a results/ path of no configured dataset stops with one line naming it"""
    input:
        unknown_dataset,
    output:
        "results/{unconfigured}/{path}",
    wildcard_constraints:
        unconfigured=UNCONFIGURED_DATASET,
        path=".+",
    localrule: True


# Snakemake's bare "No rule to produce" for a misspelt file of a configured dataset (results/chitchat/table5.csv)
# becomes one line listing the files a dataset has. Only names that no rule makes match.
rule unknown_result:
    """Never runs: a file directly under results/<dataset>/ that no rule makes stops with one line naming it"""
    input:
        unknown_result,
    output:
        "results/{dataset}/{name}",
    wildcard_constraints:
        name=UNKNOWN_RESULT,
    localrule: True
