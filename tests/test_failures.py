"""Every failure a clear line, nothing mangled in silence, nothing partial left behind.

Each workflow script is run as Snakemake runs it (``runpy`` with a ``snakemake`` object holding the rule's inputs,
outputs, params and wildcards) on inputs written here: a damaged pipeline file (truncated Parquet, CSV cut short,
half a JSON, a cut checkpoint or text file), or, for the rules that read only the user's files, a bad corpus, list,
paraphrase TSV or download. Each must end with exit status 1, ONE line on stderr naming the file (and line) or the
config key and saying what to do, the traceback in the rule log, and none of the rule's outputs left (a stale
output and a temporary file left by an earlier, killed attempt included).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from negtrain_core import config as ncfg
from negtrain_core import io as nio
from negtrain_core import stage
from negtrain_core.config import ModelSettings, ParaphraseCorpus
from negtrain_core.data import preprocess
from negtrain_core.data.raw import RawSource
from negtrain_core.data.vocab import Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.lstm import LSTMLM, Seq2Seq

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "workflow_scripts"
D = "results/chitchat"
REBUILD = "delete it and rerun the workflow to rebuild it"


class Files(list):
    """A Snakemake ``Namedlist``: the flat list of paths, each name giving its path or list of paths."""

    def __init__(self, **named):
        super().__init__(p for v in named.values() for p in (v if isinstance(v, list) else [v]))
        self._named = named
        self.__dict__.update(named)

    def __getitem__(self, key):
        return self._named[key] if isinstance(key, str) else super().__getitem__(key)

    def get(self, key, default=None):
        return self._named.get(key, default)


def job(inputs: dict, outputs: dict, params: dict | None = None, wildcards: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(input=Files(**inputs), output=Files(**outputs), params=SimpleNamespace(**(params or {})),
                           wildcards=SimpleNamespace(**(wildcards or {})), threads=1, log=Files(log="logs/job.log"))


def quick_config(**changes) -> dict:
    config = ncfg.load(ROOT / "config.yaml")
    config.update({"scale": "quick", "device": "cpu", **changes})
    return config


SETTINGS = ncfg.settings(quick_config(), "chitchat")
SHARED = ncfg.settings(quick_config())


@pytest.fixture(autouse=True)
def _in_scratch(tmp_path, monkeypatch):
    """Each test in its own working directory (paths as the rules give them: results/..., logs/...); torch's
    threads put back afterwards (the adapter sets them)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_script(name: str, smk: SimpleNamespace, capsys) -> str:
    """Run workflow_scripts/<name>.py as rule ``smk``; it must exit 1. Returns its one stderr line."""
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": smk})
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.rstrip("\n")


def plant_partials(smk: SimpleNamespace) -> list[Path]:
    """What a killed earlier attempt leaves: a partial file at each output and a temporary file beside it."""
    left = []
    for out in smk.output:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
        tmp = path.parent / f".{path.name}.k1ll3d.tmp"
        tmp.write_bytes(b"half")
        left += [path, tmp]
    return left


def assert_clean_failure(smk: SimpleNamespace, left: list[Path], line: str) -> None:
    """No output, no temporary file; the line and the traceback in the rule log."""
    assert not [p for p in left if p.exists()]
    log = Path(smk.log[0]).read_text()
    assert line in log and "Traceback (most recent call last)" in log


# ---------------------------------------------------------------------------------------------- damaged files


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"source": ["hi there"] * 50, "target": ["hello"] * 50}).to_parquet(buf, index=False)
    return buf.getvalue()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"x" * 500)
    return buf.getvalue()


# suffix -> (the kind the line names, bytes of a file cut short)
DAMAGED = {
    ".parquet": ("Parquet file", _parquet_bytes()[:-300]),
    ".csv": ("CSV file", b"model,value\nbaseline,0.5\nnegtr,0."),
    ".json": ("JSON file", b'{"seq2seq": {"avg": -4.'),
    ".pt": ("checkpoint", _zip_bytes()[:-40]),
    ".txt": ("text file", b"i hate you\nyou are"),
}


def damage(paths) -> None:
    for p in paths:
        if Path(p).parts[0] == "results":
            Path(p).parent.mkdir(parents=True, exist_ok=True)
            Path(p).write_bytes(DAMAGED[Path(p).suffix][1])


def model_paths(*names: str) -> dict[str, str]:
    return {n: f"{D}/models/{n}.pt" for n in names}


DATA = {split: f"{D}/data/{split}.parquet" for split in ("train", "valid", "test")}
VOCAB, THRESHOLDS = f"{D}/data/vocab.txt", f"{D}/thresholds.json"
LISTS = {"train": "results/targets/train_0.5k.txt", "test": "results/targets/test_0.5k.txt"}
S = {"settings": SETTINGS}

