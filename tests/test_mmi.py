"""MMI-antiLM decoding (negtrain_core.mmi): lambda = 0 is greedy, the anti-LM term on the first gamma tokens,
and the validation selection rule."""

import pandas as pd
import torch

from negtrain_core import mmi
from negtrain_core.config import ModelSettings
from negtrain_core.frequent import as_targets
from negtrain_core.models import LSTMLM, Seq2Seq
from negtrain_core.vocab import BOS_ID, EOS_ID, PAD_ID

V = 14


def _models() -> tuple[Seq2Seq, LSTMLM]:
    torch.manual_seed(0)
    cfg = ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16)
    model, lm = Seq2Seq(cfg), LSTMLM(cfg)
    with torch.no_grad():                           # peaked, input-dependent distributions; </s> rare
        for p in [*model.parameters(), *lm.parameters()]:
            p.normal_(0.0, 1.0)
        model.out.bias[EOS_ID] -= 3.0
    return model.eval(), lm.eval()


def _teacher_forced_argmax_agrees(model, src, out) -> bool:
    """Greedy output y satisfies y_t = argmax p(. | y_<t, x) under teacher forcing at every real position."""
    tgt = as_targets(out)
    with torch.no_grad():
        scored = model(src, tgt)
    return bool(((scored.greedy == tgt[:, 1:]) | ~scored.mask).all())


def test_lambda_zero_is_greedy_decoding():
    model, lm = _models()
    src = torch.randint(5, V, (6, 7))
    out = mmi.mmi_greedy(model, lm, src, lam=0.0, gamma=3, max_len=8)
    assert out.shape[0] == 6 and out.shape[1] <= 8
    assert _teacher_forced_argmax_agrees(model, src, out)
    try:
        from negtrain_core import decoding
    except ImportError:
        return
    ref = decoding.greedy(model, src, max_len=8)
    width = max(out.shape[1], ref.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]), value=PAD_ID)  # noqa: E731
    assert torch.equal(pad(out), pad(ref))


def test_anti_lm_applies_to_the_first_gamma_tokens_only():
    model, lm = _models()
    src = torch.randint(5, V, (5, 7))
    lam = 5.0
    out = mmi.mmi_greedy(model, lm, src, lam=lam, gamma=1, max_len=6)
    # brute force over the vocabulary for the first token: log p(c|x) - lam log p_LM(c), each by a full forward
    cands = torch.arange(V)
    first = []
    for i in range(len(src)):
        tgt = torch.stack([torch.full((V,), BOS_ID), cands], 1)                      # (V, 2)
        with torch.no_grad():
            s2s = model(src[i].expand(V, -1), tgt).token_logp[:, 0]
            ulm = lm(tgt).token_logp[:, 0]
        first.append(int((s2s - lam * ulm).argmax()))
    assert out[:, 0].tolist() == first
    plain = mmi.mmi_greedy(model, lm, src, lam=0.0, gamma=1, max_len=6)
    assert not torch.equal(out[:, 0], plain[:, 0])                                   # the penalty did something
    # after the first token the decoding is plain greedy again
    rest = as_targets(out)
    with torch.no_grad():
        scored = model(src, rest)
    later = scored.mask.clone()
    later[:, 0] = False
    assert bool(((scored.greedy == rest[:, 1:]) | ~later).all())


def test_selection_prefers_low_max_ratio_among_non_degenerate_settings():
    sweep = pd.DataFrame([
        {"lambda": 0.0, "gamma": 0, "max_ratio": 0.40, "ent2": 3.0, "degenerate": 0.02},
        {"lambda": 0.5, "gamma": 5, "max_ratio": 0.05, "ent2": 6.0, "degenerate": 0.30},   # degenerate
        {"lambda": 0.2, "gamma": 2, "max_ratio": 0.20, "ent2": 4.0, "degenerate": 0.05},
        {"lambda": 0.3, "gamma": 1, "max_ratio": 0.20, "ent2": 4.5, "degenerate": 0.06},   # tie: higher Ent-2
    ])
    best = mmi.select(sweep, max_degenerate_increase=0.05)
    assert (best["lambda"], best["gamma"]) == (0.3, 1)
    assert mmi.select(sweep.iloc[[0, 1]], 0.05)["lambda"] == 0.0                       # all degenerate -> greedy


def test_degenerate_responses():
    assert mmi.is_degenerate([5, 6, 7])                 # no </s>
    assert mmi.is_degenerate([5, 5, EOS_ID])            # repeated word
    assert not mmi.is_degenerate([5, 6, EOS_ID])
