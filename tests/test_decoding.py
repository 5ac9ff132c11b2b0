"""Decoding: greedy agrees with teacher forcing, beam with k=1 is greedy, an exhaustive beam finds the brute-force
optimum, cold sampling is greedy and warm sampling follows the model's distribution; a model that implements only
the interface (tests/fake_models.py, no LSTM) decodes through all of them."""

from __future__ import annotations

import itertools

import pytest
import torch

from negtrain_core.models import decoding
from negtrain_core.config import ModelSettings
from negtrain_core.models.scoring import model_output
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID

from fake_models import BagLM, BagSeq2Seq

V = 9


def peaky(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights large enough that distributions are far from uniform and </s> comes early; <s> and <pad>
    improbable, as after training (they are never targets)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.7)
        model.out.bias[EOS_ID] += 0.5
        model.out.bias[[BOS_ID, PAD_ID]] = -20.0
    return model.eval()


def seq2seq(vocab_size: int = V, seed: int = 0) -> Seq2Seq:
    return peaky(Seq2Seq(ModelSettings(vocab_size=vocab_size, embedding_dim=6, hidden_dim=8)), seed)


def source(b: int = 16, vocab_size: int = V) -> torch.Tensor:
    return torch.randint(5, vocab_size, (b, 5), generator=torch.Generator().manual_seed(3))


def with_bos(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) decoded ids -> (B, L+1) teacher-forcing input ``<s> ..``."""
    return torch.cat([torch.full((tokens.shape[0], 1), BOS_ID), tokens], dim=1)


def seq_logp(model: torch.nn.Module, src: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Summed teacher-forced log-prob of each decoded row (B,)."""
    return model_output(model, src, with_bos(tokens)).token_logp.sum(1)


def check_layout(tokens: torch.Tensor, max_len: int) -> None:
    """Each row: real tokens, then </s>, then only <pad>; or max_len real tokens."""
    assert tokens.shape[-1] <= max_len
    for row in tokens.reshape(-1, tokens.shape[-1]).tolist():
        n = row.index(EOS_ID) + 1 if EOS_ID in row else len(row)
        assert PAD_ID not in row[:n] and all(t == PAD_ID for t in row[n:])
        assert n == len(row) or EOS_ID in row


@pytest.mark.parametrize("make", [seq2seq, lambda: peaky(LSTMLM(ModelSettings(vocab_size=V, embedding_dim=6,
                                                                                hidden_dim=8)))])
def test_greedy_is_the_teacher_forced_argmax_of_its_own_output(make):
    model, src = make(), source()
    out = decoding.greedy(model, src, max_len=8)
    check_layout(out, 8)
    assert (out == EOS_ID).any(1).float().mean() > 0.3                  # some rows really end
    tf = model_output(model, src, with_bos(out))
    assert torch.equal(tf.greedy[tf.mask], out[tf.mask])


def test_beam_with_one_beam_is_greedy():
    model, src = seq2seq(), source()
    g = decoding.greedy(model, src, max_len=8)
    b = decoding.beam(model, src, k=1, n_best=1, max_len=8)
    assert b.tokens.shape == (16, 1, g.shape[1])
    assert torch.equal(b.tokens[:, 0], g)
    torch.testing.assert_close(b.scores[:, 0], seq_logp(model, src, g))


def test_beam_scores_are_the_hypotheses_log_probs_and_beat_greedy():
    model, src = seq2seq(), source()
    b = decoding.beam(model, src, k=5, n_best=3, max_len=8)
    check_layout(b.tokens, 8)
    assert (b.scores[:, :-1] >= b.scores[:, 1:]).all()                  # ranked
    for j in range(3):
        torch.testing.assert_close(b.scores[:, j], seq_logp(model, src, b.tokens[:, j]))
    greedy_score = seq_logp(model, src, decoding.greedy(model, src, max_len=8))
    assert (b.scores[:, 0] >= greedy_score - 1e-5).all()
    assert (b.scores[:, 0] > greedy_score + 1e-3).any()                 # the beam finds better ones somewhere


def brute_force(model: torch.nn.Module, src_row: torch.Tensor, max_len: int, vocab_size: int) -> torch.Tensor:
    """Log-prob of every possible output of at most ``max_len`` tokens (ended by </s>, or truncated)."""
    words = [t for t in range(vocab_size) if t not in (EOS_ID, BOS_ID, PAD_ID)]
    outs = [list(p) + [EOS_ID] for n in range(max_len) for p in itertools.product(words, repeat=n)]
    outs += [list(p) for p in itertools.product(words, repeat=max_len)]
    tokens = torch.tensor([o + [PAD_ID] * (max_len - len(o)) for o in outs])
    return seq_logp(model, src_row.expand(len(outs), -1), tokens)


def test_exhaustive_beam_finds_the_brute_force_n_best():
    vocab, max_len = 7, 3
    model, src = seq2seq(vocab, seed=5), source(2, vocab)
    b = decoding.beam(model, src, k=4 * 4 * vocab, n_best=4, max_len=max_len)  # never prunes (4 words allowed)
    for i in range(2):
        best = brute_force(model, src[i : i + 1], max_len, vocab).topk(4).values
        torch.testing.assert_close(b.scores[i], best)