# workflow script -> the rule's inputs, outputs, params, wildcards (as rules/*.smk give them)
RULES = {
    "augment_targets": job({**LISTS, "ckpt": "results/paraphrase/models/paraphraser.pt", "given": []},
                           {"aug1": "results/targets/train_1k.txt", "aug4": "results/targets/train_2.5k.txt"},
                           {"settings": SHARED}),
    "beam_overlap": job({"baseline": f"{D}/models/seq2seq.pt", "negtrained": [f"{D}/models/negtr-o-0.5k.pt"],
                         "test": DATA["test"], "vocab": VOCAB}, {"csv": f"{D}/eval/beam_overlap.csv"}, S),
    "check_targets": job({"vocab": VOCAB, "lists": [str(ROOT / SETTINGS.targets.train)]},
                         {"checked": f"{D}/data/targets_checked.txt"}, S),
    "curves": job({"malicious": [f"{D}/models/negtr-o-0.5k_curve.csv"], "frequent": [f"{D}/models/freq-0.1_curve.csv"],
                   "baseline": [f"{D}/models/seq2seq_curve.csv"]}, {"png": f"{D}/curves.png", "csv": f"{D}/curves.csv"},
                  S),
    "evaluate_baselines": job({"test": DATA["test"], "vocab": VOCAB, **model_paths("seq2seq", "lm")},
                              {"table8": f"{D}/table8.csv", "thresholds": THRESHOLDS}, S),
    "evaluate_mmi": job({**model_paths("seq2seq", "lm"), "valid": DATA["valid"], "test": DATA["test"]},
                        {"responses": f"{D}/eval/mmi/greedy.parquet", "metrics": f"{D}/eval/mmi/metrics.json",
                         "sweep": f"{D}/eval/mmi/sweep.csv"}, S),
    "evaluate_model": job({"ckpt": f"{D}/models/seq2seq.pt", "test": DATA["test"]},
                          {"responses": f"{D}/eval/baseline/greedy.parquet",
                           "metrics": f"{D}/eval/baseline/metrics.json"}, S, {"model": "baseline"}),
    "hits": job({**model_paths("seq2seq", "lm"), "vocab": VOCAB, "targets": LISTS["train"],
                 "targets_checked": f"{D}/data/targets_checked.txt", "thresholds": THRESHOLDS},
                {"hits": f"{D}/hits/baseline/train.parquet", "rates": f"{D}/hits/baseline/train_rates.csv"}, S,
                {"model": "baseline", "target_list": "train"}),
    "negtrain_frequent": job({"seq2seq": f"{D}/models/seq2seq.pt", "train": DATA["train"], "test": DATA["test"]},
                             {"ckpt": [f"{D}/models/freq-0.1.pt"], "curve": [f"{D}/models/freq-0.1_curve.csv"]},
                             {**S, "r_thres": [0.1]}),
    "negtrain_malicious": job({**model_paths("seq2seq", "lm"), "train": DATA["train"], "vocab": VOCAB,
                               "targets": LISTS["train"], "targets_checked": f"{D}/data/targets_checked.txt",
                               "thresholds": THRESHOLDS},
                              {"ckpt": f"{D}/models/negtr-o-0.5k.pt", "curve": f"{D}/models/negtr-o-0.5k_curve.csv"},
                              S, {"mode": "o", "size": "0.5k"}),
    "paper_comparison": job({t: f"{D}/{t}.csv" for t in ("table3", "table4", "table8", "table9")},
                            {"csv": f"{D}/paper_comparison.csv", "png": f"{D}/paper_comparison.png"}, S),
    "rating_sheet": job({"baseline": f"{D}/eval/baseline/greedy.parquet",
                         "negtrain": f"{D}/eval/freq-0.01/greedy.parquet"},
                        {"csv": f"{D}/rating/sheet.csv", "html": f"{D}/rating/sheet.html",
                         "key": f"{D}/rating_key.csv"},
                        S),
    "table3": job({"hits": [f"{D}/hits/baseline/train.parquet"], "metrics": [f"{D}/eval/baseline/metrics.json"],
                   "lists": [LISTS["train"]], "overlap": f"{D}/eval/beam_overlap.csv",
                   "seq2seq": f"{D}/models/seq2seq.pt", "negtr": f"{D}/models/negtr-io-0.5k.pt",
                   "test": DATA["test"], "vocab": VOCAB},
                  {"table": f"{D}/table3.csv", "figure": f"{D}/figure1.png", "samples": f"{D}/samples_malicious.txt"},
                  {**S, "not_run": None}),
    "table4": job({"test": DATA["test"], "metrics": [f"{D}/eval/baseline/metrics.json"],
                   "responses": [f"{D}/eval/baseline/greedy.parquet"]},
                  {"table4": f"{D}/table4.csv", "table9": f"{D}/table9.csv", "samples": f"{D}/samples_frequent.txt"},
                  S),
    "table6": job({"ratings": "filled_in.csv", "key": f"{D}/rating_key.csv"}, {"table": f"{D}/table6.csv"}, S),
    "table_view": job({"csv": f"{D}/table3.csv", "figures": []}, {"html": f"{D}/report/table3.html"}, {},
                      {"table": "table3", "dataset": "chitchat"}),
    "train_baseline": job({"train": DATA["train"], "valid": DATA["valid"], "vocab": VOCAB},
                          {"ckpt": f"{D}/models/seq2seq.pt", "curve": f"{D}/models/seq2seq_curve.csv"}, S,
                          {"kind": "seq2seq"}),
    "train_gan": job({"rows": [f"{D}/models/gan/g_lr-0.001.csv"], "ckpts": [f"{D}/models/gan/g_lr-0.001.pt"]},
                     {"ckpt": f"{D}/models/gan.pt", "sweep": f"{D}/models/gan_sweep.csv"}, S),
    "train_gan_lr": job({"seq2seq": f"{D}/models/seq2seq.pt", "train": DATA["train"], "valid": DATA["valid"]},
                        {"ckpt": f"{D}/models/gan/g_lr-0.001.pt", "row": f"{D}/models/gan/g_lr-0.001.csv"}, S,
                        {"g_lr": "0.001"}),
    "train_unlikelihood": job({"seq2seq": f"{D}/models/seq2seq.pt", "train": DATA["train"]},
                              {"ckpt": f"{D}/models/ul.pt", "curve": f"{D}/models/ul_curve.csv"}, S),
}
# the rules that read only the user's files: each has its own bad input below
USER_INPUT_RULES = {"fetch_raw", "malicious_lists", "preprocess", "train_paraphraser"}


