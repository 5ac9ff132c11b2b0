"""The Transformer (``model.arch: transformer``): the interface's contract on tiny models on the CPU (Protocols,
shapes and masks, the key-value cache against teacher forcing, decoding, the one-hot gradient, prefix reuse, the
scoring copy), gibbs-enum finding a planted trigger, a negative step, the Adam path of baseline training,
checkpoints that know their architecture, the config keys, and the quick pipeline end to end (slow)."""

from __future__ import annotations

import math
import os
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from negtrain_core import config as ncfg
from negtrain_core.config import ModelSettings, TrainSettings, TransformerSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, SPECIALS, Vocab
from negtrain_core.models import checkpoint, decoding, steps, training
from negtrain_core.models.interface import LanguageModel, Seq2SeqModel, SequenceModel
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.models.transformer import Attention, TransformerLM, TransformerSeq2Seq
from negtrain_core.search import gibbs_enum as S

from snakemake_cli import quick_pipeline
from toy_data import fit_planted, padded_batch

V = 11


def cfg(dropout: float = 0.0, **kw) -> ModelSettings:
    t = TransformerSettings(**{"layers": 2, "d_model": 8, "heads": 2, "ff": 16, "max_positions": 16, **kw})
    return ModelSettings(vocab_size=V, dropout=dropout, arch="transformer", transformer=t)


def models(dtype: torch.dtype = torch.float32, **kw) -> tuple[TransformerSeq2Seq, TransformerLM]:
    torch.manual_seed(0)
    return TransformerSeq2Seq(cfg(**kw)).to(dtype).eval(), TransformerLM(cfg(**kw)).to(dtype).eval()


