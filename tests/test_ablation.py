"""docs/reproduction/ablation.py on tiny checkpoints: one row per release reading, the default row equal to the hits
rule's own rates, searches shared between readings with equal search settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from negtrain_core import config as ncfg
from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import SPECIALS, Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.search import hits as H

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "docs" / "reproduction" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def inputs(tmp_path) -> dict[str, str]:
    """Tiny seq2seq and LM checkpoints (dropout 0.3), vocabulary, thresholds, a 3-target list, a small-search
    overlay."""
    vocab = Vocab(SPECIALS + tuple("i hate you are bad so very go away".split()))
    vocab.save(tmp_path / "vocab.txt")
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=6, hidden_dim=8, dropout=0.3)
    torch.manual_seed(0)
    checkpoint.save(tmp_path / "s2s.pt", Seq2Seq(ms), kind="seq2seq", vocab=vocab)
    checkpoint.save(tmp_path / "lm.pt", LSTMLM(ms), kind="lm", vocab=vocab)
    (tmp_path / "th.json").write_text(json.dumps({"seq2seq": -2.6, "lm": -2.62}))
    (tmp_path / "targets.txt").write_text("i hate you\nyou are bad\ngo away\nyou are stupid\n")
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump({
        "scale": "quick", "device": "cpu", "search": {"trigger_len": 4},
        "quick": {"search": {"candidates": 3, "sweeps": 2, "restarts": 2}}}))
    return {k: str(tmp_path / f) for k, f in (("seq2seq", "s2s.pt"), ("lm", "lm.pt"), ("vocab", "vocab.txt"),
                                              ("thresholds", "th.json"), ("targets", "targets.txt"),
                                              ("overlay", "overlay.yaml"))}


def test_ablation_prints_one_row_per_reading(inputs, tmp_path, monkeypatch, capsys):
    script = _script()
    searches = []
    search_mode = H.search_mode
    monkeypatch.setattr(H, "search_mode", lambda *a: searches.append(a[4]) or search_mode(*a))
    argv = [arg for k, v in inputs.items() for arg in (f"--{k}", v)]
    table = script.main(["--dataset", "chitchat", *argv, "--out", str(tmp_path / "ablation.csv")])
    release = yaml.safe_load((ROOT / "configs" / "release.yaml").read_text())
    keys = [f"{b}.{k}" for b in script.BLOCKS for k in release[b]]
    assert table["reading"].str.split(":").str[0].tolist() == ["default", *keys, "all of the above"]
    assert table[list(script.RATES)].apply(lambda c: c.between(0, 1)).all().all()
    assert (table["targets"] == 3).all() and (table["skipped"] == 1).all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ablation.csv"), table, check_dtype=False)
    printed = capsys.readouterr().out
    assert all(r in printed for r in table["reading"])
    # each distinct search ran once, in o- and io-mode: the default's, each search reading's and all of them
    # together; the hit-scoring readings re-tested the default row's triggers
    assert len(searches) == len(set(searches)) == 2 * (1 + len(release["search"]) + 1)
    assert {x.stop_rule for x in searches} == {"per_row", "batch_mean"}
    # the default row is what the hits rule writes
    config = ncfg.load(ROOT / "config.yaml", (inputs["overlay"],))
    s = ncfg.settings(config, "chitchat")
    vocab = Vocab.load(inputs["vocab"])
    s2s, lm = (checkpoint.load(inputs[k], vocab).model for k in ("seq2seq", "lm"))
    _, rates = H.run_hits(s2s, lm, vocab, inputs["targets"], H.load_thresholds(inputs["thresholds"]), s,
                          "baseline", s.seed)
    rule = rates.set_index("hit_type")["rate"]
    assert [table.loc[0, h] for h in script.RATES] == [rule[h] for h in script.RATES]


def test_readings_take_each_search_and_hits_key_alone_then_all():
    script = _script()
    rows = script.readings({"model": {"init": "torch04"}, "search": {"stop_rule": "batch_mean"},
                            "hits": {"strict": True, "baseline_restarts": 1}})
    assert rows == [("default", {}), ("search.stop_rule: batch_mean", {"search": {"stop_rule": "batch_mean"}}),
                    ("hits.strict: true", {"hits": {"strict": True}}),
                    ("hits.baseline_restarts: 1", {"hits": {"baseline_restarts": 1}}),
                    ("all of the above", {"search": {"stop_rule": "batch_mean"},
                                          "hits": {"strict": True, "baseline_restarts": 1}})]