def test_every_workflow_script_has_a_failure_case():
    assert {p.stem for p in SCRIPTS.glob("*.py")} == set(RULES) | USER_INPUT_RULES


@pytest.mark.parametrize("name", sorted(RULES))
def test_a_damaged_pipeline_file_stops_the_rule_in_one_line_naming_it(name, capsys):
    smk = RULES[name]
    damage(smk.input)
    left = plant_partials(smk)
    first = next(p for p in smk.input if Path(p).parts[0] == "results")
    line = run_script(name, smk, capsys)
    kind = DAMAGED[Path(first).suffix][0]
    assert re.fullmatch(rf"negtrain: {re.escape(first)}: truncated or corrupt {kind} \(.+\); {REBUILD}", line), line
    assert_clean_failure(smk, left, line)


# ---------------------------------------------------------------------------------------------- the user's files


def test_bad_corpus(tmp_path, capsys):
    """A raw archive cut short: preprocess names it."""
    import tarfile

    dialogs = tmp_path / "udc" / "dialogs" / "1"
    dialogs.mkdir(parents=True)
    for i in range(20):
        (dialogs / f"{i}.tsv").write_text(f"2004-01-01T00:00:00.000Z\ta\t\thello {i}\n"
                                          f"2004-01-01T00:00:01.000Z\tb\t\thi {i}\n")
    tgz = tmp_path / "udc.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(tmp_path / "udc" / "dialogs", arcname="dialogs")
    tgz.write_bytes(tgz.read_bytes()[:-200])
    data = dataclasses.replace(SETTINGS.data, reader="udc_v1", raw={"path": str(tgz)})
    outs = {k: f"{D}/data/{k}.{ext}" for k, ext in
            (("train", "parquet"), ("valid", "parquet"), ("test", "parquet"), ("vocab", "txt"), ("stats", "csv"),
             ("notes", "json"))}
    smk = job({"raw": str(tgz)}, outs, {"settings": dataclasses.replace(SETTINGS, data=data)})
    left = plant_partials(smk)
    line = run_script("preprocess", smk, capsys)
    # the member being read when the data ran out may be named: "<tgz> (member dialogs/1/2.tsv): truncated ..."
    assert line.startswith(f"negtrain: {tgz}") and "truncated or corrupt archive" in line
    assert_clean_failure(smk, left, line)


def test_bad_list(tmp_path, capsys):
    """A target no response can hold (targets.max_len: preprocess.max_target_len): file and line."""
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text("i hate you\n" + " ".join(["you"] * 25) + "\n")
    test.write_text("you are bad\n")
    smk = job({"train": str(train), "test": str(test)}, dict(LISTS), {"settings": SHARED})
    left = plant_partials(smk)
    line = run_script("malicious_lists", smk, capsys)
    assert line == (f"negtrain: {train}:2: target of 25 words is longer than the 19 a response can have "
                    f"(preprocess.max_target_len 20, </s> included): shorten it or remove it")
    assert_clean_failure(smk, left, line)


def test_bad_paraphrase_tsv(tmp_path, capsys):
    """A ParaNMT file most of whose lines are not two tab-separated sentences: file and first bad line."""
    tsv = tmp_path / "paranmt.tsv"
    tsv.write_text("i do n't know .\ti have no idea .\t0.9\nno tab on this line\nnor on this one\n")
    shared = dataclasses.replace(SHARED, paraphrase=dataclasses.replace(
        SHARED.paraphrase, corpora=(ParaphraseCorpus(format="paranmt", path=str(tsv)),)))
    smk = job({}, {"ckpt": "results/paraphrase/models/paraphraser.pt",
                   "curve": "results/paraphrase/models/paraphraser_curve.csv"}, {"settings": shared})
    left = plant_partials(smk)
    line = run_script("train_paraphraser", smk, capsys)
    assert line.startswith(f"negtrain: {tsv}: ") and f"{tsv}:2: " in line
    assert_clean_failure(smk, left, line)


