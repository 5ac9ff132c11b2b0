# Config validation, path helpers and input functions: the only Python in rules/.
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from negtrain_core import config as ncfg
from negtrain_core import gpu_slots as ngpu
from negtrain_core.data import raw as nraw
from negtrain_core.tables import rating as nrating
from negtrain_core.tables import report as nreport
from negtrain_core.tables import summary as nsummary

try:
    ncfg.validate(config)
    SHARED = ncfg.settings(config)                      # the settings of the rules without a dataset
except ncfg.ConfigError as err:
    sys.exit(f"negtrain: {err}")
RECORD_READS = bool(os.environ.get(ncfg.READS_ENV))    # jobs record the settings they read (tests/test_caching.py)
SHARED_SETTINGS = ncfg.recorded(SHARED) if RECORD_READS else SHARED   # what those rules pass their scripts

STARTED = time.time()                                 # tables written after this are this run's (print_summary)
DATASETS = ncfg.dataset_names(config)                 # any name with a block under datasets
HIT_MODES = ("o", "io")
LIST_SIZES = ("0.5k", "1k", "2.5k")
AUGMENTATION = SHARED.targets.not_run  # None, or why the 1k/2.5k target lists are not run
MALICIOUS_SIZES = SHARED.targets.sizes  # the lists negative training runs on: 0.5k, + 1k/2.5k when built
MALICIOUS_MODELS = ["baseline"] + [f"negtr-{m}-{s}" for m in HIT_MODES for s in MALICIOUS_SIZES]  # Table 3's
# A results/ folder name that is neither a configured dataset nor one of the workflow's own (rule unknown_dataset)
UNCONFIGURED_DATASET = f"(?!(?:{'|'.join(DATASETS + ncfg.RESERVED_DATASET_NAMES)})/)[^/]+"


wildcard_constraints:
    dataset="|".join(DATASETS),
    kind="seq2seq|lm",
    split="train|valid|test",
    target_list="train|test",
    mode="o|io",
    size="0\\.5k|1k|2\\.5k",
    model="baseline|negtr-(o|io)-(0\\.5k|1k|2\\.5k)|freq-[0-9.e-]+|gan|ul",


def repo_file(path):
    """A configured file: as given when absolute or present in the working directory, else under the repository
    (the shipped resources/, e.g. the target lists, when Snakemake runs with --directory elsewhere)."""
    return path if Path(path).is_absolute() or Path(path).exists() else str(Path(workflow.basedir) / path)


def existing(path, key, in_repo=False):
    """The file that config key `key` names (with `in_repo`, `repo_file(path)`: for the target lists, which their
    rules read from the input); missing: one line naming both, and exit. Called from input functions, so only when
    a job needs the file."""
    found = repo_file(path) if in_repo else path
    if not Path(found).is_file():
        sys.exit(f"negtrain: config key '{key}': {path}: no such file")
    return found


def target_lists(wildcards):
    """The configured training and test target lists (targets.train, targets.test)."""
    return {k: existing(config["targets"][k], f"targets.{k}", in_repo=True) for k in ("train", "test")}


def paraphraser_ckpt(wildcards):
    """The paraphraser checkpoint, unless targets.augmented.given names existing 1k/2.5k lists."""
    return [] if config["targets"]["augmented"]["given"]["1k"] else "results/paraphrase/models/paraphraser.pt"


def paraphrase_files(wildcards):
    """The files of paraphrase.corpora (none by default)."""
    return [existing(c[k], f"paraphrase.corpora[{i}].{k}") for i, c in enumerate(config["paraphrase"]["corpora"])
            for k in ("path", "path2") if c.get(k)]


def given_lists(wildcards):
    """The given 1k/2.5k lists of targets.augmented.given (none by default)."""
    given = config["targets"]["augmented"]["given"]
    return [existing(p, f"targets.augmented.given.{k}") for k, p in given.items() if p]


def settings(wildcards):
    """The validated config seen from this rule's dataset (quick scale applied)."""
    return dataset_settings(wildcards.dataset)


def dataset_settings(dataset):
    """ncfg.settings of `dataset`, recording its reads when NEGTRAIN_SETTINGS_READS is set (ncfg.recorded)."""
    s = ncfg.settings(config, dataset)
    return ncfg.recorded(s) if RECORD_READS else s


