"""Teacher-forced scoring (negtrain_core.models.scoring): NLL and perplexity by hand, scoring a dataset in batches
for both kinds of model, the two summation orders."""

from __future__ import annotations

import math

import pytest
import torch

from negtrain_core.config import ModelSettings
from negtrain_core.data.tensors import PairTensors
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID
from negtrain_core.models import scoring
from negtrain_core.models.interface import SeqOutput
from negtrain_core.models.lstm import LSTMLM, Seq2Seq

V = 12


def _data(n: int = 10) -> PairTensors:
    g = torch.Generator().manual_seed(4)
    lengths = torch.randint(1, 5, (n,), generator=g)
    tgt = torch.full((n, 7), PAD_ID)
    for i, k in enumerate(lengths.tolist()):
        tgt[i, : k + 2] = torch.cat([torch.tensor([BOS_ID]), torch.randint(5, V, (k,), generator=g),
                                     torch.tensor([EOS_ID])])
    return PairTensors(torch.randint(5, V, (n, 6), generator=g), tgt)


def _models() -> tuple[Seq2Seq, LSTMLM]:
    torch.manual_seed(0)
    cfg = ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=0.5)
    return Seq2Seq(cfg), LSTMLM(cfg)


def test_nll_and_perplexity_are_per_word_with_eos_counted():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    scores = SeqOutput(torch.tensor([[-1.0, -2.0, 0.0], [-3.0, 0.0, 0.0]]), torch.zeros(2, 3, dtype=torch.long), mask)
    assert scoring.logp_total(scores) == (-6.0, 3)
    assert scoring.nll(*scoring.logp_total(scores)) == pytest.approx(2.0)
    assert scoring.perplexity(*scoring.logp_total(scores)) == pytest.approx(math.exp(2.0))
    assert scoring.perplexity(2 * math.log(1 / 4), 2) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        scoring.perplexity(0.0, 0)


def test_score_dataset_equals_a_direct_forward_for_both_kinds():
    data = _data()
    for model in _models():
        got = scoring.score_dataset(model, data, batch_size=3)          # eval mode inside, train mode after
        assert model.training
        model.eval()
        want = model(data.src, data.tgt) if isinstance(model, Seq2Seq) else model(data.tgt)
        assert got.token_logp.shape == (10, 6)
        torch.testing.assert_close(got.token_logp, want.token_logp.detach())
        assert torch.equal(got.mask, data.tgt[:, 1:] != PAD_ID)


def test_corpus_logp_sums_batch_by_batch_what_the_pooled_scores_sum_at_once():
    data = _data()
    for model in _models():
        logp, n = scoring.corpus_logp(model, *data, batch_size=3)
        assert model.training                                           # the mode is restored
        pooled, n_pooled = scoring.logp_total(scoring.score_dataset(model, data, batch_size=3))
        assert n == n_pooled == int((data.tgt[:, 1:] != PAD_ID).sum())
        assert logp == pytest.approx(pooled, rel=1e-12)
        each = [scoring.logp_total(scoring.score_dataset(model, PairTensors(s, t), 3))
                for s, t in zip(data.src.split(3), data.tgt.split(3))]
        assert logp == sum(x for x, _ in each)                          # exactly: the batch sums, added in order
        assert scoring.corpus_perplexity(model, *data, batch_size=3) == scoring.perplexity(logp, n)
