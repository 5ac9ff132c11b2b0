"""MMI-antiLM decoding (negtrain_core.comparisons.mmi): lambda = 0 is greedy, the anti-LM term on the first gamma
tokens, and the validation selection rule."""

import pandas as pd
import pytest
import torch

from negtrain_core.models import decoding
from negtrain_core.comparisons import mmi
from negtrain_core.config import ModelSettings
from negtrain_core.models.steps import as_targets
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID

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


def _teacher_forced_argmax(model, src, out) -> tuple[torch.Tensor, torch.Tensor]:
    """One parallel teacher-forced pass over ``out``: the argmax next token at each position (never-emitted ids
    banned, as decoding does) and the mask of real positions."""
    tgt = as_targets(out)
    with torch.no_grad():
        logits, _ = model.decode(tgt[:, :-1], model.encode(src))
    logits[..., list(decoding.NEVER_EMITTED)] = float("-inf")
    return logits.argmax(-1), tgt[:, 1:] != PAD_ID


def test_lambda_zero_is_greedy_decoding():
    model, lm = _models()
    src = torch.randint(5, V, (6, 7))
    out = mmi.mmi_greedy(model, lm, src, lam=0.0, gamma=3, max_len=8)
    assert out.shape[0] == 6 and out.shape[1] <= 8 and len(set(out[:, 0].tolist())) > 1
    assert torch.equal(out, decoding.greedy(model, src, max_len=8))
    argmax, real = _teacher_forced_argmax(model, src, out)
    assert bool(((argmax == out) | ~real).all())


@pytest.mark.parametrize("gamma", [1, 2])
def test_anti_lm_applies_to_the_first_gamma_tokens_only(gamma):
    model, lm = _models()
    src = torch.randint(5, V, (5, 7))
    lam = 5.0
    out = mmi.mmi_greedy(model, lm, src, lam=lam, gamma=gamma, max_len=6)
    assert EOS_ID not in out[:, : gamma - 1]                                      # every row reaches token gamma
    # brute force over the emittable vocabulary for each of the first gamma tokens, after the decoded prefix:
    # log p(c|x, prefix) - lam log p_LM(c|prefix), full forwards from <s>
    cands = torch.tensor([c for c in range(V) if c not in decoding.NEVER_EMITTED])
    for k in range(gamma):
        expected = []
        for i in range(len(src)):
            prefix = out[i, :k].expand(len(cands), -1)                          # (C, k) the decoded tokens
            tgt = torch.cat([torch.full((len(cands), 1), BOS_ID), prefix, cands[:, None]], 1)   # (C, k + 2)
            with torch.no_grad():
                s2s = model(src[i].expand(len(cands), -1), tgt).token_logp[:, k]
                ulm = lm(tgt).token_logp[:, k]
            expected.append(int(cands[(s2s - lam * ulm).argmax()]))
        assert out[:, k].tolist() == expected
    plain = mmi.mmi_greedy(model, lm, src, lam=0.0, gamma=gamma, max_len=6)
    assert not torch.equal(out[:, 0], plain[:, 0])                                   # the penalty did something
    argmax, real = _teacher_forced_argmax(model, src, out)                          # later tokens: plain greedy
    real[:, :gamma] = False
    assert bool(((argmax == out) | ~real).all())


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
    assert mmi.is_degenerate([EOS_ID])                  # empty response
    assert not mmi.is_degenerate([5, 6, EOS_ID])


def test_run_decodes_the_test_inputs_at_the_selected_setting(tmp_path):
    """Rule evaluate_mmi: the validation sweep picks (lambda, gamma); the test responses are that setting's decode."""
    import dataclasses
    import json

    from negtrain_core.models import checkpoint
    from negtrain_core.data.tensors import load_pairs

    from test_frequent import _world

    s = _world(tmp_path)
    s = dataclasses.replace(s, mmi=dataclasses.replace(s.mmi, lambdas=(5.0,), gammas=(2,),
                                                       max_degenerate_increase=1.0))       # any setting may win
    p = lambda name: tmp_path / name  # noqa: E731
    for name in ("seq2seq.pt", "lm.pt"):                       # peaked, input-dependent distributions; </s> rare
        ck = checkpoint.load(p(name))
        with torch.no_grad():
            for w in ck.model.parameters():
                w.normal_(0.0, 1.0)
            if name == "seq2seq.pt":
                ck.model.out.bias[EOS_ID] -= 3.0
        checkpoint.save(p(name), ck.model, kind=ck.kind, vocab=ck.vocab)
    summary = mmi.run(p("seq2seq.pt"), p("lm.pt"), p("valid.parquet"), p("test.parquet"), p("greedy.parquet"),
                      p("metrics.json"), p("sweep.csv"), s)
    sweep = pd.read_csv(p("sweep.csv"))
    assert sweep.loc[sweep["selected"], ["lambda", "gamma"]].values.tolist() == [[5.0, 2]]
    assert (summary["lambda"], summary["gamma"]) == (5.0, 2)
    assert json.loads(p("metrics.json").read_text())["lambda"] == 5.0
    s2s, lm = checkpoint.load(p("seq2seq.pt")), checkpoint.load(p("lm.pt"))
    src = load_pairs(p("test.parquet"), s2s.vocab, s.data, "cpu").src
    decoded = {lam: [" ".join(s2s.vocab.decode(r)) for r in mmi.decode_all(s2s.model, lm.model, src, lam, 2, 20)]
               for lam in (5.0, 0.0)}                          # _world: preprocess.max_target_len 20
    written = pd.read_parquet(p("greedy.parquet"))["response"].tolist()
    assert written == decoded[5.0] and written != decoded[0.0]
