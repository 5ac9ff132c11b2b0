"""The models' contract: shapes, masks, the one-hot input path and its gradient, step-wise decoding; the LSTM models
implement the interface's Protocols, and its states and prefixes agree with the plain forwards."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negtrain_core.config import ModelSettings
from negtrain_core.models.interface import LanguageModel, Seq2SeqModel, SequenceModel
from negtrain_core.models.lstm import LSTMLM, Seq2Seq, SharedPrefixMemory
from negtrain_core.data.vocab import PAD_ID

from fake_models import BagLM, BagSeq2Seq
from toy_data import padded_batch

V = 11


def cfg(**kw) -> ModelSettings:
    return ModelSettings(**{"vocab_size": V, "embedding_dim": 6, "hidden_dim": 8, **kw})


def batch(b: int = 3, s: int = 5, t: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    return padded_batch(V, b, s, t)


@pytest.mark.parametrize("attention", ["general", "release"])
def test_seq2seq_shapes_and_mask(attention: str):
    torch.manual_seed(0)
    src, tgt = batch()
    out = Seq2Seq(cfg(attention=attention)).eval()(src, tgt)
    assert out.token_logp.shape == out.greedy.shape == out.mask.shape == (3, 5)
    assert out.mask.tolist()[0] == [True, True, True, False, False]
    assert (out.token_logp[0, 3:] == 0).all() and (out.token_logp[out.mask] < 0).all()


def test_lm_scores_match_a_hand_computed_log_softmax():
    torch.manual_seed(0)
    lm = LSTMLM(cfg()).eval()
    _, tgt = batch()
    out = lm(tgt)
    logits, _ = lm.logits(tgt[:, :-1])
    want = F.log_softmax(logits, -1).gather(-1, tgt[:, 1:, None]).squeeze(-1) * (tgt[:, 1:] != PAD_ID)
    assert out.token_logp.shape == (3, 5)
    torch.testing.assert_close(out.token_logp, want)


@pytest.mark.parametrize("attention", ["general", "release"])
def test_one_hot_source_equals_ids_and_has_the_right_gradient(attention: str):
    torch.manual_seed(0)
    model = Seq2Seq(cfg(attention=attention)).double().eval()
    src, tgt = batch()
    one_hot = F.one_hot(src, V).double().requires_grad_()
    with torch.backends.cudnn.flags(enabled=False):           # a gradient in eval mode: off cuDNN, as a GPU needs
        out_ids, out_hot = model(src, tgt), model(one_hot, tgt)
    torch.testing.assert_close(out_hot.token_logp, out_ids.token_logp)
    out_hot.token_logp.sum().backward()
    grad = one_hot.grad                                       # (B, S, V)
    assert grad.shape == (3, 5, V) and grad.abs().sum() > 0
    direction = torch.randn(3, 5, V, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    eps = 1e-6                                               # central difference along a random direction
    f = lambda x: model(x, tgt).token_logp.sum()  # noqa: E731
    numeric = (f(one_hot.detach() + eps * direction) - f(one_hot.detach() - eps * direction)) / (2 * eps)
    torch.testing.assert_close(numeric, (grad * direction).sum(), rtol=1e-5, atol=1e-7)


def test_one_hot_lm_input_equals_ids():
    torch.manual_seed(0)
    lm = LSTMLM(cfg()).eval()
    _, tgt = batch()
    torch.testing.assert_close(lm(F.one_hot(tgt, V).float()).token_logp, lm(tgt).token_logp)


@pytest.mark.parametrize("attention", ["general", "release"])
def test_step_wise_decode_equals_teacher_forcing(attention: str):
    torch.manual_seed(0)
    model = Seq2Seq(cfg(attention=attention)).eval()
    src, tgt = batch()
    enc = model.encode(src)
    full, _ = model.decode(tgt[:, :-1], enc)                   # (B, T-1, V)
    state, steps = None, []
    for t in range(tgt.shape[1] - 1):
        logits, state = model.decode(tgt[:, t : t + 1], enc, state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_train_mode():
    torch.manual_seed(0)
    model = Seq2Seq(cfg(dropout=0.5))
    src, tgt = batch()
    a, b = model(src, tgt).token_logp, model(src, tgt).token_logp
    assert not torch.equal(a, b)
    model.eval()
    assert torch.equal(model(src, tgt).token_logp, model(src, tgt).token_logp)


def test_the_lstm_models_and_the_fake_ones_satisfy_the_protocols():
    for model in (Seq2Seq(cfg()), BagSeq2Seq(V)):
        assert isinstance(model, Seq2SeqModel) and isinstance(model, SequenceModel)
    for lm in (LSTMLM(cfg()), BagLM(V)):
        assert isinstance(lm, LanguageModel) and not isinstance(lm, Seq2SeqModel)
    assert Seq2Seq(cfg()).vocab_size == LSTMLM(cfg()).vocab_size == V and Seq2Seq(cfg()).embedding_dim == 6


def test_score_is_the_forward_of_either_model():
    torch.manual_seed(0)
    model, lm = Seq2Seq(cfg()).eval(), LSTMLM(cfg()).eval()
    src, tgt = batch()
    for got, want in ((model.score(src, tgt), model(src, tgt)), (lm.score(src, tgt), lm(tgt))):
        assert all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("attention", ["general", "release"])
def test_interface_steps_equal_teacher_forcing_and_rows_can_be_picked(attention: str):
    torch.manual_seed(0)
    model = Seq2Seq(cfg(attention=attention)).eval()
    src, tgt = batch()
    full, _ = model.decode(tgt[:, :-1], model.encode(src))
    state, steps = model.initial_state(src), []
    for t in range(tgt.shape[1] - 1):
        logits, state = model.decode_block(tgt[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-6)
    rows = torch.tensor([2, 0, 0])                                   # reordered, one row repeated
    picked, _ = model.decode_block(tgt[rows, :-1], model.select_rows(model.initial_state(src), rows))
    torch.testing.assert_close(picked, full[rows])
    parts = [model.initial_state(src[:1]), model.initial_state(src[1:])]
    joined, _ = model.decode_block(tgt[:, :-1], model.cat_rows(parts))
    torch.testing.assert_close(joined, full)


def test_lm_interface_state_continues_a_block_and_can_be_picked():
    torch.manual_seed(0)
    lm = LSTMLM(cfg()).eval()
    _, tgt = batch()
    full, _ = lm.decode_block(tgt, lm.initial_state(tgt))
    first, state = lm.decode_block(tgt[:, :2], lm.initial_state(tgt))
    rows = torch.tensor([1, 1, 0])
    rest, _ = lm.decode_block(tgt[rows, 2:], lm.select_rows(state, rows))
    torch.testing.assert_close(rest, full[rows, 2:])
    whole = lm.cat_rows([lm.decode_block(tgt[:1, :2], None)[1], lm.decode_block(tgt[1:, :2], None)[1]])
    torch.testing.assert_close(lm.decode_block(tgt[:, 2:], whole)[0], full[:, 2:])


@pytest.mark.parametrize("shared_tail", [False, True])
@pytest.mark.parametrize("pos", [0, 2, 4])
def test_an_expanded_prefix_keeps_its_outputs_once_per_group_and_decodes_as_the_whole_rows(pos: int, shared_tail: bool,
                                                                                           attention_kw):
    """expand_prefix(prefix, base, G) + encode_from: the prefix's encoder outputs once per base row (a
    SharedPrefixMemory), the same logits as encoding the whole rows, with either attention, and with the input
    products after ``pos`` once per base row too (``shared_tail``); selecting or concatenating the rows of such a
    state gives plain memories of the same rows."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg(**attention_kw)).double().eval()
    src, tgt = batch()
    first, G = torch.tensor([2, 0]), 3
    base = first.repeat_interleave(G)
    rows = src[base]
    rows[:, pos] = torch.tensor([5, 6, 7, 8, 9, 10])                   # G candidates per base row, at pos only
    prefix = model.expand_prefix(model.encode_prefix(src[:, :pos]), first, G, shared_tail=shared_tail)
    enc = model.encode_from(prefix, rows)
    assert isinstance(enc.out, SharedPrefixMemory) == (pos > 0)
    if pos:
        assert enc.out.prefix.shape == (2, pos, 8) and enc.out.suffix.shape == (6, 5 - pos, 8)
    want, _ = model.decode(tgt[base, :-1], model.encode(rows))
    state = model.state_from(enc)
    got, _ = model.decode_block(tgt[base, :-1], state)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    picked = model.select_rows(state, torch.tensor([4, 0]))
    torch.testing.assert_close(model.decode_block(tgt[base[[4, 0]], :-1], picked)[0], want[[4, 0]],
                               rtol=1e-12, atol=1e-12)
    both = model.cat_rows([state, model.state_from(model.encode(rows))])
    assert both.memory.shape == (12, 5, 8)
    torch.testing.assert_close(model.decode_block(torch.cat([tgt[base, :-1]] * 2), both)[0], torch.cat([want, want]),
                               rtol=1e-12, atol=1e-12)