def malicious_test_input(wildcards):
    """Rule negtrain_malicious's test pairs, an input only with malicious.eval_every_epoch: switching it on or off
    changes the job's inputs, which reruns it; left off, it adds nothing to the job's inputs."""
    on = ncfg.settings(config, wildcards.dataset).malicious.eval_every_epoch
    return f"results/{wildcards.dataset}/data/test.parquet" if on else []


def settings_key(rule_name):
    """params.settings_key of rule `rule_name`: the settings its results depend on, as a string (ncfg.rule_key),
    which Snakemake records with the outputs and compares on the next run: a changed config key reruns the rules
    that read it (the typed `settings` param itself is not recorded)."""
    return lambda wildcards: dataset_key(wildcards.dataset, rule_name)


def dataset_key(dataset, rule_name):
    """settings_key's value for `dataset`, for rules made per dataset (no wildcard)."""
    return ncfg.rule_key(ncfg.settings(config, dataset), rule_name)


def shared_key(rule_name):
    """settings_key for the rules without a dataset (target lists, paraphraser)."""
    return lambda wildcards: ncfg.rule_key(SHARED, rule_name)


# The files a rule makes directly in results/<dataset>/ (tests/test_workflow.py checks the rules against it); any other
# name there, e.g. a misspelt table, goes to rule unknown_result.
DATASET_RESULTS = ("table3.csv", "table4.csv", "table6.csv", "table8.csv", "table9.csv", "figure1.png", "curves.csv",
                   "curves.png", "paper_comparison.csv", "paper_comparison.png", "rating_key.csv", "thresholds.json",
                   "samples_frequent.txt", "samples_malicious.txt")
UNKNOWN_RESULT = f"(?!(?:{'|'.join(map(re.escape, DATASET_RESULTS))})$)[^/]+"


def unknown_result(wildcards):
    """Rule unknown_result's input: one line naming the file and those a dataset has, and exit; nothing for a file that
    exists (a file of one's own kept there is an input)."""
    path = f"results/{wildcards.dataset}/{wildcards.name}"
    if Path(path).exists():
        return []
    sys.exit(f"negtrain: {path}: no rule makes it{ncfg.near_hint(wildcards.name, DATASET_RESULTS)}; a dataset's "
             f"results are {', '.join(DATASET_RESULTS)} (docs/architecture.md)")


def configured_r_thres(dataset):
    """Algorithm 2's runs of a dataset, as its paths spell them (freq-<r_thres>)."""
    return [f"{f.r_thres:g}" for f in ncfg.settings(config, dataset).frequent]


# An Algorithm 2 model or curve at an r_thres its dataset does not configure (rule unconfigured_r_thres): each configured
# dataset's own runs are excluded, so the rule matches only what no per-dataset Algorithm 2 rule makes.
UNCONFIGURED_FREQUENT = (
    "(?!(?:" + "|".join(rf"{re.escape(ds)}/models/freq-(?:{'|'.join(map(re.escape, configured_r_thres(ds)))})"
                        r"(?:\.pt|_curve\.csv)$" for ds in DATASETS) + "))"
    + "(?:" + "|".join(map(re.escape, DATASETS)) + r")/models/freq-[^/]+(?:\.pt|_curve\.csv)")


def unconfigured_r_thres(wildcards):
    """Rule unconfigured_r_thres's input: one line naming the r_thres asked for and the dataset's, and exit."""
    path = f"results/{wildcards.run}"
    dataset, name = wildcards.run.split("/models/freq-")
    asked = name.removesuffix(".pt").removesuffix("_curve.csv")
    configured = configured_r_thres(dataset)
    try:
        spelt = f"{float(asked):g}"
    except ValueError:
        spelt = None
    if spelt in configured:
        sys.exit(f"negtrain: {path}: Algorithm 2's paths spell r_thres {asked} as freq-{spelt}")
    hint = "add it to that list to train it" if spelt else "r_thres is a number, e.g. freq-0.01"
    sys.exit(f"negtrain: {path}: r_thres '{asked}' is not in datasets.{dataset}.frequent.r_thres "
             f"({', '.join(configured) or 'empty'}); {hint}")


def unknown_dataset(wildcards):
    """Rule unknown_dataset's input: one line naming the dataset asked for, and exit; nothing for a file that exists
    (a file of one's own kept under results/, e.g. a target list, is an input, not a dataset's result)."""
    name = wildcards.unconfigured
    if Path(f"results/{name}/{wildcards.path}").exists():
        return []
    sys.exit(f"negtrain: results/{name}/{wildcards.path}: no dataset '{name}' under 'datasets'"
             f"{ncfg.near_hint(name, DATASETS)}; configured: {', '.join(DATASETS)}. A dataset of your own needs its "
             f"block: pass the --configfile that holds it (README, 'Using your own data')")