def batch(b: int = 3, s: int = 5, t: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    return padded_batch(V, b, s, t)


def stepwise(model, tokens: torch.Tensor, state) -> torch.Tensor:
    """Logits (B, T, V) of decoding ``tokens`` (B, T) one ``decode_block`` step at a time from ``state``."""
    out = []
    for t in range(tokens.size(1)):
        logits, state = model.decode_block(tokens[:, t:t + 1], state)
        out.append(logits)
    return torch.cat(out, dim=1)


# -------------------------------------------------------------------------------------------- the contract


def test_both_models_satisfy_the_protocols_and_report_their_sizes():
    s2s, lm = models()
    assert isinstance(s2s, Seq2SeqModel) and isinstance(s2s, SequenceModel)
    assert isinstance(lm, LanguageModel) and not isinstance(lm, Seq2SeqModel)
    assert s2s.vocab_size == lm.vocab_size == V and s2s.embedding_dim == lm.embedding_dim == 8


def test_shapes_and_masks():
    s2s, lm = models()
    src, tgt = batch()
    for out in (s2s(src, tgt), s2s.score(src, tgt), lm(tgt), lm.score(src, tgt)):
        assert out.token_logp.shape == out.greedy.shape == out.mask.shape == (3, 5)
        assert out.mask.tolist()[0] == [True, True, True, False, False]
        assert (out.token_logp[0, 3:] == 0).all() and (out.token_logp[out.mask] < 0).all()
    enc = s2s.encode(src)
    assert enc.out.shape == (3, 5, 8) and enc.mask.tolist()[0] == [False, False, True, True, True]
    logits, _ = s2s.decode_block(tgt, s2s.initial_state(src))
    assert logits.shape == (3, 6, V)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_the_key_value_cache_gives_the_teacher_forced_scores(positions: str):
    """decode_block one token at a time (T = 1, the cache growing) equals one teacher-forced block, to 1e-5."""
    s2s, lm = models(positions=positions)
    src, tgt = batch()
    with torch.no_grad():
        full = s2s.teacher_logits(src, tgt)                                       # (B, T-1, V)
        torch.testing.assert_close(stepwise(s2s, tgt[:, :-1], s2s.initial_state(src)), full, rtol=1e-5, atol=1e-5)
        lm_full = lm.teacher_logits(src, tgt)
        torch.testing.assert_close(stepwise(lm, tgt[:, :-1], lm.initial_state(tgt)), lm_full, rtol=1e-5, atol=1e-5)
        first, state = lm.decode_block(tgt[:, :2], lm.initial_state(tgt))        # a block continued by a block
        rest, _ = lm.decode_block(tgt[:, 2:-1], state)
        torch.testing.assert_close(torch.cat([first, rest], 1), lm_full, rtol=1e-5, atol=1e-5)


def test_rows_of_a_state_can_be_picked_and_joined():
    s2s, lm = models()
    src, tgt = batch()
    with torch.no_grad():
        full = s2s.teacher_logits(src, tgt)
        rows = torch.tensor([2, 0, 0])                                            # reordered, one row repeated
        first, state = s2s.decode_block(tgt[:, :2], s2s.initial_state(src))
        rest, _ = s2s.decode_block(tgt[rows, 2:-1], s2s.select_rows(state, rows))
        torch.testing.assert_close(rest, full[rows, 2:], rtol=1e-5, atol=1e-5)
        joined = s2s.cat_rows([s2s.initial_state(src[:1]), s2s.initial_state(src[1:])])
        torch.testing.assert_close(s2s.decode_block(tgt[:, :-1], joined)[0], full, rtol=1e-5, atol=1e-5)
        lm_full = lm.teacher_logits(src, tgt)
        _, state = lm.decode_block(tgt[:, :3], lm.initial_state(tgt))
        whole = lm.cat_rows([lm.select_rows(state, torch.tensor([1, 1])), lm.select_rows(state, torch.tensor([0]))])
        torch.testing.assert_close(lm.decode_block(tgt[[1, 1, 0], 3:-1], whole)[0], lm_full[[1, 1, 0], 3:],
                                   rtol=1e-5, atol=1e-5)


def test_left_padding_moves_nothing_and_an_empty_source_stays_finite():
    """Source positions count from the first real token: two more pads on the left give the same scores."""
    s2s, _ = models()
    src, tgt = batch()
    wider = torch.cat([torch.full((3, 2), PAD_ID), src], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(s2s(wider, tgt).token_logp, s2s(src, tgt).token_logp, rtol=1e-5, atol=1e-6)
        empty = s2s(torch.full((1, 5), PAD_ID), tgt[:1]).token_logp
    assert torch.isfinite(empty).all()


def test_attention_is_the_multihead_attention_modules():
    """Our attention (kept keys and values, scaled_dot_product_attention) computes nn.MultiheadAttention's output."""
    torch.manual_seed(0)
    attn = Attention(8, 2, dropout=0.0).double().eval()
    x = torch.randn(3, 5, 8, dtype=torch.double)
    pad = torch.tensor([[True, True, False, False, False]] + [[False] * 5] * 2)          # True = padding
    want, _ = attn.mha(x, x, x, key_padding_mask=pad, need_weights=False)
    q, k, v = attn.qkv(x)
    torch.testing.assert_close(attn.attend(q, (k, v), ~pad[:, None, None, :]), want)
    torch.testing.assert_close(attn.attend(attn.query(x), attn.keys_values(x), ~pad[:, None, None, :]), want)


@pytest.mark.parametrize("which", ["seq2seq", "lm"])
def test_one_hot_input_equals_ids_and_its_gradient_is_the_finite_difference(which: str):
    s2s, lm = models(torch.float64)
    src, tgt = batch()
    x = src if which == "seq2seq" else tgt
    f = (lambda inp: s2s(inp, tgt).token_logp.sum()) if which == "seq2seq" else (lambda inp: lm(inp).token_logp.sum())
    one_hot = F.one_hot(x, V).double().requires_grad_()
    torch.testing.assert_close(f(one_hot), f(x))
    (grad,) = torch.autograd.grad(f(one_hot), one_hot)
    assert grad.shape == (*x.shape, V) and grad.abs().sum() > 0
    direction = torch.randn(*x.shape, V, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    eps = 1e-6                                               # central difference along a random direction
    numeric = (f(one_hot.detach() + eps * direction) - f(one_hot.detach() - eps * direction)) / (2 * eps)
    torch.testing.assert_close(numeric, (grad * direction).sum(), rtol=1e-5, atol=1e-7)


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(cfg(dropout=0.5))
    src, tgt = batch()
    assert not torch.equal(model(src, tgt).token_logp, model(src, tgt).token_logp)
    model.eval()
    assert torch.equal(model(src, tgt).token_logp, model(src, tgt).token_logp)
    explicit = TransformerSeq2Seq(replace(cfg(dropout=0.5), transformer=replace(cfg().transformer, dropout=0.0)))
    assert torch.equal(explicit(src, tgt).token_logp, explicit(src, tgt).token_logp)     # its own dropout wins


def test_greedy_beam_and_sampling_decode_with_either_model():
    s2s, lm = models()
    src, _ = batch()
    for model in (s2s, lm):
        out = decoding.greedy(model, src, max_len=7)
        assert out.shape[0] == 3 and out.shape[1] <= 7 and not (out == BOS_ID).any()
        res = decoding.beam(model, src, k=3, n_best=2, max_len=7)
        assert res.tokens.shape[:2] == (3, 2) and torch.isfinite(res.scores[:, 0]).all()
        assert (res.scores[:, 0] >= res.scores[:, 1]).all()
        assert decoding.sample(model, src, 7, generator=torch.Generator().manual_seed(0)).shape[0] == 3
    # greedy (the cache) is the argmax of the teacher-forced logits of its own output, up to its first </s>
    out = decoding.pad_samples(decoding.greedy(s2s, src, max_len=7, early_stop=False), 7)
    with torch.no_grad():
        logits = s2s.teacher_logits(src, torch.cat([torch.full((3, 1), BOS_ID), out], dim=1))
    logits[..., [BOS_ID, PAD_ID]] = float("-inf")                              # never emitted by decoding
    upto_eos = ((out == EOS_ID).long().cumsum(1) - (out == EOS_ID).long()) == 0
    assert torch.equal(logits.argmax(-1)[upto_eos], out[upto_eos])


@pytest.mark.parametrize("pos", [0, 2, 4])
def test_encoder_continued_from_a_prefix_equals_encode(pos: int):
    s2s, _ = models(torch.float64)
    src, tgt = batch()
    base = torch.tensor([0, 2, 2, 1])
    rows = src[base]
    rows[:, pos] = torch.tensor([5, 6, 7, 8])                          # the candidates differ at pos only
    enc = s2s.encode_from(s2s.select_prefix(s2s.encode_prefix(src[:, :pos]), base), rows)
    want = s2s.teacher_logits(rows, tgt[base])
    got, _ = s2s.decode_block(tgt[base, :-1], s2s.state_from(enc))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_prefix_scoring_of_gibbs_enum_equals_whole_rows():
    s2s, lm = models(torch.float64)
    cfg_ = S.SearchSettings(trigger_len=3, src_len=5, candidates=3, lambda_in=1.0, hit_mode="min", max_chunk=1000)
    src, tgt = batch()
    src = S.layout(src[:, 1:4].clamp(min=5), 5)
    th = S.Thresholds(out=-2.4, inp=-2.4)
    cands = torch.tensor([[5, 6, 1], [9, 10, 7], [8, 8, 5]])
    for pos in (1, 3):
        rows = src.repeat_interleave(3, 0)
        rows[:, pos] = cands.flatten()
        whole = S.rows_loss(S.Scorer(s2s, lm), rows, tgt.repeat_interleave(3, 0), th, cfg_).view(3, 3)
        got = S.score(S.Scorer(s2s, lm), src, pos, cands, tgt, th, cfg_, S.ChunkSize(4))
        torch.testing.assert_close(got, whole, rtol=1e-10, atol=1e-10)


def test_scoring_copy_pads_the_output_layer_without_changing_log_probs():
    s2s, lm = models(torch.float64)
    src, tgt = batch()
    for model, score in ((s2s, lambda m: m(src, tgt).token_logp), (lm, lambda m: m(tgt).token_logp)):
        copy = model.scoring_copy(torch.float64, multiple=8)
        assert copy.out.out_features == 16 and model.out.out_features == V and not copy.training
        with torch.no_grad():
            torch.testing.assert_close(score(copy), score(model))
        half = model.scoring_copy(torch.bfloat16)
        assert half.out.weight.dtype == torch.bfloat16 and half.out.out_features == 64
        with torch.no_grad():
            assert torch.isfinite(score(half)[score(half) != 0]).all()


def test_tied_embeddings_share_one_weight_or_none():
    tied, untied = TransformerSeq2Seq(cfg()), TransformerSeq2Seq(cfg(tie_embeddings=False))
    assert tied.out.weight is tied.tgt_embed.tokens.weight
    assert untied.out.weight is not untied.tgt_embed.tokens.weight
    count = lambda m: sum(p.numel() for p in m.parameters())            # noqa: E731
    assert count(untied) - count(tied) == V * 8
    lm = TransformerLM(cfg())
    assert lm.out.weight is lm.embed.tokens.weight


def test_a_shared_source_embedding_is_the_decoders_table_through_training_and_checkpoints(tmp_path):
    """model.transformer.share_source_embedding: one (V, D) table for encoder and decoder (and, tied, the output
    layer); a gradient step moves it once, for both sides; a checkpoint keeps the sharing."""
    own, shared = TransformerSeq2Seq(cfg()), TransformerSeq2Seq(cfg(share_source_embedding=True))
    assert own.src_embed.tokens.weight is not own.tgt_embed.tokens.weight
    assert shared.src_embed.tokens.weight is shared.tgt_embed.tokens.weight is shared.out.weight
    count = lambda m: sum(p.numel() for p in m.parameters())            # noqa: E731
    assert count(own) - count(shared) == V * 8
    src, tgt = batch()
    own.load_state_dict(shared.state_dict())                  # the same weights in two tables
    for model in (own, shared):
        (-model(src, tgt).token_logp.sum()).backward()
    both = own.src_embed.tokens.weight.grad + own.tgt_embed.tokens.weight.grad
    assert own.src_embed.tokens.weight.grad.abs().sum() > 0     # the encoder's share is not zero
    torch.testing.assert_close(shared.tgt_embed.tokens.weight.grad, both)   # the one table takes both shares
    opt = torch.optim.SGD(shared.parameters(), lr=0.5)
    opt.step()
    assert torch.equal(shared.src_embed.tokens.weight, shared.tgt_embed.tokens.weight)
    vocab = Vocab(SPECIALS + tuple(f"t{i}" for i in range(V - 5)))
    checkpoint.save(tmp_path / "s.pt", shared, kind="seq2seq", vocab=vocab)
    back = checkpoint.load(tmp_path / "s.pt", vocab, arch="transformer").model
    assert back.cfg.transformer.share_source_embedding
    assert back.src_embed.tokens.weight is back.tgt_embed.tokens.weight
    assert torch.equal(back.src_embed.tokens.weight, shared.src_embed.tokens.weight)


def test_attention_dropout_drops_the_attention_weights_alone():
    """model.transformer.attention_dropout: every attention's weights drop at its rate, the embeddings and residual
    branches at ``dropout``; None follows ``dropout``. With dropout 0 and attention dropout 0.5 a train-mode forward
    is random, with both 0 it is not."""
    def attention_rates(m):
        return {a.mha.dropout for a in m.modules() if isinstance(a, Attention)}

    def other_rates(m):
        return {d.p for d in m.modules() if isinstance(d, torch.nn.Dropout)}

    only = TransformerSeq2Seq(cfg(dropout=0.0, attention_dropout=0.5)).train()
    assert attention_rates(only) == {0.5} and other_rates(only) == {0.0}
    follows = TransformerSeq2Seq(cfg(dropout=0.2))
    assert attention_rates(follows) == {0.2} == other_rates(follows)
    assert attention_rates(TransformerLM(cfg(dropout=0.2, attention_dropout=0.0))) == {0.0}
    src, tgt = batch()
    torch.manual_seed(1)
    a = only(src, tgt).token_logp
    torch.manual_seed(2)
    assert not torch.equal(a, only(src, tgt).token_logp)
    none = TransformerSeq2Seq(cfg(dropout=0.0, attention_dropout=0.0)).train()
    torch.manual_seed(1)
    b = none(src, tgt).token_logp
    torch.manual_seed(2)
    assert torch.equal(b, none(src, tgt).token_logp)


def test_positions_past_the_learned_table_are_refused():
    s2s, _ = models(max_positions=4)
    src, tgt = batch()
    with pytest.raises(ValueError, match="max_positions"):
        s2s(src, tgt)


# ------------------------------------------------------------------------------- search and fine-tuning


def _planted_model() -> tuple[TransformerSeq2Seq, torch.Tensor, torch.Tensor]:
    """A Transformer trained (80 Adam steps) so that trigger (7, 9) alone says '8 9 5', every other one '5 6'."""
    torch.manual_seed(0)
    s2s = TransformerSeq2Seq(replace(cfg(), vocab_size=10, transformer=TransformerSettings(
        layers=1, d_model=16, heads=2, ff=32, max_positions=8)))
    return fit_planted(s2s, lr=0.01, steps=80)


def test_search_finds_the_planted_trigger():
    s2s, every_src, targets = _planted_model()
    search = S.SearchSettings(trigger_len=2, src_len=3, sweeps=5, candidates=2, restarts=2, lambda_in=0.0,
                              grad_train_mode=False)
    res = S.search(s2s, None, targets, S.Thresholds(out=-1.0, inp=-5.0), search, torch.Generator().manual_seed(0))
    with torch.no_grad():                                     # brute force over all 25 triggers, per target
        nll = torch.stack([-s2s(every_src, t.expand(len(every_src), -1)).token_logp.sum(1) / (t[1:] != PAD_ID).sum()
                           for t in targets])                 # (2, 25)
    assert nll[1].argmin() == every_src[:, :2].tolist().index([7, 9])
    assert res.triggers[1].tolist() == [7, 9, EOU_ID]        # the planted one, and it is the optimum
    assert res.losses.tolist() == pytest.approx(nll.min(1).values.tolist(), abs=1e-5)
    assert (res.trajectory[1:] <= res.trajectory[:-1] + 1e-6).all()


def test_a_negative_step_lowers_the_target_log_likelihood():
    torch.manual_seed(0)
    model = TransformerSeq2Seq(cfg(dropout=0.1))
    src, tgt = batch()
    weights = (tgt[:, 1:] != PAD_ID).float()
    weights[1:] = 0                                              # a negative step on the first pair only
    step = steps.WeightedStep(model, clip_norm=5.0, momentum=0.9, weight_decay=0.0, lr=0.1, batch_size=3,
                              use_graph=False)
    model.eval()
    before = model(src, tgt).token_logp.sum(1)
    model.train()
    step(src, tgt, weights, weights.sum())
    model.eval()
    assert model(src, tgt).token_logp.sum(1)[0] < before[0] - 1e-3


def test_label_smoothed_loss_is_cross_entropys():
    s2s, _ = models(torch.float64)
    src, tgt = batch()
    nll, loss = s2s.smoothed_nll(src, tgt, 0.1)
    logits = s2s.teacher_logits(src, tgt)
    want = F.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1), ignore_index=PAD_ID, label_smoothing=0.1)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(nll, -s2s(src, tgt).token_logp.sum())


# ------------------------------------------------------------------------------ the Adam path of training


@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_update_is_torchs(decoupled: bool):
    """The toolkit's Adam(W) update = torch.optim.Adam(W) (float64; a net without parameters whose gradient is
    rounding noise, which Adam's normalisation would blow up to +-lr)."""
    torch.manual_seed(0)
    net = lambda: torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()  # noqa
    ours, ref = net(), net()
    ref.load_state_dict(ours.state_dict())
    rule = steps.AdamRule(betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01, decoupled=decoupled)
    adam = steps.Sgd(ours.parameters(), lr=2 ** -7, momentum=0.0, clip_norm=None, adam=rule)   # lr: exact in float32
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)(ref.parameters(), lr=2 ** -7, betas=(0.9, 0.98),
                                                                 eps=1e-9, weight_decay=0.01)
    x = torch.randn(11, 5, dtype=torch.double)
    for _ in range(4):
        adam.update(ours(x).pow(2).sum())
        opt.zero_grad()
        ref(x).pow(2).sum().backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert float(adam.bufs[-1]) == 4.0                                  # the step count, saved with the moments
    adam.reset()
    assert all(int(b.count_nonzero()) == 0 for b in adam.bufs)
    with pytest.raises(ValueError, match="foreach"):
        steps.Sgd(ours.parameters(), lr=0.1, momentum=0.0, arithmetic="torch", adam=rule)