def test_a_shared_tail_reads_each_groups_first_row_after_the_prefix_and_only_in_eval_mode():
    """With ``shared_tail`` the encoder takes positions pos + 1.. from each group's first row, and the (general
    attention's) decoder each group's target tokens: rows that break the promise are encoded and decoded as their
    group's first row would be (so the option is not ignored), which a plain prefix does not do; in training mode
    (dropout masks that differ by row) encode_from reads every row."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg(dropout=0.5, attention="general")).double().eval()
    src, tgt = batch()
    first, G, pos = torch.tensor([2, 0]), 3, 1
    rows = src[first.repeat_interleave(G)]
    rows[:, pos] = torch.tensor([5, 6, 7, 8, 9, 10])
    broken = rows.clone()
    broken[1::G, pos + 1:] = V - 1                                # a second row per group differs after pos
    prefix = model.encode_prefix(src[:, :pos])
    shared = model.encode_from(model.expand_prefix(prefix, first, G, shared_tail=True), broken)
    torch.testing.assert_close(shared.out.full(), model.encode(rows).out, rtol=1e-12, atol=1e-12)
    plain = model.encode_from(model.expand_prefix(prefix, first, G), broken)
    torch.testing.assert_close(plain.out.full(), model.encode(broken).out, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(plain.out.full(), shared.out.full())
    state = model.state_from(shared)
    assert state.shared_group == G and model.state_from(plain).shared_group is None
    targets = tgt[first.repeat_interleave(G), :-1]
    mixed = targets.clone()
    mixed[1::G, 1:] = V - 1                                       # a second row per group decodes other tokens
    want, _ = model.decode_block(targets, state._replace(shared_group=None))
    torch.testing.assert_close(model.decode_block(mixed, state)[0], want, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(model.decode_block(mixed, state._replace(shared_group=None))[0], want)
    model.train()
    torch.manual_seed(1)
    trained = model.encode_from(model.expand_prefix(prefix, first, G, shared_tail=True), broken)
    torch.manual_seed(1)
    assert torch.equal(trained.out.full(), model.encode_from(model.expand_prefix(prefix, first, G), broken).out.full())


def test_the_release_decoder_with_a_shared_tail_reads_each_groups_tokens_once_and_only_in_eval_mode():
    """The release's step-wise attention decoder with a ``shared_group`` state: each group's share of the queries and
    of the first layer's input products comes from its first row's tokens (rows that break the promise decode as
    that row's would, so the option is not ignored), the logits equal the plain decoder's where the promise holds,
    and in training mode every row's tokens are read."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg(dropout=0.5, attention="release", decoder_init="zero")).double().eval()
    src, tgt = batch()
    first, G, pos = torch.tensor([2, 0]), 3, 2
    rows = src[first.repeat_interleave(G)]
    rows[:, pos] = torch.tensor([5, 6, 7, 8, 9, 10])
    prefix = model.expand_prefix(model.encode_prefix(src[:, :pos]), first, G, shared_tail=True)
    state = model.state_from(model.encode_from(prefix, rows))
    assert state.shared_group == G
    targets = tgt[first.repeat_interleave(G), :-1]
    mixed = targets.clone()
    mixed[1::G, 1:] = V - 1                                       # a second row per group decodes other tokens
    want, want_state = model.decode_block(targets, state._replace(shared_group=None))
    got, got_state = model.decode_block(mixed, state)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_state.hidden, want_state.hidden, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(model.decode_block(mixed, state._replace(shared_group=None))[0], want)
    model.train()
    torch.manual_seed(1)
    trained = model.decode_block(mixed, state)[0]
    torch.manual_seed(1)
    assert torch.equal(trained, model.decode_block(mixed, state._replace(shared_group=None))[0])


@pytest.mark.parametrize("pos", [0, 2, 4])
def test_encoder_continued_from_a_prefix_equals_encode(pos: int):
    torch.manual_seed(0)
    model = Seq2Seq(cfg()).double().eval()
    src, tgt = batch()
    base = torch.tensor([0, 2, 2, 1])
    rows = src[base]
    rows[:, pos] = torch.tensor([5, 6, 7, 8])                          # the candidates differ at pos only
    enc = model.encode_from(model.select_prefix(model.encode_prefix(src[:, :pos]), base), rows)
    want, _ = model.decode(tgt[base, :-1], model.encode(rows))
    got, _ = model.decode_block(tgt[base, :-1], model.state_from(enc))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("later", [0, 3])
def test_the_lm_decodes_a_shared_tail_as_the_whole_rows_reading_each_groups_later_tokens_once(later: int):
    """LSTMLM.decode_shared_tail (gibbs-enum's io-mode candidates continuing a trigger): rows that differ at their
    first token and share ``later`` tokens per group of G give decode_block's logits and state; the later tokens are
    read once per group (one given per group, so a row cannot break the promise), and in training mode the rows run
    as decode_block's, dropout masks and all."""
    torch.manual_seed(0)
    lm = LSTMLM(cfg(dropout=0.5)).double().eval()
    G, n = 3, 2
    first = torch.tensor([5, 6, 7, 8, 9, 10])
    rest = torch.randint(4, V, (n, later))
    whole = torch.cat([first.unsqueeze(1), rest.repeat_interleave(G, dim=0)], dim=1)
    start = lm.decode_block(torch.randint(4, V, (n * G, 2)), None)[1]       # a state after a prefix, per row
    want, want_state = lm.decode_block(whole, start)
    got, got_state = lm.decode_shared_tail(first, rest, G, start)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_state, want_state, rtol=1e-12, atol=1e-12)
    if later:
        other = rest.clone()
        other[1, -1] = V - 1                                               # the second group's last token
        assert torch.allclose(lm.decode_shared_tail(first, other, G, start)[0][:G], want[:G])
        assert not torch.allclose(lm.decode_shared_tail(first, other, G, start)[0][G:], want[G:])
    lm.train()
    torch.manual_seed(1)
    trained = lm.decode_shared_tail(first, rest, G, start)[0]
    torch.manual_seed(1)
    assert torch.equal(trained, lm.decode_block(whole, start)[0])