def test_cold_sampling_is_greedy():
    model, src = seq2seq(), source()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(decoding.sample(model, src, 8, temperature=1e-5, generator=g), decoding.greedy(model, src, 8))
    assert torch.equal(decoding.sample(model, src, 8, temperature=0.0), decoding.greedy(model, src, 8))


def test_sampling_follows_the_model_distribution_and_the_generator():
    model = seq2seq()
    src = source(1).expand(4000, -1)
    draw = lambda seed: decoding.sample(model, src, 1, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    first = draw(0)[:, 0]
    with torch.no_grad():
        state = decoding.start(model, src[:1])
        probs = decoding.step(model, torch.tensor([BOS_ID]), state)[0][0].exp()
    freq = torch.bincount(first, minlength=V).float() / len(first)
    assert (freq - probs).abs().max() < 0.03                           # 4000 draws: s.e. <= 0.008
    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))


def test_bos_and_pad_are_never_emitted_even_when_most_likely():
    model, src = seq2seq(), source()
    for most_likely in (PAD_ID, BOS_ID):
        with torch.no_grad():
            model.out.bias[most_likely] = 50.0
        beam = decoding.beam(model, src, 3, 3, 6).tokens
        for out in (decoding.greedy(model, src, 6), decoding.sample(model, src, 6), beam):
            check_layout(out, 6)                                       # <pad> only ever after </s>
            assert not (out == BOS_ID).any()
        assert torch.isfinite(decoding.beam(model, src, 3, 3, 6).scores).all()


def test_decoding_restores_train_mode_and_checks_n_best():
    model = seq2seq().train()
    decoding.greedy(model, source(), 4)
    assert model.training
    with pytest.raises(ValueError, match="n_best"):
        decoding.beam(model, source(), k=2, n_best=3)


@pytest.mark.parametrize("make", [lambda: BagSeq2Seq(V), lambda: BagLM(V)])
def test_a_model_with_only_the_interface_decodes(make):
    """Greedy (eager and the graph decoder's CPU fallback), sampling and beam need nothing beyond the Protocols."""
    model, src = make().eval(), source()
    assert not any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    out = decoding.greedy(model, src, max_len=8)
    assert out.shape[0] == 16 and out.shape[1] <= 8
    check_layout(out, 8)
    tf = model.score(src, with_bos(out))                                  # greedy = its own teacher-forced argmax
    assert torch.equal(tf.greedy[tf.mask], out[tf.mask])
    assert torch.equal(decoding.GraphedGreedy(model, 8)(src), decoding.pad_samples(out, 8))
    check_layout(decoding.sample(model, src, 8, generator=torch.Generator().manual_seed(0)), 8)
    b = decoding.beam(model, src, k=3, n_best=2, max_len=8)
    assert b.tokens.shape[:2] == (16, 2) and b.tokens.shape[2] <= 8
    check_layout(b.tokens, 8)
    torch.testing.assert_close(b.scores[:, 0], model.score(src, with_bos(b.tokens[:, 0])).token_logp.sum(1))


def test_a_length_penalty_ranks_by_log_prob_over_length_with_eos_counted():
    """length_penalty 1: hypotheses ranked by summed log-prob / length (</s> counted; a truncated one has max_len),
    scores still the summed log-probs; an exhaustive beam finds the brute-force best by that rank."""
    vocab, max_len = 7, 3
    model, src = seq2seq(vocab, seed=2), source(2, vocab)
    b = decoding.beam(model, src, k=4 * 4 * vocab, n_best=4, max_len=max_len, length_penalty=1.0)
    words = [t for t in range(vocab) if t not in (EOS_ID, BOS_ID, PAD_ID)]
    outs = [list(p) + [EOS_ID] for n in range(max_len) for p in itertools.product(words, repeat=n)]
    outs += [list(p) for p in itertools.product(words, repeat=max_len)]
    lengths = torch.tensor([len(o) for o in outs], dtype=torch.float)
    tokens = torch.tensor([o + [PAD_ID] * (max_len - len(o)) for o in outs])
    differs = False
    for i in range(2):
        logp = seq_logp(model, src[i : i + 1].expand(len(outs), -1), tokens)
        best = (logp / lengths).topk(4).indices
        torch.testing.assert_close(b.scores[i], logp[best])
        assert b.tokens[i].tolist() == [tokens[j].tolist()[: b.tokens.shape[-1]] for j in best.tolist()]
        differs |= best.tolist() != logp.topk(4).indices.tolist()
    assert differs                                                        # the penalty changes the ranking


def test_beam_output_is_as_wide_as_its_longest_hypothesis():
    model, src = seq2seq(), source()
    b = decoding.beam(model, src, k=3, n_best=2, max_len=30)
    longest = int((b.tokens != PAD_ID).sum(-1).max())
    assert longest < 30 and b.tokens.shape[-1] == longest
