"""What a user sees when the config or a raw input is wrong: Snakemake stops with ONE line naming the key or file.

Each case runs the real `snakemake -n` on the repository's Snakefile from a scratch directory. Checking the printed
text is the point here: the line is the whole user interface of these failures.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from snakemake_cli import snakemake, stderr_lines


def overlay(tmp_path: Path, config: dict) -> Path:
    """A --configfile overlay holding ``config``."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "args, line",
    [
        (["--config", "bogus=1"], "negtrain: unknown config key 'bogus'"),
        (["--config", "scale=fast"], "negtrain: config key 'scale': 'fast' is not one of ['paper', 'quick']"),
        (["--config", "download=yes"], "negtrain: config key 'download': 'yes' is not of type 'boolean'"),
    ],
)
def test_command_line_config_refused_in_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    run = snakemake(tmp_path, "-n", *args)
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [line]
    assert "Traceback" not in run.stdout


@pytest.mark.parametrize(
    "config, line",
    [
        ({"datasets": {"chitchat": {"train": {"lr2": 0.5}}}},
         "negtrain: unknown config key 'datasets.chitchat.train.lr2' (did you mean 'lr'?)"),
        ({"resources": {"gpu": {"mem_mb": 10}}},
         "negtrain: config key 'resources.gpu.mem_mb': 10 is less than the minimum of 100"),
        ({"mps": {"below_normal": ["hits", "train_gan"]}},
         "negtrain: config 'mps.below_normal': 'train_gan' is not a GPU rule; GPU rules: augment_targets, "
         "beam_overlap, evaluate_baselines, evaluate_mmi, evaluate_model, hits, negtrain_frequent, negtrain_malicious, "
         "table3, train_baseline, train_gan_lr, train_paraphraser, train_unlikelihood (Algorithm 2's also by their own "
         "names, negtrain_frequent_<dataset>_<i>)"),
        ({"mps": {"active_thread_percentage": {"negtrain_frequent_chitchat_0": 0}}},
         "negtrain: config key 'mps.active_thread_percentage.negtrain_frequent_chitchat_0': 0 is less than the minimum "
         "of 1"),
    ],
)
def test_overlay_config_refused_in_one_line(tmp_path: Path, config: dict, line: str) -> None:
    run = snakemake(tmp_path, "-n", overlays=[overlay(tmp_path, config)])
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [line]
    assert "Traceback" not in run.stdout


def test_mps_takes_gpu_rules_by_their_own_or_their_base_name(tmp_path: Path) -> None:
    """Algorithm 2's rules are named per dataset and job: config ``mps`` takes them by either name."""
    config = {"mps": {"below_normal": ["hits", "negtrain_malicious", "train_gan_lr"],
                      "active_thread_percentage": {"negtrain_frequent": 90, "negtrain_frequent_chitchat_0": 100}}}
    run = snakemake(tmp_path, "-n", "--config", "scale=quick", overlays=[overlay(tmp_path, config)])
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.mark.parametrize("args, line", [
    (["--set-resources", "negtrain_frequent_chitchat:gpu_slots=2"],
     "negtrain: --set-resources names 'negtrain_frequent_chitchat', which is not a rule of this run; Algorithm 2's "
     "here: negtrain_frequent_chitchat_0, negtrain_frequent_chitchat_1, negtrain_frequent_opensubtitles_0, "
     "negtrain_frequent_opensubtitles_1, negtrain_frequent_switchboard_0, negtrain_frequent_switchboard_1, "
     "negtrain_frequent_ubuntu_0, negtrain_frequent_ubuntu_1; every rule: snakemake --list-rules"),
    (["--set-threads", "hit=2"], "negtrain: --set-threads names 'hit', which is not a rule of this run; "),
])
def test_set_resources_and_threads_of_no_rule_refused_in_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    """Snakemake ignores an override for a name that is no rule; at quick scale Algorithm 2's jobs run one r_thres
    each, so their rules carry an index."""
    run = snakemake(tmp_path, "-n", *args, "--config", "scale=quick")
    assert run.returncode == 1
    assert len(stderr_lines(run.stderr)) == 1 and stderr_lines(run.stderr)[0].startswith(line)
    assert "Traceback" not in run.stdout
    good = snakemake(tmp_path, "-n", "--set-resources", "negtrain_frequent_chitchat_1:gpu_slots=2", "--set-threads",
                     "hits=2", "--config", "scale=quick")
    assert good.returncode == 0, good.stderr[-2000:]


def test_missing_raw_file_named_in_one_line(tmp_path: Path) -> None:
    """Downloading off (the default): the exact file, where to get it, where to put it; no traceback."""
    run = snakemake(tmp_path, "-n", "results/switchboard/data/stats.csv")
    assert run.returncode == 1
    assert "Traceback" not in run.stdout and "Exception" not in run.stdout
    assert stderr_lines(run.stderr) == [
        "negtrain: raw input for 'switchboard' not found: raw/switchboard/swda.zip -- download Potts' SwDA csv "
        "release (swda.zip, https://github.com/cgpotts/swda), as a zip/tar.gz or unpacked folder from "
        "https://github.com/cgpotts/swda/raw/master/swda.zip and put it at raw/switchboard/swda.zip (or run with "
        "--config download=True to let the workflow fetch it), or set datasets.switchboard.raw.path in the config"
    ]