@pytest.mark.parametrize("lines, expected", [
    ("", "{tsv}: no paraphrase pairs in it (0 lines read)"),
    ("i do n't know .\ti have no idea .\t0.9\n",
     "config key 'paraphrase.corpora': 1 pair(s) in {tsv} leave 0 training and 2 validation rows (sentences of at most "
     "{n} words); the paraphraser needs a larger corpus"),
])
def test_paraphrase_corpus_too_small(tmp_path, capsys, lines, expected):
    """An empty ParaNMT file, and one whose single pair the validation split takes: one line, nothing written."""
    tsv = tmp_path / "paranmt.tsv"
    tsv.write_text(lines)
    shared = dataclasses.replace(SHARED, paraphrase=dataclasses.replace(
        SHARED.paraphrase, corpora=(ParaphraseCorpus(format="paranmt", path=str(tsv)),)))
    data = shared.paraphrase.data
    smk = job({}, {"ckpt": "results/paraphrase/models/paraphraser.pt",
                   "curve": "results/paraphrase/models/paraphraser_curve.csv"}, {"settings": shared})
    left = plant_partials(smk)
    line = run_script("train_paraphraser", smk, capsys)
    n = min(data.max_source_len - int(data.source_eou), data.max_target_len - 1)
    assert line == "negtrain: " + expected.format(tsv=tsv, n=n)
    assert_clean_failure(smk, left, line)


def test_bad_download(tmp_path, capsys):
    """A download whose sha256 is not the pinned one: the destination named, nothing installed."""
    got = tmp_path / "download.zip"
    got.write_bytes(b"<html>rate limited</html>")
    dest = "raw/ubuntu/corpus.zip"
    smk = job({"download": str(got)}, {"raw": dest},
              {"source": RawSource("ubuntu", dest, "https://example.org/corpus.zip", "0" * 64)})
    left = plant_partials(smk)
    line = run_script("fetch_raw", smk, capsys)
    assert line.startswith(f"negtrain: checksum mismatch for {dest}: expected sha256 {'0' * 64}, downloaded ")
    assert_clean_failure(smk, left, line)


# ---------------------------------------------------------------------------------------------- checkpoints, config


def write_data(vocab_words: list[str]) -> Vocab:
    """A tiny dataset under results/chitchat/data: three splits and the vocabulary of ``vocab_words``."""
    vocab = Vocab.build([vocab_words], len(vocab_words))
    frame = pd.DataFrame({"dialogue_id": ["d"] * 8, "turn": range(1, 9), "source": ["i hate you"] * 8,
                          "target": ["you are bad"] * 8})
    for path in DATA.values():
        nio.write_parquet(frame, path)
    vocab.save(VOCAB)
    return vocab


def tiny_checkpoint(path: str, vocab: Vocab, kind: str = "seq2seq") -> None:
    settings = ModelSettings(vocab_size=len(vocab), embedding_dim=4, hidden_dim=4)
    checkpoint.save(path, Seq2Seq(settings) if kind == "seq2seq" else LSTMLM(settings), kind=kind, vocab=vocab)


def test_checkpoint_of_another_vocabulary(capsys):
    vocab = write_data(["i", "hate", "you", "are", "bad"])
    other = Vocab.build([["you", "are", "nice"]], 3)
    for name in ("seq2seq", "lm"):
        tiny_checkpoint(f"{D}/models/{name}.pt", other, name)
    smk = RULES["evaluate_baselines"]
    left = plant_partials(smk)
    line = run_script("evaluate_baselines", smk, capsys)
    assert line == (f"negtrain: {D}/models/lm.pt: vocabulary mismatch: the checkpoint was trained with vocabulary "
                    f"sha256 {other.sha256[:12]} (8 tokens), the dataset's is {vocab.sha256[:12]} (10 tokens); "
                    f"retrain it on this dataset's vocab.txt")
    assert_clean_failure(smk, left, line)


def test_checkpoint_of_another_kind(capsys):
    """A seq2seq checkpoint where the LM should be (results copied by hand, or kept by --rerun-triggers mtime)."""
    vocab = write_data(["i", "hate", "you", "are", "bad"])
    for name in ("seq2seq", "lm"):
        tiny_checkpoint(f"{D}/models/{name}.pt", vocab)
    smk = RULES["evaluate_baselines"]
    left = plant_partials(smk)
    line = run_script("evaluate_baselines", smk, capsys)
    assert line == (f"negtrain: {D}/models/lm.pt: a seq2seq checkpoint where an LM is expected; delete it and rerun "
                    f"the workflow to rebuild it")
    assert_clean_failure(smk, left, line)


def test_checkpoint_of_another_architecture(capsys):
    """An LSTM's checkpoint read by a stage whose settings say model.arch: transformer."""
    vocab = write_data(["i", "hate", "you", "are", "bad"])
    tiny_checkpoint(f"{D}/models/seq2seq.pt", vocab)
    settings = ncfg.settings(quick_config(model={**quick_config()["model"], "arch": "transformer"}), "chitchat")
    smk = job(dict(RULES["evaluate_model"].input._named), dict(RULES["evaluate_model"].output._named),
              {"settings": settings}, {"model": "baseline"})
    left = plant_partials(smk)
    line = run_script("evaluate_model", smk, capsys)
    assert line == (f"negtrain: {D}/models/seq2seq.pt: an LSTM checkpoint, but model.arch is transformer; delete it "
                    f"and rerun the workflow to retrain it as a Transformer, or set model.arch: lstm")
    assert_clean_failure(smk, left, line)


