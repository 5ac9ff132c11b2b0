"""Vocabulary unlikelihood (negtrain_core.comparisons.unlikelihood): penalties (by hand and against a Python-loop
reference), the loss by hand, the token history's window, a step, and a short run's curve."""

import copy
import math

import pytest
import torch

from negtrain_core.comparisons import unlikelihood as U
from negtrain_core.config import ModelSettings
from negtrain_core.models.steps import Sgd, as_targets, mle_loss
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID

V = 12


def _counts(d: dict[int, int], v: int = V) -> torch.Tensor:
    """{id: count} -> dense (v,) long counts."""
    out = torch.zeros(v, dtype=torch.long)
    for w, c in d.items():
        out[w] = c
    return out


def _support(beta: torch.Tensor) -> dict[int, float]:
    """Dense (V,) beta -> {id: beta} of its non-zero entries."""
    return {w: float(beta[w]) for w in beta.nonzero().flatten().tolist()}


def _reference_penalties(gen: dict[int, int], hum: dict[int, int], threshold: float) -> dict[int, float]:
    """The rule written as a plain Python loop over counts (the former implementation)."""
    g_total, h_total = sum(gen.values()), sum(hum.values())
    out = {}
    for w, c in gen.items():
        if c == 0:
            continue
        p_gen, p_hum = c / g_total, hum.get(w, 0) / h_total if h_total else 0.0
        if p_hum > 0 and p_gen > p_hum and p_gen * math.log(p_gen / p_hum) > threshold:
            out[w] = p_gen * math.log(p_gen / p_hum)
    return out


def test_vocab_penalties_by_hand():
    gen = _counts({5: 6, 6: 2, EOS_ID: 2})        # p_gen: 0.6, 0.2, 0.2
    hum = _counts({5: 2, 6: 4, EOS_ID: 4})        # p_hum: 0.2, 0.4, 0.4
    pen = U.vocab_penalties(gen, hum, threshold=1e-3)
    assert pen.shape == (V,) and pen.dtype == torch.float64
    support = _support(pen)
    assert support.keys() == {5} and support[5] == pytest.approx(0.6 * math.log(3))
    assert _support(U.vocab_penalties(gen, hum, threshold=0.7)) == {}         # beta 0.659 below the threshold
    assert _support(U.vocab_penalties(_counts({7: 1}), _counts({5: 1}), 1e-3)) == {}   # never in the references
    assert _support(U.vocab_penalties(2 * hum, hum, 0.0)) == {}                # p_gen == p_hum: not over-used
    assert _support(U.vocab_penalties(torch.zeros(V, dtype=torch.long), hum, 0.0)) == {}   # nothing generated


@pytest.mark.parametrize("threshold", [0.0, 1e-3, 1e-2])
def test_vectorised_penalties_match_a_python_loop_on_random_counts(threshold):
    g = torch.Generator().manual_seed(int(threshold * 1e4))
    v = 500
    for _ in range(5):
        gen = torch.randint(0, 40, (v,), generator=g) * (torch.rand(v, generator=g) < 0.6)
        hum = torch.randint(0, 40, (v,), generator=g) * (torch.rand(v, generator=g) < 0.6)
        gen[:3] = torch.tensor([0, 7, 3])                                      # some tokens in one side only
        hum[:3] = torch.tensor([4, 0, 3])
        ref = _reference_penalties(dict(enumerate(gen.tolist())), dict(enumerate(hum.tolist())), threshold)
        beta = U.vocab_penalties(gen, hum, threshold)
        assert 0 < len(ref) < int(((gen > 0) & (hum > 0)).sum())            # the rule keeps some, drops some
        got = _support(beta)
        assert got.keys() == ref.keys()
        assert all(got[w] == pytest.approx(ref[w], rel=1e-12) for w in ref)
        assert int((beta > 0).sum()) == len(ref)


def test_unlikelihood_loss_by_hand():
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    weights = torch.tensor([[1.0, 2.0, 0.0]])
    expected = (-math.log(1 - 0.5) - 2 * math.log(1 - 0.2)) / 2          # averaged over the 2 penalized positions
    assert float(U.unlikelihood_loss(logp, weights)) == pytest.approx(expected)
    assert float(U.unlikelihood_loss(logp, torch.zeros_like(weights))) == 0.0


def test_penalty_weights_follow_the_generated_tokens():
    tgt = torch.tensor([[BOS_ID, 5, 6, 5, EOS_ID, PAD_ID]])
    beta = torch.zeros(V, dtype=torch.float64)
    beta[5], beta[EOS_ID], beta[PAD_ID] = 0.3, 0.1, 0.7                         # padding is masked whatever beta says
    w = U.penalty_weights(tgt, beta)
    assert w.dtype == torch.float and torch.allclose(w, torch.tensor([[0.3, 0.0, 0.3, 0.1, 0.0]]))


def test_token_counts_skip_padding():
    counts = U.token_counts(torch.tensor([[5, 5, EOS_ID, PAD_ID], [PAD_ID, 7, PAD_ID, PAD_ID]]), V)
    assert counts.tolist() == _counts({5: 2, EOS_ID: 1, 7: 1}).tolist()