def test_schedules_warm_up_then_decay():
    t = torch.arange(1, 101, dtype=torch.float64)
    inv = training.scheduled_lr(t, 1e-3, 10, "inverse_sqrt", 100)
    assert inv[9] == pytest.approx(1e-3) and inv[4] == pytest.approx(5e-4) and inv[39] == pytest.approx(5e-4)
    cos = training.scheduled_lr(t, 1e-3, 10, "cosine", 100)
    assert cos[9] == pytest.approx(1e-3) and cos[54] == pytest.approx(5e-4) and cos[99] == pytest.approx(0.0)
    assert ncfg.train_recipe("lstm", "auto", "auto") == ("sgd", "epoch")
    assert ncfg.train_recipe("transformer", "auto", "auto") == ("adamw", "inverse_sqrt")
    with pytest.raises(ncfg.ConfigError, match="train.schedule"):
        ncfg.train_recipe("transformer", "sgd", "auto")


def test_train_step_is_adamw_with_a_warm_up():
    """TrainStep of a Transformer: AdamW, lr = peak x step / warmup during warm-up; the same weights as torch's."""
    torch.manual_seed(0)
    ours, ref = TransformerSeq2Seq(cfg()).double(), TransformerSeq2Seq(cfg()).double()
    ref.load_state_dict(ours.state_dict())
    s = TrainSettings(warmup_steps=4, adam_lr=2 ** -6, clip_norm=1e9)                   # lrs exact in float32
    step = training.TrainStep(ours, s, 3, use_graph=False)
    opt = torch.optim.AdamW(ref.parameters(), lr=0.0, betas=s.adam_betas, eps=s.adam_eps, weight_decay=0.01)
    src, tgt = batch()
    for i in range(1, 4):
        step(src, tgt)
        assert float(step.lr) == 2 ** -6 * i / 4
        for group in opt.param_groups:
            group["lr"] = 2 ** -6 * i / 4
        opt.zero_grad()
        out = ref(src, tgt)
        (-out.token_logp.sum() / out.mask.sum()).backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)
    assert step.last_lr(99.0) == 2 ** -6 * 3 / 4


