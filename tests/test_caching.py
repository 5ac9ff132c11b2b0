"""A changed config key reruns exactly the rules whose results it decides (config.rule_key, config.RULE_READS).

Snakemake reruns a rule when its recorded params change, but records only plain values: the typed settings the rules
pass their scripts are invisible to it. Each rule also passes ``settings_key``, the JSON of the settings fields it
reads; these tests check the keys, that every job of the quick pipeline read no field its rule does not declare
(``NEGTRAIN_SETTINGS_READS``, set by the ``quick_run`` fixture), and what a dry run on that pipeline's results
schedules after a config change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from negtrain_core import config as ncfg

from conftest import QUICK_SMALL, QUICK_TINY
from snakemake_cli import snakemake

ROOT = Path(__file__).resolve().parent.parent


def _settings(**changes: dict) -> ncfg.Settings:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for block, values in changes.items():
        if isinstance(values, dict):
            cfg[block].update(values)
        else:
            cfg[block] = values
    return ncfg.settings(ncfg.validate(cfg), "switchboard")


@pytest.mark.parametrize("change, changes, same", [
    ({"malicious": {"nonhit_weight": 0.02}}, ["negtrain_malicious", "beam_overlap"],
     ["train_baseline", "hits", "preprocess", "negtrain_frequent_switchboard"]),
    ({"search": {"candidates": 50}}, ["hits", "negtrain_malicious"],
     ["train_baseline", "negtrain_frequent", "check_targets"]),
    ({"search": {"oov_policy": "unk"}}, ["check_targets", "hits", "negtrain_malicious"], ["train_baseline"]),
    ({"targets": {"max_oov_share": 0.4}}, ["check_targets"], ["train_baseline", "preprocess"]),
    ({"train": {"clip_norm": 1.0}}, ["train_baseline", "negtrain_frequent"],
     ["negtrain_malicious", "hits", "evaluate_model"]),
    ({"frequent": {"eos_weight": 0.2}}, ["negtrain_frequent_switchboard_0"],
     ["negtrain_malicious", "train_baseline", "evaluate_model"]),
    ({"device": "cpu", "gpu_jobs_per_device": 3, "search": {"max_chunk": 1024}, "train": {"log_every": 7}}, [],
     ["train_baseline", "hits", "negtrain_malicious", "negtrain_frequent", "table3"]),
])
def test_a_rules_key_changes_with_the_settings_it_reads_and_no_others(change, changes, same):
    base, changed = _settings(), _settings(**change)
    for rule in changes:
        assert ncfg.rule_key(base, rule) != ncfg.rule_key(changed, rule), rule
    for rule in same:
        assert ncfg.rule_key(base, rule) == ncfg.rule_key(changed, rule), rule


def test_the_table_rules_are_keyed_on_every_setting():
    """Rules RULE_READS leaves out (tables, report: seconds each) take every field, so any change reruns them."""
    assert ncfg.rule_reads("table3") is None and ncfg.rule_reads("table4_table9") is None
    fields = json.loads(ncfg.rule_key(_settings(), "table3"))
    assert {"malicious", "frequent", "gan", "train", "model"} <= set(fields)


def test_a_key_is_plain_sorted_json_and_the_same_for_equal_settings():
    key = ncfg.rule_key(_settings(), "negtrain_malicious")
    assert key == ncfg.rule_key(_settings(), "negtrain_malicious")
    assert key == json.dumps(json.loads(key), sort_keys=True, default=str)            # sorted at every depth
    fields = json.loads(key)
    assert sorted(fields) == sorted(ncfg.RULE_READS["negtrain_malicious"])
    assert "max_chunk" not in fields["search"]["negtrain"]["io"] and fields["malicious"]["epochs"] == 20


def test_an_option_added_later_is_in_the_key_only_away_from_its_neutral_value():
    """KEY_NEUTRAL: malicious.eval_every_epoch false is the behaviour from before the option, so it leaves the keys as
    they were (upgrading reruns nothing); true changes Algorithm 1's key (and the evaluation it feeds reruns)."""
    base, on = _settings(), _settings(malicious={"eval_every_epoch": True})
    assert "eval_every_epoch" not in json.loads(ncfg.rule_key(base, "negtrain_malicious"))["malicious"]
    assert json.loads(ncfg.rule_key(on, "negtrain_malicious"))["malicious"]["eval_every_epoch"] is True
    assert ncfg.rule_key(base, "train_baseline") == ncfg.rule_key(on, "train_baseline")
    device = _settings(search={"lm_sample_rng": "device"})                      # search.lm_sample_rng likewise
    for rule in ("hits", "negtrain_malicious"):
        assert "lm_sample_rng" not in json.loads(ncfg.rule_key(base, rule))["search"]["attack"]["io"]
        assert json.loads(ncfg.rule_key(device, rule))["search"]["attack"]["io"]["lm_sample_rng"] == "device"


def test_recorded_settings_equal_the_settings_and_record_each_field_read():
    s = _settings()
    r = ncfg.recorded(s)
    before = set(ncfg.settings_read())
    assert r.malicious == s.malicious and r.train.lr == s.train.lr
    assert {"malicious", "train"} <= set(ncfg.settings_read()) and "gan" not in set(ncfg.settings_read()) - before