def test_token_history_window():
    h = U.TokenHistory(2, V)
    h.push(_counts({5: 3}), _counts({6: 1}))
    assert not h.full
    h.push(_counts({6: 1}), _counts({6: 1}))
    assert h.full and h.gen.tolist() == _counts({5: 3, 6: 1}).tolist()
    h.push(_counts({7: 2}), _counts({7: 2}))                                   # evicts the first batch
    assert h.gen.tolist() == _counts({6: 1, 7: 2}).tolist() and h.hum.tolist() == _counts({6: 1, 7: 2}).tolist()
    h.push(_counts({8: 1}), _counts({5: 4}))                                   # around the ring: evicts the second
    assert h.gen.tolist() == _counts({7: 2, 8: 1}).tolist() and h.hum.tolist() == _counts({7: 2, 5: 4}).tolist()
    with pytest.raises(ValueError, match="window"):
        U.TokenHistory(0, V)


def test_ul_step_lowers_an_overused_token_and_waits_for_the_window():
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=0.0))
    src = torch.randint(5, V, (4, 6))
    tgt = torch.tensor([[BOS_ID, 6, 7, EOS_ID]] * 4)
    samples = torch.tensor([[5, 5, EOS_ID]] * 4)                               # the model over-uses token 5
    cfg = U.ULSettings(alpha=0.3, window=2, threshold=0.0, clip_norm=1e9)
    opt = Sgd(model.parameters(), lr=0.0, momentum=0.0, clip_norm=cfg.clip_norm, arithmetic="torch")
    history = U.TokenHistory(2, V)
    first = U.ul_step(model, opt, src, tgt, samples, history, cfg)
    assert all(t.dim() == 0 for t in first)                                     # statistics stay tensors
    assert first.row()["candidates"] == 0 and first.row()["ul"] == 0.0          # window not full: MLE only
    hum_with_5 = torch.tensor([[BOS_ID, 5, 6, 7, EOS_ID]] * 4)                   # references use 5 too, less often
    stats = U.ul_step(model, opt, src, hum_with_5, samples, history, cfg).row()
    assert stats["candidates"] >= 1 and stats["ul"] > 0 and stats["mle"] > 0
    assert isinstance(stats["candidates"], int)

    def p5():
        with torch.no_grad():
            return model.eval()(src, as_targets(samples)).token_logp[:, 0].exp()

    # a step at lr 1 moves the weights as plain SGD on MLE + alpha x UL built by hand, and makes 5 less likely
    before, twin, twin_history = p5(), copy.deepcopy(model), copy.deepcopy(history)
    step = Sgd(model.parameters(), lr=1.0, momentum=0.0, clip_norm=cfg.clip_norm, arithmetic="torch")
    assert U.ul_step(model, step, src, tgt, samples, history, cfg).row()["candidates"] >= 1
    twin_history.push(U.token_counts(samples, V), U.token_counts(tgt[:, 1:], V))
    gen_tgt = as_targets(samples)
    weights = U.penalty_weights(gen_tgt, U.vocab_penalties(twin_history.gen, twin_history.hum, cfg.threshold))
    twin.train()
    loss = mle_loss(twin(src, tgt)) + cfg.alpha * U.unlikelihood_loss(twin(src, gen_tgt).token_logp, weights)
    sgd = torch.optim.SGD(twin.parameters(), lr=1.0)
    sgd.zero_grad()
    loss.backward()
    sgd.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert (p5() < before).all()


def test_ul_step_with_no_candidate_adds_nothing():
    """A full window without an over-used token: the UL term is 0 and the update is the MLE one."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=0.0))
    src, tgt = torch.randint(5, V, (4, 6)), torch.tensor([[BOS_ID, 6, 7, EOS_ID]] * 4)
    samples = tgt[:, 1:]                                                        # generated = references
    cfg = U.ULSettings(window=1, threshold=0.0)
    twin = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=0.0))
    twin.load_state_dict(model.state_dict())
    sgd = lambda m: Sgd(m.parameters(), lr=0.1, momentum=0.0, clip_norm=cfg.clip_norm, arithmetic="torch")  # noqa: E731
    stats = U.ul_step(model, sgd(model), src, tgt, samples, U.TokenHistory(1, V), cfg).row()
    assert stats["candidates"] == 0 and stats["ul"] == 0.0
    sgd(twin).update(mle_loss(twin.train()(src, tgt)))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))


def test_train_unlikelihood_logs_python_numbers():
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16))
    src = torch.randint(5, V, (20, 6))
    tgt = torch.cat([torch.full((20, 1), BOS_ID), torch.randint(5, V, (20, 3)), torch.full((20, 1), EOS_ID)], 1)
    cfg = U.ULSettings(window=2, batch_size=4, epochs=2, log_every=3, max_len=5)
    curve = U.train_unlikelihood(model, (src, tgt), cfg)
    assert curve["step"].tolist() == [3, 5, 6, 9, 10]                          # every 3 steps and each epoch's end
    assert curve["epoch"].tolist() == [1, 1, 2, 2, 2]
    assert curve["candidates"].dtype.kind == "i" and curve["mle"].dtype.kind == "f"
    assert (curve["mle"] > 0).all() and (curve["ul"] >= 0).all()