WORDS = [f"w{i}" for i in range(8)]
VOCAB = Vocab.build([WORDS], len(WORDS))


def _corpus(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    src = [[rng.choice(WORDS) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return pd.DataFrame({"source": [" ".join(s) for s in src], "target": [" ".join(reversed(s)) for s in src]})


def _fit(tmp: Path, kind: str = "seq2seq", lines: list[str] | None = None) -> pd.DataFrame:
    m = replace(cfg(dropout=0.1), vocab_size=len(VOCAB),
                transformer=TransformerSettings(layers=1, d_model=16, heads=2, ff=32, max_positions=32))
    s = TrainSettings(epochs=3, batch_size=16, device="cpu", seed=3, log_every=1000, warmup_steps=5, adam_lr=0.01)
    with open(os.devnull, "w") as quiet:
        return training.train_baseline(kind, _corpus(120, 0), _corpus(40, 1), VOCAB, m, s, tmp / f"{kind}.pt",
                                       tmp / f"{kind}_curve.csv", (lines if lines is not None else []).append,
                                       progress=quiet)


def test_baseline_training_of_a_transformer_learns_and_resumes_exactly(tmp_path, monkeypatch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    curve = _fit(whole)
    assert curve["valid_ppl"].iloc[-1] < curve["valid_ppl"].iloc[0] and curve["lr"].iloc[-1] < 0.01
    real_save, calls = training.save_state, []

    def killed_after_first_epoch(*args, **kw):
        real_save(*args, **kw)
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training, "save_state", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        _fit(parts)
    torch.manual_seed(12345)
    lines: list[str] = []
    resumed = _fit(parts, lines=lines)
    assert any(line.startswith("resuming from") for line in lines)
    a, b = checkpoint.load(whole / "seq2seq.pt", arch="transformer"), checkpoint.load(parts / "seq2seq.pt")
    assert isinstance(a.model, TransformerSeq2Seq) and a.model_settings.arch == "transformer"
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), k
    pd.testing.assert_frame_equal(curve[["epoch", "lr", "valid_ppl"]], resumed[["epoch", "lr", "valid_ppl"]])


# ------------------------------------------------------------------------------------- checkpoints, config


def test_checkpoint_round_trip_and_the_wrong_arch_in_one_line(tmp_path):
    s2s, lm = models()
    vocab = Vocab(SPECIALS + tuple(f"t{i}" for i in range(V - 5)))
    for kind, model in (("seq2seq", s2s), ("lm", lm)):
        checkpoint.save(tmp_path / f"{kind}.pt", model, kind=kind, vocab=vocab)
        ck = checkpoint.load(tmp_path / f"{kind}.pt", vocab, arch="transformer")
        assert type(ck.model) is type(model) and ck.model_settings == model.cfg
        assert torch.load(tmp_path / f"{kind}.pt", weights_only=True)["arch"] == "transformer"
        for (k, a), (_, b) in zip(model.state_dict().items(), ck.model.state_dict().items()):
            assert torch.equal(a, b), k
    src, tgt = batch()
    assert torch.equal(checkpoint.load(tmp_path / "seq2seq.pt").model(src, tgt).token_logp, s2s(src, tgt).token_logp)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(tmp_path / "seq2seq.pt", arch="lstm")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "seq2seq.pt") in msg and "transformer" in msg and "lstm" in msg
    lstm = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=4, hidden_dim=6))
    checkpoint.save(tmp_path / "lstm.pt", lstm, kind="seq2seq", vocab=vocab)
    with pytest.raises(checkpoint.CheckpointError, match="an LSTM checkpoint, but model.arch is transformer"):
        checkpoint.load(tmp_path / "lstm.pt", arch="transformer")
    with pytest.raises(checkpoint.CheckpointError, match="does not match"):
        checkpoint.save(tmp_path / "x.pt", lm, kind="seq2seq", vocab=vocab)


