"""Vocabulary unlikelihood (negtrain_core.unlikelihood): penalties, the loss by hand, the token history, a step."""

import math
from collections import Counter

import pytest
import torch

from negtrain_core import unlikelihood as U
from negtrain_core.config import ModelSettings
from negtrain_core.frequent import as_targets
from negtrain_core.models import Seq2Seq
from negtrain_core.vocab import BOS_ID, EOS_ID, PAD_ID

V = 12


def test_vocab_penalties_by_hand():
    gen = Counter({5: 6, 6: 2, EOS_ID: 2})        # p_gen: 0.6, 0.2, 0.2
    hum = Counter({5: 2, 6: 4, EOS_ID: 4})        # p_hum: 0.2, 0.4, 0.4
    pen = U.vocab_penalties(gen, hum, threshold=1e-3)
    assert pen.keys() == {5} and pen[5] == pytest.approx(0.6 * math.log(3))
    assert U.vocab_penalties(gen, hum, threshold=0.7) == {}                    # beta 0.659 below the threshold
    assert U.vocab_penalties(Counter({7: 1}), Counter({5: 1}), 1e-3) == {}      # never in the references: skipped


def test_unlikelihood_loss_by_hand():
    logp = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))
    weights = torch.tensor([[1.0, 2.0, 0.0]])
    expected = (-math.log(1 - 0.5) - 2 * math.log(1 - 0.2)) / 2          # averaged over the 2 penalized positions
    assert float(U.unlikelihood_loss(logp, weights)) == pytest.approx(expected)
    assert float(U.unlikelihood_loss(logp, torch.zeros_like(weights))) == 0.0


def test_penalty_weights_follow_the_generated_tokens():
    tgt = torch.tensor([[BOS_ID, 5, 6, 5, EOS_ID, PAD_ID]])
    w = U.penalty_weights(tgt, {5: 0.3, EOS_ID: 0.1})
    assert torch.allclose(w, torch.tensor([[0.3, 0.0, 0.3, 0.1, 0.0]]))


def test_token_history_window():
    h = U.TokenHistory(2)
    h.push(Counter({5: 3}), Counter({6: 1}))
    h.push(Counter({6: 1}), Counter({6: 1}))
    assert h.full and h.gen == Counter({5: 3, 6: 1})
    h.push(Counter({7: 2}), Counter({7: 2}))                                   # evicts the first batch
    assert h.gen == Counter({6: 1, 7: 2}) and h.hum == Counter({6: 1, 7: 2})
    assert U.token_counts(torch.tensor([[5, 5, EOS_ID, PAD_ID]])) == Counter({5: 2, EOS_ID: 1})


def test_ul_step_lowers_an_overused_token_and_waits_for_the_window():
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16))
    src = torch.randint(5, V, (4, 6))
    tgt = torch.tensor([[BOS_ID, 6, 7, EOS_ID]] * 4)
    samples = torch.tensor([[5, 5, EOS_ID]] * 4)                               # the model over-uses token 5
    cfg = U.ULSettings(alpha=1.0, window=2, threshold=0.0, clip_norm=1e9)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    history = U.TokenHistory(2)
    assert U.ul_step(model, opt, src, tgt, samples, history, cfg).candidates == 0   # window not full: MLE only
    hum_with_5 = torch.tensor([[BOS_ID, 5, 6, 7, EOS_ID]] * 4)                   # references use 5 too, less often
    stats = U.ul_step(model, opt, src, hum_with_5, samples, history, cfg)
    assert stats.candidates >= 1 and stats.ul > 0

    def p5():
        with torch.no_grad():
            return model.eval()(src, as_targets(samples)).token_logp[:, 0].exp()

    before = p5()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    ul = U.unlikelihood_loss(model.train()(src, as_targets(samples)).token_logp,
                             U.penalty_weights(as_targets(samples), U.vocab_penalties(history.gen, history.hum, 0.0)))
    opt.zero_grad()
    ul.backward()
    opt.step()
    assert (p5() < before).all()
