"""The release's readings of Algorithms 1 and 2 as config options (docs/presets.md), the Ubuntu lambda_POS default and
the given augmented lists' check: each option's test fails when the option is ignored."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from negtrain_core import config as ncfg
from negtrain_core.config import FrequentSettings, ModelSettings, NegTrainSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, SPECIALS, Vocab
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.models.steps import mle_loss, positive_batches
from negtrain_core.negtrain import frequent as F
from negtrain_core.negtrain import malicious as mal

ROOT = Path(__file__).resolve().parent.parent
V = 12


def _model(seed: int = 0, hidden: int = 8) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=hidden, dropout=0.0))


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------------------------ Algorithm 1


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    trig = torch.tensor([[PAD_ID, 5, 6, 7, EOU_ID], [8, 9, 10, 11, EOU_ID]])
    tgt = torch.tensor([[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 7, 8, 9, EOS_ID]])
    return trig, tgt


def _settings(**kw) -> NegTrainSettings:
    base = dict(hit_type="avg", batch_targets=2, epochs=1, max_rounds=5, lr_neg=0.5, lr_pos=0.1, momentum=0.0,
                pos_batch=2)
    return NegTrainSettings(**{**base, **kw})


def _train(model: Seq2Seq, s: NegTrainSettings, is_hit) -> list[dict[str, float]]:
    """Algorithm 1 on the two targets of ``_pair`` under fixed triggers, positive pairs = the same pairs."""
    trig, tgt = _pair()
    pos = positive_batches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
    find = lambda model, t: (trig[: len(t)], torch.ones(len(t), dtype=torch.bool))   # noqa: E731
    return mal.negative_train(model, tgt, pos, find, is_hit, torch.tensor([PAD_ID]), s)


def _hits_for(tests: int):
    """A hit test that finds every target hit in its first ``tests`` calls and none after."""
    calls = []

    def is_hit(out, lm_ok):
        calls.append(1)
        return torch.full((len(lm_ok),), len(calls) <= tests, dtype=torch.bool)
    return is_hit


def _rounds(rows) -> list[tuple[int, int, bool]]:
    """(round, hits, stepped) per curve row."""
    return [(r["round"], r["hits"], not math.isnan(r["neg_loss"])) for r in rows]


def test_step_then_test_steps_once_on_a_batch_without_hits():
    """The release: every batch gets a negative and a positive step, even when its first test finds no hit; the
    paper's order takes none."""
    for order, stepped in (("test_then_step", False), ("step_then_test", True)):
        model = _model()
        before = _params(model)
        rows = _train(model, _settings(round_order=order), _hits_for(0))
        assert _rounds(rows) == [(0, 0, stepped)]
        assert not math.isnan(rows[0]["pos_nll"]) == stepped
        changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        assert changed == stepped, order


def test_step_then_test_stops_after_the_first_round_without_hits():
    """Hits at the first two tests: the paper's order steps twice and ends on a third test; the release steps after
    each of the three tests and tests no more."""
    assert _rounds(_train(_model(), _settings(), _hits_for(2))) == [(0, 2, True), (1, 2, True), (2, 0, False)]
    rows = _train(_model(), _settings(round_order="step_then_test"), _hits_for(2))
    assert _rounds(rows) == [(0, 2, True), (1, 2, True), (2, 0, True)]


def test_max_rounds_counts_the_rounds_with_steps_in_either_order():
    """Always hit: max_rounds 3 gives 3 steps either way; the paper's order adds a final test."""
    paper = _train(_model(), _settings(max_rounds=3), _hits_for(10 ** 6))
    release = _train(_model(), _settings(max_rounds=3, round_order="step_then_test"), _hits_for(10 ** 6))
    assert _rounds(paper) == [(r, 2, r < 3) for r in range(4)]
    assert _rounds(release) == [(r, 2, True) for r in range(3)]


def test_weight_decay_shrinks_the_weights_in_both_steps():
    """No gradient (weight 0 on every target, lambda_POS 0): each step only decays, p <- p (1 - lr wd), once with
    the negative rate and once with the positive one."""
    wd, s = 0.2, _settings(round_order="step_then_test", nonhit_weight=0.0, lambda_pos=0.0)
    model = _model()
    before = _params(model)
    _train(model, s, _hits_for(0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))     # weight_decay 0: no change
    _train(model, dataclasses.replace(s, weight_decay=wd), _hits_for(0))
    shrink = (1 - s.lr_neg * wd) * (1 - s.lr_pos * wd)
    for a, b in zip(before, model.parameters()):
        assert torch.allclose(b, a * shrink, atol=1e-7)


def test_clip_norm_bounds_each_step():
    """One negative step (lambda_POS 0: the positive step moves nothing, momentum 0): the weights move by
    lr_neg * min(|g|, clip_norm)."""
    s = _settings(round_order="step_then_test", nonhit_weight=1.0, lambda_pos=0.0, lr_neg=1.0)
    moved = {}
    for clip in (None, 1e-3):
        model = _model()
        before = _params(model)
        _train(model, dataclasses.replace(s, clip_norm=clip), _hits_for(0))
        moved[clip] = torch.linalg.vector_norm(torch.cat([(b - a).flatten() for a, b in
                                                          zip(before, model.parameters())])).item()
    assert moved[None] > 1e-2
    assert moved[1e-3] == pytest.approx(1e-3, rel=1e-3)