def test_a_checkpoint_without_an_arch_is_an_lstms(tmp_path):
    """Files written before the choice existed: no 'arch' key, no transformer settings."""
    lstm = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=4, hidden_dim=6))
    vocab = Vocab(SPECIALS + tuple(f"t{i}" for i in range(V - 5)))
    checkpoint.save(tmp_path / "old.pt", lstm, kind="seq2seq", vocab=vocab)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    del payload["arch"], payload["model_settings"]["arch"], payload["model_settings"]["transformer"]
    (tmp_path / "old.pt").write_bytes(checkpoint.serialise(payload))
    assert isinstance(checkpoint.load(tmp_path / "old.pt", arch="lstm").model, Seq2Seq)


def _config(**model) -> dict:
    return {"datasets": {"chitchat": {"reader": "chitchat", "vocab_size": 100, "train": {"dropout": 0.3}}},
            "model": model}


def test_config_yaml_transformer_dropout_is_its_own_at_paper_scale_and_the_quick_one_at_quick_scale():
    """config.yaml: the Transformer drops out at model.transformer.dropout (0.1) at paper scale, where the LSTM takes
    the dataset's 0.3; at quick scale it takes quick.dropout (0.0), as the LSTMs do."""
    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "config.yaml").read_text())
    config["model"]["arch"] = "transformer"

    def dropouts(scale: str) -> set[float]:
        m = ncfg.settings(ncfg.validate({**config, "scale": scale}), "switchboard").model
        model = TransformerSeq2Seq(replace(m, vocab_size=V))
        return {mod.p for mod in model.modules() if isinstance(mod, torch.nn.Dropout)}

    assert dropouts("paper") == {0.1}
    assert dropouts("quick") == {0.0}