def raw_input(wildcards):
    """The raw corpus of a dataset; missing: fetched by rule fetch_raw (download: true), else one line and exit."""
    try:
        return nraw.raw_inputs(config, wildcards.dataset)
    except nraw.RawInputError as err:
        sys.exit(str(err))  # SystemExit passes Snakemake's InputFunctionException wrapper: the user sees one line


def raw_source(wildcards):
    """Dataset, official URL and expected sha256 of a missing raw file that rule fetch_raw downloads."""
    return nraw.source(config, wildcards.raw_path)


def raw_download(wildcards):
    """The official URL of a missing raw file, as an HTTP storage object (the plugin downloads it); one that cannot
    be downloaded from here (no network, a wrong URL): one line and exit."""
    src = raw_source(wildcards)
    reason = nraw.unreachable(src.url)
    if reason:
        sys.exit(nraw.unreachable_line(src, reason))
    return storage.http(src.url)


def gpu_resources(kind="gpu"):
    """Resources from config `resources.<kind>`, named as the slurm executor reads them (-p, -t, --mem,
    --cpus-per-task, --gres); gpu_slots (GPU rules) is bounded by `--resources gpu_slots=N` (profiles/local)."""
    r = config["resources"][kind]
    res = dict(slurm_partition=r["partition"], runtime=r["runtime_min"], mem_mb=r["mem_mb"], cpus_per_task=r["cpus"])
    if kind == "gpu":
        res.update(gpu_slots=1)
        if r["gres"]:
            res.update(gres=r["gres"])
    return res


def check_mps_rules():
    """Config ``mps`` names GPU rules only (the rules that take a GPU slot; Algorithm 2's also as
    negtrain_frequent): a misspelt name would silently leave a job at the default priority. Call after every rule
    is defined."""
    gpu = {r.name for r in workflow.rules if "gpu_slots" in r.resources}
    bases = sorted({ngpu.rule_base(name) for name in gpu})
    for key in ("below_normal", "active_thread_percentage"):
        for name in config["mps"][key]:
            if name not in gpu and name not in bases:
                sys.exit(f"negtrain: config 'mps.{key}': '{name}' is not a GPU rule; GPU rules: {', '.join(bases)} "
                         f"(Algorithm 2's also by their own names, negtrain_frequent_<dataset>_<i>)")


def check_set_rules():
    """Snakemake's --set-resources and --set-threads take any name and ignore one that is not a rule: a misspelt name
    (or Algorithm 2's, which depends on frequent.runs_per_job) would silently change nothing. Call after every rule
    is defined."""
    rules = {r.name for r in workflow.rules}
    settings = workflow.resource_settings
    for option, given in (("--set-resources", settings.overwrite_resources),
                          ("--set-threads", settings.overwrite_threads)):
        unknown = sorted(set(given) - rules)
        if unknown:
            frequent = sorted(r for r in rules if ngpu.rule_base(r) == "negtrain_frequent")
            sys.exit(f"negtrain: {option} names '{unknown[0]}', which is not a rule of this run; Algorithm 2's here: "
                     f"{', '.join(frequent)}; every rule: snakemake --list-rules")


def check_executor():
    """Under the slurm executor (profiles/slurm), SLURM must answer here: without it every job's submission fails
    with the plugin's own multi-line error (a missing sacct, sinfo's DNS lookups), one per job. Stop before the
    first submission with one line saying where to run. The Snakefile's onstart (not in dry runs)."""
    plugin = getattr(workflow, "executor_plugin", None)
    if getattr(plugin, "name", None) != "slurm":
        return
    fix = "run it on the cluster's login node, or run here with --profile profiles/local"
    missing = [c for c in ("sbatch", "sinfo", "squeue") if shutil.which(c) is None]
    if missing:
        sys.exit(f"negtrain: the slurm executor (profiles/slurm) needs SLURM's commands, and {missing[0]} is not on "
                 f"PATH: {fix}")
    try:
        probe = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True, timeout=60)
        failed = probe.returncode != 0 and (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])
    except subprocess.TimeoutExpired:
        failed = ["no answer in 60 s"]
    if failed:
        sys.exit(f"negtrain: the slurm executor (profiles/slurm) cannot reach a SLURM controller from here (sinfo: "
                 f"{failed[-1].removeprefix('sinfo: ')}): {fix}")