@pytest.mark.parametrize("target, overlays, line", [
    ("results/mydata/table4.csv", False,
     "negtrain: results/mydata/table4.csv: no dataset 'mydata' under 'datasets'; configured: chitchat, switchboard, "
     "ubuntu, opensubtitles. A dataset of your own needs its block: pass the --configfile that holds it (README, "
     "'Using your own data')"),
    ("results/mydta/data/train.parquet", True,
     "negtrain: results/mydta/data/train.parquet: no dataset 'mydta' under 'datasets' (did you mean 'mydata'?); "
     "configured: chitchat, switchboard, ubuntu, opensubtitles, mydata. A dataset of your own needs its block: pass "
     "the --configfile that holds it (README, 'Using your own data')"),
])
def test_a_target_of_no_configured_dataset_named_in_one_line(tmp_path: Path, target: str, overlays: bool,
                                                              line: str) -> None:
    """Its overlay left out, or its name misspelt: not Snakemake's bare 'No rule to produce'."""
    own = overlay(tmp_path, {"datasets": {"mydata": {"reader": "jsonl", "raw": {"path": "mydata.jsonl"}}}})
    run = snakemake(tmp_path, "-n", target, overlays=[own] if overlays else [])
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [line]
    assert "Traceback" not in run.stdout and "MissingRule" not in run.stdout


RESULTS_LIST = ("table3.csv, table4.csv, table6.csv, table8.csv, table9.csv, figure1.png, curves.csv, curves.png, "
                "paper_comparison.csv, paper_comparison.png, rating_key.csv, thresholds.json, samples_frequent.txt, "
                "samples_malicious.txt")


@pytest.mark.parametrize("target, line", [
    ("results/chitchat/table3", "negtrain: results/chitchat/table3: no rule makes it (did you mean 'table3.csv'?); a "
     f"dataset's results are {RESULTS_LIST} (docs/architecture.md)"),
    ("results/chitchat/report.html", "negtrain: results/chitchat/report.html: no rule makes it; a dataset's results "
     f"are {RESULTS_LIST} (docs/architecture.md)"),
    ("results/chitchat/models/freq-0.05.pt", "negtrain: results/chitchat/models/freq-0.05.pt: r_thres '0.05' is not in "
     "datasets.chitchat.frequent.r_thres (0.1, 0.01); add it to that list to train it"),
    ("results/chitchat/eval/freq-0.05/metrics.json", "negtrain: results/chitchat/models/freq-0.05.pt: r_thres '0.05' "
     "is not in datasets.chitchat.frequent.r_thres (0.1, 0.01); add it to that list to train it"),
    ("results/chitchat/models/freq-0.10_curve.csv", "negtrain: results/chitchat/models/freq-0.10_curve.csv: "
     "Algorithm 2's paths spell r_thres 0.10 as freq-0.1"),
])
def test_a_result_no_rule_makes_named_in_one_line(tmp_path: Path, target: str, line: str) -> None:
    """A misspelt file of a configured dataset, or an Algorithm 2 run its config does not list: not Snakemake's bare
    'No rule to produce'."""
    run = snakemake(tmp_path, "-n", target)
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [line]
    assert "Traceback" not in run.stdout and "MissingRule" not in run.stdout


def test_every_configured_result_still_builds(tmp_path: Path) -> None:
    """The catch rules leave what the config lists to the rules that make it: a configured r_thres, and each name in
    the catch rule's list is made by a rule of rules/ (and every file a rule makes in results/<dataset>/ is listed)."""
    run = snakemake(tmp_path, "-n", "--config", "scale=quick", "--",
                    "results/chitchat/models/freq-0.1.pt", "results/chitchat/models/freq-0.01_curve.csv")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "unconfigured_r_thres" not in run.stdout and "negtrain_frequent_chitchat" in run.stdout
    rules = "\n".join(path.read_text() for path in (Path(__file__).parents[1] / "rules").glob("*.smk"))
    made = set(re.findall(r'"results/\{dataset\}/([^/"{]+)"', rules))
    assert made == set(RESULTS_LIST.split(", "))


def test_an_r_thres_written_with_an_exponent_builds_table_4(tmp_path: Path) -> None:
    """Algorithm 2's files spell r_thres as Python's ``:g`` does, which writes 0.00005 as 5e-05: the model wildcard
    takes that spelling, as the GAN's g_lr does, rather than leaving table4 a bare MissingInputException."""
    config = {"datasets": {"chitchat": {"frequent": {"r_thres": [0.1, 0.00005]}}}}
    run = snakemake(tmp_path, "-n", "--config", "scale=quick", "--", "results/chitchat/table4.csv",
                    overlays=[overlay(tmp_path, config)])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "results/chitchat/eval/freq-5e-05/metrics.json" in run.stdout


