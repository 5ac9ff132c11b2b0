"""docs/reproduction/search_bounds.py on tiny trained-shape models: the bounds it counts are lower bounds (the script
asserts it for every candidate), every candidate below its row's loss passes them, and the counts add up."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import SPECIALS, Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.lstm import LSTMLM, Seq2Seq

ROOT = Path(__file__).resolve().parent.parent
WORDS = "i hate you are bad so very go away yes no".split()


def _script():
    spec = importlib.util.spec_from_file_location("search_bounds", ROOT / "docs" / "reproduction" / "search_bounds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("hit_mode", ["avg", "min"])
def test_bounds_pass_every_candidate_below_its_row(tmp_path, hit_mode):
    vocab = Vocab(tuple(SPECIALS) + tuple(WORDS))
    torch.manual_seed(0)
    cfg = ModelSettings(vocab_size=len(vocab), embedding_dim=8, hidden_dim=12)
    (tmp_path / "models").mkdir()
    checkpoint.save(tmp_path / "models" / "seq2seq.pt", Seq2Seq(cfg), kind="seq2seq", vocab=vocab)
    checkpoint.save(tmp_path / "models" / "lm.pt", LSTMLM(cfg), kind="lm", vocab=vocab)
    # thresholds near a random model's log-probs (about -log 16), so that the reweighting takes both branches
    (tmp_path / "thresholds.json").write_text(json.dumps({"seq2seq": -2.8, "lm": -2.8}))
    (tmp_path / "targets.txt").write_text("i hate you\nyou are bad\ngo away\nyes\n")
    counts = _script().measure(str(tmp_path), str(tmp_path / "targets.txt"), "chitchat", restarts=2,
                               hit_mode=hit_mode)
    o, io = counts["o"], counts["io"]
    assert o["hit_mode"] == io["hit_mode"] == hit_mode
    assert 0 < o["decoded"] <= o["positions"] and o["cands"] > 0 and o["below"] > 0
    assert o["below_in_full"] == o["below"]                   # a candidate that could be accepted is decoded whole
    assert 0 < io["below"] <= io["lm_suffix"] <= io["cands"]