def test_every_job_read_only_the_settings_its_rule_declares(quick_run):
    """Every job of the quick pipeline wrote the fields it read (stage.record_reads): a field a rule reads but does
    not declare would leave that rule's results stale when the field changes."""
    records = [json.loads(p.read_text()) for p in sorted((quick_run / "settings_reads").glob("*.json"))]
    rules = {r["rule"] for r in records}
    assert {"preprocess", "train_baseline", "hits", "negtrain_malicious", "table3"} <= rules, rules
    reads = {r["rule"]: set(r["read"]) for r in records}                  # the recording itself works
    assert {"data", "model", "train"} <= reads["train_baseline"] and "malicious" in reads["negtrain_malicious"]
    for r in records:
        declared = ncfg.rule_reads(r["rule"])
        if declared is not None:
            undeclared = set(r["read"]) - {d.split(".")[0] for d in declared} - ncfg.RESOURCE_KEYS
            assert not undeclared, f"rule {r['rule']} read {sorted(undeclared)}, not in RULE_READS"


def _scheduled(workdir: Path, overlay: dict, tmp_path: Path) -> tuple[set[str], str]:
    """The rules a dry run with ``overlay`` schedules, and its output (which names each job's files)."""
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    quick = ROOT / "tests" / "quick_small.yaml"
    run = snakemake(workdir, "-n", "--cores", "2", "--config", "scale=quick", "device=cpu",
                    overlays=[quick, path], timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    names = re.findall(r"^(?:local)?rule (\w+):", run.stdout, flags=re.M)
    return {re.sub(r"^negtrain_frequent_\w+$", "negtrain_frequent", n) for n in names}, run.stdout  # one rule/dataset


@pytest.mark.parametrize("overlay, reruns, keeps", [
    ({}, set(), {"preprocess", "train_baseline"}),
    ({"gpu_jobs_per_device": 3}, set(), {"preprocess", "train_baseline"}),
    ({"malicious": {"nonhit_weight": 0.02}}, {"negtrain_malicious", "hits", "table3"},
     {"preprocess", "train_baseline", "evaluate_baselines", "negtrain_frequent"}),
    ({"frequent": {"eos_weight": 0.2}}, {"negtrain_frequent", "table4_table9"},
     {"preprocess", "train_baseline", "negtrain_malicious"}),
])
def test_a_changed_config_key_reruns_the_rules_that_read_it(quick_run, tmp_path, overlay, reruns, keeps):
    """A dry run on the quick pipeline's finished results: nothing to do without a change (the run took
    tests/quick_mps.yaml, these dry runs do not: config mps reruns nothing), or with a change to where jobs run; a
    changed Algorithm 1 or 2 key schedules that algorithm and what follows from it, not the baselines, nor their hit
    tests (rule check_targets' report, which they and Algorithm 1 wait for, is kept, so the check does not rerun)."""
    scheduled, dry = _scheduled(quick_run, overlay, tmp_path)
    assert reruns <= scheduled, scheduled
    assert not (keeps & scheduled), scheduled
    assert "check_targets" not in scheduled and "output: results/chitchat/hits/baseline/" not in dry, dry[-3000:]
    if not reruns:
        assert not scheduled, scheduled


def test_a_search_key_changed_after_a_failed_algorithm_1_job_reruns_that_job(tmp_path):
    """After a failed Algorithm 1 job check_targets' report is there (it is kept), and a search key changed then
    (``search.cuda_graph: false``, as its capture error advises) must schedule Algorithm 1 again. Snakemake 9 drops a job whose only input from a job it reruns is ``ancient`` (dag.py,
    ``update_needrun``), so check_targets is keyed on the three fields it reads, not on the whole search block: here
    it does not rerun and Algorithm 1 does."""
    graphs = tmp_path / "graphs.yaml"
    graphs.write_text(yaml.safe_dump({"search": {"cuda_graph": True}}))
    sizes = [QUICK_SMALL, QUICK_TINY]
    before = ["results/chitchat/models/seq2seq.pt", "results/chitchat/models/lm.pt", "results/targets/train_0.5k.txt",
              "results/chitchat/thresholds.json", "results/chitchat/data/targets_checked.txt"]
    run = snakemake(tmp_path, "--cores", "2", "--config", "scale=quick", "device=cpu", "--", *before,
                    overlays=[*sizes, graphs], timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (tmp_path / before[-1]).is_file()
    graphs.write_text(yaml.safe_dump({"search": {"cuda_graph": False}}))
    dry = snakemake(tmp_path, "-n", "--cores", "2", "--config", "scale=quick", "device=cpu", "--",
                    "results/chitchat/models/negtr-o-0.5k.pt", overlays=[*sizes, graphs], timeout=600)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    scheduled = set(re.findall(r"^(?:local)?rule (\w+):", dry.stdout, flags=re.M))
    assert scheduled == {"negtrain_malicious"}, dry.stdout[-3000:]
    # a setting check_targets does read: the pinned Snakemake (9.27.1) reruns check_targets alone and ends with
    # success; the workflow's onsuccess then says in one line that the file asked for is missing and what to do
    graphs.write_text(yaml.safe_dump({"search": {"cuda_graph": False, "oov_policy": "unk"}}))
    target = "results/chitchat/models/negtr-o-0.5k.pt"
    run = snakemake(tmp_path, "--cores", "2", "--config", "scale=quick", "device=cpu", "--", target,
                    overlays=[*sizes, graphs], timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    told = [line for line in run.stderr.splitlines() if "did not write 1 of the files asked for" in line]
    assert told and not (tmp_path / target).is_file(), (run.stdout + run.stderr)[-3000:]
    assert f"({target})" in told[0] and "run the same command again" in told[0]