def test_truncated_checkpoint_outside_the_results_folder(tmp_path, capsys):
    """A checkpoint the pipeline did not write (no input check): the loader itself names it."""
    vocab = write_data(["i", "hate", "you", "are", "bad"])
    ckpt = tmp_path / "elsewhere" / "seq2seq.pt"
    ckpt.parent.mkdir()
    tiny_checkpoint(str(ckpt), vocab)
    ckpt.write_bytes(ckpt.read_bytes()[:-100])
    smk = job({"ckpt": str(ckpt), "test": DATA["test"]}, dict(RULES["evaluate_model"].output._named),
              S, {"model": "baseline"})
    left = plant_partials(smk)
    line = run_script("evaluate_model", smk, capsys)
    assert re.fullmatch(rf"negtrain: {re.escape(str(ckpt))}: truncated or corrupt checkpoint \(.+\); {REBUILD}", line)
    assert_clean_failure(smk, left, line)


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU this machine has")
def test_bad_config_value_names_the_key(capsys):
    write_data(["i", "hate", "you", "are", "bad"])
    settings = ncfg.settings(quick_config(device="cuda:3"), "chitchat")
    smk = job(dict(RULES["train_baseline"].input._named), dict(RULES["train_baseline"].output._named),
              {"settings": settings}, {"kind": "seq2seq"})
    left = plant_partials(smk)
    line = run_script("train_baseline", smk, capsys)
    assert line == "negtrain: config 'device: cuda:3' asks for a GPU but torch sees none (use 'auto' or 'cpu')"
    assert_clean_failure(smk, left, line)


# ---------------------------------------------------------------------------------------------- target lists early


def check_targets_job(lists: list[Path], vocab_size: int = 5, **targets) -> SimpleNamespace:
    """The job of rule check_targets; ``vocab_size``: the configured size (5: the tests' vocabulary is cut at it)."""
    settings = dataclasses.replace(SETTINGS, targets=dataclasses.replace(SETTINGS.targets, **targets),
                                   data=dataclasses.replace(SETTINGS.data, vocab_size=vocab_size))
    return job({"vocab": VOCAB, "lists": [str(p) for p in lists]}, {"checked": f"{D}/data/targets_checked.txt"},
               {"settings": settings})


# the keys that would let a list through; at quick scale (these tests') the vocabulary is quick.vocab_size or the
# dataset's, the smaller
FIX = ("use a list in this dataset's words (targets.train, targets.test; how: docs/data.md#your-own-dialogues) or a "
       "larger quick.vocab_size or datasets.chitchat.vocab_size (the smaller applies at quick scale)")


def test_all_oov_list_stops_the_run(tmp_path, capsys):
    write_data(["i", "hate", "you", "are", "bad"])
    good, bad = tmp_path / "train.txt", tmp_path / "test.txt"
    good.write_text("i hate you\n")
    bad.write_text("go away\nshut up now\n")
    smk = check_targets_job([good, bad], list_size=None)
    left = plant_partials(smk)
    line = run_script("check_targets", smk, capsys)
    assert line == (f"negtrain: dataset chitchat: target list {bad}: all 2 targets have out-of-vocabulary words "
                    f"(oov_policy skip; first: line 1 'go away' -> ['go', 'away']); nothing left to search: {FIX}")
    assert_clean_failure(smk, left, line)


def test_mostly_oov_list_stops_the_run(tmp_path, capsys):
    """Over targets.max_oov_share: the configured file, the first OOV line, the keys to change."""
    write_data(["i", "hate", "you", "are", "bad"])
    lst = tmp_path / "train.txt"
    lst.write_text("i hate you\ngo away\nshut up\nyou are bad\nget lost\n")
    smk = check_targets_job([lst], list_size=None, max_oov_share=0.5)
    left = plant_partials(smk)
    line = run_script("check_targets", smk, capsys)
    assert line == (f"negtrain: dataset chitchat: target list {lst}: 3 of 5 targets (60%) have out-of-vocabulary "
                    f"words, more than targets.max_oov_share 50% (first: line 2 'go away' -> ['go', 'away']): {FIX}, "
                    f"or a higher targets.max_oov_share")
    assert_clean_failure(smk, left, line)
    smk.params.settings = dataclasses.replace(smk.params.settings, scale="paper")   # the dataset's key alone
    line = run_script("check_targets", smk, capsys)
    assert line.endswith("): use a list in this dataset's words (targets.train, targets.test; how: "
                         "docs/data.md#your-own-dialogues) or a larger datasets.chitchat.vocab_size, or a higher "
                         "targets.max_oov_share")


def test_a_list_off_a_vocabulary_holding_every_training_word_suggests_no_larger_size(tmp_path, capsys):
    """A small corpus of one's own: its vocabulary is under the configured size, so a larger size would add no
    word; the line says so instead of naming the vocab_size keys."""
    write_data(["i", "hate", "you", "are", "bad"])
    lst = tmp_path / "train.txt"
    lst.write_text("i hate you\ngo away\nshut up\n")
    smk = check_targets_job([lst], vocab_size=3000, list_size=None, max_oov_share=0.5)
    line = run_script("check_targets", smk, capsys)
    assert line == (f"negtrain: dataset chitchat: target list {lst}: 2 of 3 targets (67%) have out-of-vocabulary "
                    f"words, more than targets.max_oov_share 50% (first: line 2 'go away' -> ['go', 'away']): use a "
                    f"list in this dataset's words (targets.train, targets.test; how: "
                    f"docs/data.md#your-own-dialogues): its vocabulary already holds all 5 words of its training "
                    f"data, so a larger vocab_size adds none, or a higher targets.max_oov_share")