def baseline_threads():
    """Threads of a baseline job: 2; at quick scale half of --cores, so that the LM and the seq2seq train side by
    side (on 2 CPU cores, two 1-thread jobs outrun one 2-thread job after the other, and keep their speed when
    another process takes a core)."""
    cores = workflow.resource_settings.cores            # None without --cores (--report, a cluster profile)
    return max(1, (cores or 2) // 2) if config["scale"] == "quick" else 2


def frequent_runs_per_job():
    """How many of a dataset's r_thres one Algorithm 2 job runs: frequent.runs_per_job (quick.frequent_runs_per_job
    at quick scale)."""
    quick = config["scale"] == "quick"
    return config["quick"]["frequent_runs_per_job"] if quick else config["frequent"]["runs_per_job"]


def frequent_models(wildcards):
    return [f"freq-{r}" for r in configured_r_thres(wildcards.dataset)]


def gan_lrs(wildcards):
    """The GAN's generator lrs of a dataset (gan.g_lrs) as their paths spell them."""
    return [ncfg.format_lr(lr) for lr in ncfg.settings(config, wildcards.dataset).gan.g_lrs]


def model_ckpt(wildcards):
    """Checkpoint of a model name: 'baseline' is the trained seq2seq, the rest are fine-tuned copies."""
    name = "seq2seq" if wildcards.model == "baseline" else wildcards.model
    return f"results/{wildcards.dataset}/models/{name}.pt"


def sheet_negtrain_model(wildcards):
    """The neg-train model of the Table 6 rating sheet: Algorithm 2 at Table 4's smallest r_thres."""
    return nrating.negtrain_model([f.r_thres for f in ncfg.settings(config, wildcards.dataset).frequent])


def ratings_file(wildcards):
    """The filled-in ratings of a dataset (config human_eval.ratings.<dataset>); none set: one line and exit."""
    path = config["human_eval"]["ratings"][wildcards.dataset]
    if not path:
        sys.exit(f"negtrain: no ratings for '{wildcards.dataset}': fill in results/{wildcards.dataset}/rating/"
                 f"sheet.html (or sheet.csv) and set human_eval.ratings.{wildcards.dataset} to the file")
    return existing(path, f"human_eval.ratings.{wildcards.dataset}")


def report_targets(datasets):
    """What rule all builds beside Tables 3, 4, 8, 9: the paper comparison, the curves, the A/B rating sheet, the
    report's HTML views of the tables, and Table 6 where human_eval.ratings names a file for the dataset."""
    out = []
    for d in datasets:
        rated = bool(config["human_eval"]["ratings"][d])
        views = ["table3", "table4", "table8", "table9", "paper_comparison"] + (["table6"] if rated else [])
        out += [f"results/{d}/paper_comparison.csv", f"results/{d}/paper_comparison.png", f"results/{d}/curves.png",
                f"results/{d}/rating/sheet.csv", f"results/{d}/rating/sheet.html"]
        out += [f"results/{d}/report/{v}.html" for v in views] + ([f"results/{d}/table6.csv"] if rated else [])
    return out


def print_summary():
    """The headline numbers of the Tables 3 and 4 this run wrote, on the terminal (the Snakefile's onsuccess); and
    one line where a file asked for is still missing."""
    lines = nsummary.summary_lines(DATASETS, STARTED)
    if lines:
        print("\n".join(lines), flush=True)
    missing = unbuilt_targets()
    if missing:
        print(f"negtrain: Snakemake ended with success but did not write {len(missing)} of the files asked for "
              f"({missing[0]}{', ...' if len(missing) > 1 else ''}): run the same command again (a Snakemake 9 "
              f"scheduling gap after a failed job: docs/running.md#a-run-that-ends-after-check_targets)",
              file=sys.stderr, flush=True)


def unbuilt_targets():
    """The files the run was asked for (rule all's inputs, or the targets named) that do not exist after Snakemake
    ended with success. None, unless Snakemake 9 left out jobs whose only link to a job it reran is an ancient
    input (the rules after check_targets: docs/running.md#a-run-that-ends-after-check_targets). Not checked with
    --until or --omit-from, which leave targets out on purpose, or where the DAG does not name its targets."""
    dag = getattr(workflow, "dag", None)
    if dag is None or any(getattr(dag, name, None) for name in ("untilrules", "untilfiles", "omitrules", "omitfiles")):
        return []
    requested = getattr(dag, "derived_targetfiles", None) or ()
    return sorted(str(f) for f in requested if not os.path.exists(f))
