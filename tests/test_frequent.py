"""Algorithm 2 (negtrain_core.frequent): the frequency window, the negative/positive steps, the </s> weighting."""

import pytest
import torch

from negtrain_core import frequent as F
from negtrain_core.config import ModelSettings
from negtrain_core.models import Seq2Seq
from negtrain_core.vocab import BOS_ID, EOS_ID, PAD_ID

V = 12


def _model(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16))


def _cfg(**kw) -> F.FrequentSettings:
    base = dict(r_thres=0.5, window=1, lr=0.5, momentum=0.0, weight_decay=0.0, lambda_pos=0.0, clip_norm=1e9)
    return F.FrequentSettings(**{**base, **kw})


def test_window_waits_until_full_then_evicts_the_oldest_batch():
    w = F.FrequencyWindow(3)
    w.push(["a", "a"])
    w.push(["b", "c"])
    assert not w.full
    assert F.negative_flags(["a", "a"], w, 0.01) == [False, False]      # nothing penalized before the window fills
    w.push(["a", "d"])
    assert w.full and w.total == 6 and w.ratio("a") == pytest.approx(3 / 6)
    w.push(["b", "b"])                                                  # evicts the first batch ["a", "a"]
    assert w.total == 6 and w.ratio("a") == pytest.approx(1 / 6) and w.ratio("b") == pytest.approx(3 / 6)
    assert "a" in w.counts and w.max_ratio() == pytest.approx(3 / 6)
    w.push(["e", "e"])
    w.push(["e", "f"])                                                  # "a" and the old "b"s have left
    assert "a" not in w.counts and w.ratio("b") == pytest.approx(2 / 6)


def test_ratio_counts_the_current_batch():
    w = F.FrequencyWindow(2)
    w.push(["x", "y", "z", "w"])
    keys = ["x", "x", "x", "q"]
    w.push(keys)                                                        # x: 1 old + 3 current = 4 of 8
    assert F.negative_flags(keys, w, 0.45) == [True, True, True, False]
    assert F.negative_flags(keys, w, 0.5) == [False, False, False, False]  # strictly above r_thres


def test_response_keys_are_exact_strings_with_eos():
    samples = torch.tensor([[5, 6, EOS_ID, PAD_ID, PAD_ID], [5, 6, 7, 8, 9], [5, 6, EOS_ID, 7, 7]])
    assert F.response_keys(samples) == ["5 6 0", "5 6 7 8 9", "5 6 0"]


def test_as_targets_and_eos_weights():
    samples = torch.tensor([[5, 6, EOS_ID, 7], [5, 6, 7, 8]])
    tgt = F.as_targets(samples)
    assert tgt.tolist() == [[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 5, 6, 7, 8]]
    assert torch.allclose(F.position_weights(tgt, 0.1), torch.tensor([[1, 1, 0.1, 0], [1, 1, 1, 1]]))
    quirk = F.position_weights(tgt, 0.1, on_last_position=True)         # the release: last position, </s> or not
    assert torch.allclose(quirk, torch.tensor([[1, 1, 0.1, 0], [1, 1, 1, 0.1]]))


def _logp(model, src, samples) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(src, F.as_targets(samples)).token_logp.sum(1)


def test_negative_step_lowers_the_log_prob_of_a_frequent_response():
    model, src = _model(), torch.randint(5, V, (4, 6))
    tgt = torch.cat([torch.full((4, 1), BOS_ID), torch.randint(5, V, (4, 3)), torch.full((4, 1), EOS_ID)], 1)
    samples = torch.tensor([[7, 8, EOS_ID]] * 4)                         # every input answered the same way
    before = _logp(model, src, samples)
    cfg = _cfg()
    opts = (F.sgd(model, cfg.lr, 0, 0), F.sgd(model, cfg.lr, 0, 0))
    stats = F.frequent_step(model, opts, src, tgt, samples, F.FrequencyWindow(1), cfg)
    assert stats.negatives == 4
    assert (_logp(model, src, samples) < before - 1e-3).all()


def test_eos_weight_zero_leaves_a_lone_eos_response_untouched():
    """A response that is only </s> carries weight eos_weight on its single position: 0 means no update."""
    src, samples = torch.randint(5, V, (3, 6)), torch.tensor([[EOS_ID, PAD_ID]] * 3)
    tgt = torch.tensor([[BOS_ID, 5, EOS_ID]] * 3)
    results = {}
    for w in (0.0, 0.1):
        model = _model()
        cfg = _cfg(eos_weight=w)
        opts = (F.sgd(model, cfg.lr, 0, 0), F.sgd(model, cfg.lr, 0, 0))
        before = _logp(model, src, samples)
        assert F.frequent_step(model, opts, src, tgt, samples, F.FrequencyWindow(1), cfg).negatives == 3
        results[w] = (_logp(model, src, samples) - before)
    assert torch.allclose(results[0.0], torch.zeros(3), atol=1e-6)
    assert (results[0.1] < -1e-4).all()


def test_no_update_before_the_window_fills():
    model, src = _model(), torch.randint(5, V, (2, 6))
    samples = torch.tensor([[7, EOS_ID]] * 2)
    tgt = F.as_targets(samples)
    cfg = _cfg(window=2)
    opts = (F.sgd(model, cfg.lr, 0, 0), F.sgd(model, cfg.lr, 0, 0))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert F.frequent_step(model, opts, src, tgt, samples, F.FrequencyWindow(2), cfg).negatives == 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