def test_the_workflow_s_own_results_folders_still_build(tmp_path: Path) -> None:
    """results/targets/ and results/paraphrase/ are not datasets, and rule unknown_dataset leaves them alone."""
    run = snakemake(tmp_path, "-n", "results/targets/train_0.5k.txt", "results/paraphrase/models/paraphraser.pt")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "unknown_dataset" not in run.stdout


def test_every_rule_says_what_it_makes(tmp_path: Path) -> None:
    """snakemake --list-rules is the map of the pipeline: each rule with its docstring."""
    run = snakemake(tmp_path, "--list-rules")
    assert run.returncode == 0, run.stderr[-2000:]
    rules = [line for line in run.stdout.splitlines() if re.match(r"^[a-z]\w* ?", line)]
    assert len(rules) >= 25 and "train_baseline" in run.stdout
    bare = [line.strip() for line in rules if not re.fullmatch(r"\w+ \(.+\)", line)]
    assert not bare, f"rules without a docstring (the first line of the rule, saying what it makes): {bare}"


def test_a_file_of_one_s_own_under_results_is_an_input_not_an_unknown_dataset(tmp_path: Path) -> None:
    """A target list kept in results/lists/: the file exists, so rule unknown_dataset lets it be read."""
    lists = tmp_path / "results" / "lists"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("i hate you\n")
    run = snakemake(tmp_path, "-n", "results/targets/train_0.5k.txt",
                    overlays=[overlay(tmp_path, {"targets": {"train": "results/lists/train.txt"}})])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rule malicious_lists:\n    input: results/lists/train.txt" in run.stdout


def test_missing_split_file_named_in_one_line(tmp_path: Path) -> None:
    """The raw corpus is there but the authors' split file is not: the line names the split file and its key."""
    (tmp_path / "swda.zip").write_bytes(b"")
    config = {"datasets": {"switchboard": {"raw": {"path": str(tmp_path / "swda.zip")}}}}
    run = snakemake(tmp_path, "-n", "results/switchboard/data/stats.csv", overlays=[overlay(tmp_path, config)])
    assert run.returncode == 1
    assert "Traceback" not in run.stdout and "Exception" not in run.stdout
    assert stderr_lines(run.stderr) == [
        "negtrain: split file for 'switchboard' not found: raw/switchboard/he_glass_test.txt -- download the "
        "authors' processed SwDA test file (data/swda_dialogue/process_oneline/test/test.txt of "
        "https://github.com/cloudygoose/negativetraining_acl2020) and put it at raw/switchboard/he_glass_test.txt, "
        "or set datasets.switchboard.split.authors_file in the config"
    ]


def rule_edges(dot: str) -> set[tuple[str, str]]:
    """(rule, rule that reads its output) pairs of the graph ``snakemake --rulegraph`` prints."""
    names = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', dot, re.M))
    return {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}


def test_only_the_rules_that_read_the_target_lists_wait_for_their_check(tmp_path: Path) -> None:
    """Table 4 needs no target list, so a list that does not fit a corpus (another language) must not block it; the
    rules that read the lists (hits, Algorithm 1) wait for the check, the baselines do not."""
    run = snakemake(tmp_path, "--rulegraph", "--config", "scale=quick", "--", "results/chitchat/table4.csv")
    assert run.returncode == 0, run.stderr
    table4 = rule_edges(run.stdout)
    assert ("preprocess", "train_baseline") in table4 and not any("check_targets" in e for e in table4)
    run = snakemake(tmp_path, "--rulegraph", "--config", "scale=quick", "--", "results/chitchat/table3.csv")
    assert run.returncode == 0, run.stderr
    waits = {b for a, b in rule_edges(run.stdout) if a == "check_targets"}
    assert waits == {"hits", "negtrain_malicious"}


@pytest.mark.parametrize("on", [False, True])
def test_algorithm_1_reads_the_test_pairs_only_with_eval_every_epoch(tmp_path: Path, on: bool) -> None:
    """malicious.eval_every_epoch adds the test pairs to Algorithm 1's inputs; left off, its inputs are what they
    were before the option existed (no rerun on upgrade)."""
    args = ["-n", "--config", "scale=quick", "--", "results/chitchat/models/negtr-o-0.5k.pt"]
    run = snakemake(tmp_path, *args, overlays=[overlay(tmp_path, {"malicious": {"eval_every_epoch": on}})])
    assert run.returncode == 0, run.stderr
    inputs = re.search(r"^rule negtrain_malicious:\n\s+input: (.*)$", run.stdout, re.M).group(1).split(", ")
    assert ("results/chitchat/data/test.parquet" in inputs) is on
    assert len(inputs) == 7 + on