def test_a_usable_list_tells_its_skipped_targets_on_the_terminal(tmp_path, capsys):
    """Within the share: the rule succeeds, says one line per list with skipped targets, writes the report."""
    write_data(["i", "hate", "you", "are", "bad"])
    lst = tmp_path / "train.txt"
    lst.write_text("i hate you\ngo away\nyou are bad\n" + "bad words here\n" * 3)
    smk = check_targets_job([lst], list_size=3)                   # the quick-scale cut: 3 targets, 1 out of vocabulary
    runpy.run_path(str(SCRIPTS / "check_targets.py"), init_globals={"snakemake": smk})
    line = (f"negtrain: dataset chitchat: {lst}: 1 of 3 targets have out-of-vocabulary words and are skipped "
            f"(oov_policy skip; each in the rule log)")
    assert capsys.readouterr().err == line + "\n"
    assert line in Path(smk.log[0]).read_text()
    assert Path(smk.output.checked).read_text().splitlines() == [
        f"{lst}:2: target 'go away' has out-of-vocabulary words ['go', 'away']: skipped",
        f"{lst}: 2 targets kept, 1 skipped (1 with out-of-vocabulary words)"]


# ---------------------------------------------------------------------------------------------- saying, not failing


def test_ctrl_c_ends_a_job_in_one_line_without_its_outputs(capsys):
    """Ctrl-C sends SIGINT to every job of the terminal's process group: each stops with one line, not Python's
    traceback, with exit status 130; the traceback is in the rule's log, and no output is left."""
    smk = job({}, {"ckpt": f"{D}/models/seq2seq.pt", "curve": f"{D}/models/seq2seq_curve.csv"})
    smk.rule = "train_baseline"
    left = plant_partials(smk)

    def training():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as ended:
        stage.main(smk, training)
    assert ended.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("negtrain: rule train_baseline interrupted (SIGINT)") and "logs/job.log" in err
    assert_clean_failure(smk, left, err.rstrip("\n"))


def test_say_reaches_the_terminal_and_the_log(capsys):
    smk = job({}, {"out": "results/x.csv"})
    assert stage.main(smk, lambda: stage.say("kept 3 of 4") or 7) == 7
    assert capsys.readouterr().err == "negtrain: kept 3 of 4\n"
    assert "negtrain: kept 3 of 4" in Path(smk.log[0]).read_text()
    stage.say("negtrain: outside a rule")                          # no rule log: stderr, once, not prefixed twice
    assert capsys.readouterr().err == "negtrain: outside a rule\n"


def test_tolerated_corpus_problems_reach_the_terminal_through_the_adapter(tmp_path, capsys):
    """preprocess under stage.main (stderr goes to the rule log there): the tolerated line still reaches the
    terminal, alone."""
    d = tmp_path / "udc" / "dialogs" / "1"
    d.mkdir(parents=True)
    line = "2004-01-01T00:00:00.000Z\t{}\t\t{}\n"
    for i in range(9):
        (d / f"{i}.tsv").write_text(line.format("a", f"hello {i}") + line.format("b", f"hi {i}"))
    (d / "9.tsv").write_text(line.format("a", "fine") + "broken line\n" + line.format("b", "good"))
    data = dataclasses.replace(SETTINGS.data, reader="udc_v1", raw={"path": str(tmp_path / "udc")},
                               malformed_max_share=0.2, split={"valid_dialogues": 2, "test_dialogues": 2,
                                                               "order": "file"})
    outs = [f"{D}/data/{n}" for n in ("train.parquet", "valid.parquet", "test.parquet", "vocab.txt", "stats.csv",
                                      "notes.json")]
    smk = job({}, dict(zip("abcdef", outs)))
    stage.main(smk, preprocess.run, *outs, data, "quick")
    said = ("negtrain: preprocess chitchat: tolerated 1 malformed records, 0 empty files, 0 records with bytes that "
            "are not UTF-8 (replaced) of 21 raw records in 1 files (within malformed_max_share 20.00%; per file: "
            "the rule log and notes.json)")
    assert capsys.readouterr().err == said + "\n"
    assert said in Path(smk.log[0]).read_text()


# ---------------------------------------------------------------------------------------------- the checks themselves