def test_config_keys_reach_the_model_and_training_settings():
    s = ncfg.settings(ncfg.validate(_config(arch="transformer", transformer={"positions": "sinusoidal"})), "chitchat")
    assert s.model.arch == "transformer" and s.model.transformer.positions == "sinusoidal"
    assert s.model.transformer == TransformerSettings(positions="sinusoidal") and s.model.dropout == 0.3
    assert (s.train.optimizer, s.train.schedule, s.train.warmup_steps) == ("auto", "auto", 4000)
    assert s.paraphrase.model.arch == "transformer"
    quick = ncfg.validate({**_config(arch="transformer"), "scale": "quick"})
    q = ncfg.settings(quick, "chitchat")
    assert (q.model.transformer.layers, q.model.transformer.d_model, q.train.warmup_steps) == (2, 64, 200)
    assert q.paraphrase.model.transformer == q.model.transformer
    assert ncfg.settings(ncfg.validate(_config()), "chitchat").model.arch == "lstm"
    shared = ncfg.validate(_config(arch="transformer", transformer={"share_source_embedding": True}))
    assert ncfg.settings(shared, "chitchat").model.transformer.share_source_embedding
    assert not s.model.transformer.share_source_embedding


@pytest.mark.parametrize("model, train, message", [
    ({"transformer": {"d_model": 30, "heads": 4}}, {}, "'model.transformer.d_model': 30 is not a multiple of heads"),
    ({"transformer": {"d_model": 5, "heads": 5, "positions": "sinusoidal"}}, {}, "an even d_model"),
    ({"transformer": {"max_positions": 10}}, {}, "'model.transformer.max_positions': 10 is less than"),
    ({"arch": "transformer"}, {"optimizer": "sgd"}, "'train.schedule': inverse_sqrt needs train.optimizer adam"),
    ({"arch": "gru"}, {}, "'model.arch': 'gru' is not one of"),
])
def test_bad_transformer_settings_are_refused_naming_the_key(model, train, message):
    config = {**_config(**model), "train": train}
    with pytest.raises(ncfg.ConfigError, match=message.replace("(", r"\(")):
        ncfg.settings(ncfg.validate(config), "chitchat")


# ---------------------------------------------------------------------------------------------- workflow


@pytest.mark.slow
def test_quick_pipeline_with_transformers(tmp_path: Path):
    """``model.arch: transformer`` through the whole quick pipeline (``rule all``, tests/quick_tiny.yaml): every
    table is written."""
    overlay = tmp_path / "transformer.yaml"
    overlay.write_text(yaml.safe_dump({"model": {"arch": "transformer"}}))
    results = quick_pipeline(tmp_path, overlay, tiny=True)
    ck = checkpoint.load(results / "models" / "seq2seq.pt", arch="transformer")
    assert isinstance(ck.model, TransformerSeq2Seq)
    assert isinstance(checkpoint.load(results / "models" / "lm.pt", arch="transformer").model, TransformerLM)
    table8 = pd.read_csv(results / "table8.csv")
    assert table8["test_ppl"].between(5, 3005).all() and math.isfinite(table8["test_nll"].sum())