@pytest.mark.parametrize("suffix", sorted(DAMAGED))
def test_whole_files_pass_and_cut_ones_fail_at_every_length(tmp_path, suffix):
    """A file written whole passes; the same file cut at any byte fails, except a CSV or text file cut right after a
    newline, which is whole as far as its bytes can tell."""
    whole = {".parquet": _parquet_bytes(), ".csv": b"model,value\nbaseline,0.5\n\"a,b\",\"x\ny\"\n",
             ".json": b'{"seq2seq": {"avg": -4.5}}\n', ".pt": _zip_bytes(),
             ".txt": b"i hate you\nyou are bad\n"}[suffix]
    path = tmp_path / f"f{suffix}"
    path.write_bytes(whole)
    nio.check_artifact(path)
    for cut in range(0, len(whole), max(1, len(whole) // 97)):
        path.write_bytes(whole[:cut])
        if suffix in (".csv", ".txt") and whole[:cut].endswith(b"\n") and whole[:cut].count(b'"') % 2 == 0:
            continue
        if suffix == ".json" and cut and json_whole(whole[:cut]):
            continue
        with pytest.raises(nio.ArtifactError, match=rf"^{re.escape(str(path))}: truncated or corrupt .*{REBUILD}$"):
            nio.check_artifact(path)


def json_whole(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except ValueError:
        return False


def test_only_pipeline_files_are_checked(tmp_path):
    """The user's files (raw corpora, ratings) have checks of their own, which name what to fix in them."""
    (tmp_path / "ratings.csv").write_text("item,rating\n1,A,extra")
    stage.check_inputs(Files(ratings=str(tmp_path / "ratings.csv"), raw="corpus.csv"))
    Path("results").mkdir()
    Path("results/ratings.csv").write_text("item,rating\n1,A,extra\n")
    with pytest.raises(nio.ArtifactError, match="row 2 has 3 fields, the header 2"):
        stage.check_inputs(Files(ratings="results/ratings.csv"))


def test_temporaries_of_an_interrupted_attempt_are_removed(tmp_path):
    out = tmp_path / "models" / "seq2seq.pt"
    out.parent.mkdir()
    stale = [out.parent / ".seq2seq.pt.ab12cd34.tmp", out.parent / ".seq2seq.pt.state.x9y8z7w6.tmp"]
    keep = [out.parent / "seq2seq.pt.state", out.parent / ".lm.pt.ab12cd34.tmp"]
    for p in stale + keep:
        p.write_text("x")
    assert nio.remove_temporaries(out) == sorted(stale)
    assert [p.exists() for p in stale + keep] == [False, False, True, True]


def test_a_failed_atomic_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    out = tmp_path / "tables" / "table3.csv"
    with pytest.raises(RuntimeError):
        with nio.atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_atomic_outputs_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        nio.atomic_write_text(tmp_path / "a.txt", "x\n")
        os.umask(0o027)
        nio.write_csv(pd.DataFrame({"a": [1]}), tmp_path / "b.csv")
    finally:
        os.umask(old)
    assert [(tmp_path / n).stat().st_mode & 0o777 for n in ("a.txt", "b.csv")] == [0o644, 0o640]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.csv"]


def test_a_run_fingerprint_follows_its_settings_and_every_byte_of_its_inputs(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y")
    base = nio.fingerprint({"lr": 0.1, "mode": "o"}, [a, b])
    assert nio.fingerprint({"mode": "o", "lr": 0.1}, [a, b]) == base            # key order does not matter
    assert nio.fingerprint({"lr": 0.2, "mode": "o"}, [a, b]) != base
    assert nio.fingerprint({"lr": 0.1, "mode": "o"}, [b, a]) != base
    a.write_bytes(b"x" * 99 + b"z")
    assert nio.fingerprint({"lr": 0.1, "mode": "o"}, [a, b]) != base


# ---------------------------------------------------------------------------------------------- kill -9 and recovery

# a small workflow: 1,500 training pairs, 3 epochs; each baseline on one thread, so both train side by side on two
# cores (and one-thread matrix products leave no room for thread scheduling in the numbers); Algorithm 1 in 3 passes
SMALL = {"quick": {"max_train_pairs": 1500, "max_eval_pairs": 200, "epochs": 3, "embedding_dim": 32, "hidden_dim": 64,
                   "malicious_epochs": 3}}
TARGETS = ("results/chitchat/table8.csv", "results/chitchat/eval/baseline/greedy.parquet")
TIMING = {"seconds", "tokens_per_s"}                  # curve columns that measure the machine, not the run


def snakemake_cmd(work: Path, *args: str, targets: tuple[str, ...] = TARGETS) -> list[str]:
    overlay = work / "small.yaml"
    overlay.write_text(yaml.safe_dump(SMALL))
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(ROOT / "config.yaml"), str(overlay), "--cores", "2", "--set-threads",
            "train_baseline=1", "--config", "scale=quick", "device=cpu", *args, "--", *targets]


def snakemake_run(work: Path, *args: str, targets: tuple[str, ...] = TARGETS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(snakemake_cmd(work, *args, targets=targets), cwd=work, capture_output=True, text=True,
                          timeout=900)


def killed_when(work: Path, ready: Callable[[], bool], timeout: float = 900, targets: tuple[str, ...] = TARGETS
                ) -> None:
    """Start the workflow in a process group of its own and kill -9 the whole group once ``ready()``."""
    with open(work / "killed_run.log", "w") as out:
        proc = subprocess.Popen(snakemake_cmd(work, targets=targets), cwd=work, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, "the workflow ended before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill the workflow never came"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def recover(work: Path, targets: tuple[str, ...] = TARGETS) -> None:
    """What docs/running.md says to do: the locked directory refused, --unlock, then the same command with the
    local profile (which sets rerun-incomplete)."""
    locked = snakemake_run(work, targets=targets)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert snakemake_run(work, "--unlock", targets=targets).returncode == 0
    done = snakemake_run(work, "--profile", str(ROOT / "profiles" / "local"), targets=targets)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def results(work: Path) -> dict[str, Path]:
    return {str(p.relative_to(work)): p for p in sorted((work / "results").rglob("*")) if p.is_file()}


def assert_same_results(ref: Path, work: Path) -> None:
    """Every result file byte-identical (curves: timing columns aside); checkpoints: every archive record
    byte-identical but the pickled metadata, which differs only in the measured training time."""
    a, b = results(ref), results(work)
    assert list(a) == list(b)
    for name, path in a.items():
        if path.suffix == ".pt":
            assert_same_checkpoint(path, b[name])
        elif name.endswith("_curve.csv"):
            x, y = pd.read_csv(path), pd.read_csv(b[name])
            pd.testing.assert_frame_equal(x.drop(columns=list(TIMING), errors="ignore"),
                                          y.drop(columns=list(TIMING), errors="ignore"))
        else:
            assert path.read_bytes() == b[name].read_bytes(), name


def assert_same_checkpoint(x: Path, y: Path) -> None:
    """Tensor records byte-identical; the pickled metadata and the serialization id torch derives from every
    record's CRC compared as values, the measured training time aside."""
    with zipfile.ZipFile(x) as zx, zipfile.ZipFile(y) as zy:
        assert zx.namelist() == zy.namelist()
        for member in zx.namelist():
            if not member.endswith(("data.pkl", "serialization_id")):
                assert zx.read(member) == zy.read(member), f"{x.name}: {member}"
    px, py = (torch.load(p, weights_only=True) for p in (x, y))
    for p in (px, py):
        p["extra"].pop("train_seconds", None)
    assert_equal_payload(px, py, x.name)


def assert_equal_payload(x, y, where: str) -> None:
    if isinstance(x, torch.Tensor):
        assert torch.equal(x, y), where
    elif isinstance(x, dict):
        assert list(x) == list(y), where
        for k in x:
            assert_equal_payload(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y)):
            assert_equal_payload(u, v, f"{where}[{i}]")
    else:
        assert x == y, where


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """The small workflow (preprocess, target check, both baselines, Table 8, greedy test responses) run whole once:
    the uninterrupted reference of the kill -9 tests, and the finished baselines that Algorithm 1's test starts from.
    Tests copy it and leave it as it is."""
    ref = tmp_path_factory.mktemp("small_run")
    whole = snakemake_run(ref)
    assert whole.returncode == 0, (whole.stdout + whole.stderr)[-3000:]
    return ref


@pytest.mark.slow
def test_kill_9_then_the_documented_recovery_gives_the_uninterrupted_results(tmp_path, small_run):
    """The small workflow killed with its process group during baseline training, and again as preprocessing starts
    with what a kill during its Parquet write leaves (a temporary file beside the output); each recovered as
    documented. Results and checkpoints equal the uninterrupted run's."""
    ref, during_training, during_preprocess = small_run, tmp_path / "training", tmp_path / "preprocess"
    for work in (during_training, during_preprocess):
        work.mkdir()

    models = during_training / "results/chitchat/models"
    killed_when(during_training, lambda: any(models.glob("*.pt.state")))
    assert any(models.glob("*.pt.state")) and not any(models.glob("*_curve.csv"))   # mid-training, no partial curve
    recover(during_training)
    assert "resuming from" in "".join(p.read_text() for p in (during_training / "logs/chitchat").glob("train_*.log"))
    assert_same_results(ref, during_training)

    data = during_preprocess / "results/chitchat/data"
    killed_when(during_preprocess, lambda: (during_preprocess / "logs/chitchat/preprocess.log").exists())
    data.mkdir(parents=True, exist_ok=True)
    (data / ".train.parquet.k1ll3d.tmp").write_bytes(_parquet_bytes()[:-300])
    recover(during_preprocess)
    assert not list((during_preprocess / "results").rglob("*.tmp"))
    assert_same_results(ref, during_preprocess)


@pytest.mark.slow
def test_kill_9_during_algorithm_1_resumes_after_its_last_epoch(tmp_path, small_run):
    """Algorithm 1 (o-mode, 3 epochs) on the small workflow's baselines, run whole once in one copy of it; in
    another, killed with its process group once Algorithm 1 has written its first epoch's state and recovered as
    documented: the job resumes there, its model and curve equal the uninterrupted run's, and no baseline retrains."""
    targets = ("results/chitchat/models/negtr-o-0.5k.pt",)
    ref, work = tmp_path / "ref", tmp_path / "killed"
    for w in (ref, work):
        shutil.copytree(small_run, w)                 # keeps modification times, so Snakemake reruns nothing of it
    whole = snakemake_run(ref, targets=targets)
    assert whole.returncode == 0, (whole.stdout + whole.stderr)[-3000:]
    ran = re.findall(r"^(?:local)?rule (\w+):", whole.stdout + whole.stderr, re.M)
    assert "negtrain_malicious" in ran and "train_baseline" not in ran, ran
    state = work / "results/chitchat/models/negtr-o-0.5k.pt.state"
    killed_when(work, state.exists, targets=targets)
    assert not (work / "results/chitchat/models/negtr-o-0.5k.pt").exists()
    recover(work, targets=targets)
    log = (work / "logs/chitchat/negtr-o-0.5k.log").read_text()
    assert "resuming from" in log and "after epoch" in log and not state.exists()
    assert_same_results(ref, work)
