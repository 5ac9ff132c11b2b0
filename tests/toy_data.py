"""Small fixed inputs shared by the unit tests of several modules: a padded seq2seq batch, the planted-trigger task
of the search tests, and Algorithm 1's two-target pair."""

from __future__ import annotations

import itertools

import torch

from negtrain_core.config import NegTrainSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID
from negtrain_core.search import gibbs_enum as S


def padded_batch(vocab_size: int, b: int = 3, s: int = 5, t: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Random src (b, s) ending in ``<eou>`` and tgt (b, t) starting with ``<s>``; row 0 has a left-padded source
    and a short, right-padded target."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(5, vocab_size, (b, s), generator=g)
    src[:, -1] = EOU_ID
    src[0, :2] = PAD_ID                                       # a left-padded source
    tgt = torch.randint(5, vocab_size, (b, t), generator=g)
    tgt[:, 0] = BOS_ID
    tgt[0, 3], tgt[0, 4:] = EOS_ID, PAD_ID                    # a short target, right-padded
    tgt[1:, -1] = EOS_ID
    return src, tgt


def fit_planted(s2s: torch.nn.Module, lr: float, steps: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Train ``s2s`` (vocabulary 10) with Adam so that trigger (7, 9) alone says '8 9 5', every other two-word
    trigger over ids 5-9 '5 6' -> (the model in eval mode, the 25 triggers laid out as sources, both targets)."""
    free = torch.tensor(list(itertools.product(range(5, 10), repeat=2)))           # all 25 triggers
    planted = (free == torch.tensor([7, 9])).all(1)
    a, b = torch.tensor([2, 5, 6, 0, 3]), torch.tensor([2, 8, 9, 5, 0])
    src, tgt = S.layout(free, 3), torch.where(planted[:, None], b, a)
    weight = torch.where(planted, 10.0, 1.0)
    opt = torch.optim.Adam(s2s.parameters(), lr=lr)
    for _ in range(steps):
        loss = -(s2s(src, tgt).token_logp.sum(1) * weight).sum() / weight.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return s2s.eval(), src, torch.stack([a, b])


def alg1_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two triggers (one left-padded) and two targets (one right-padded) for Algorithm 1's unit tests."""
    trig = torch.tensor([[PAD_ID, 5, 6, 7, EOU_ID], [8, 9, 10, 11, EOU_ID]])
    tgt = torch.tensor([[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 7, 8, 9, EOS_ID]])
    return trig, tgt


def alg1_settings(**kw) -> NegTrainSettings:
    """Algorithm 1's settings for those tests: one batch of both targets, one epoch, 5 rounds, plain SGD."""
    base = dict(hit_type="avg", batch_targets=2, epochs=1, max_rounds=5, lr_neg=0.5, lr_pos=0.1, momentum=0.0,
                pos_batch=2)
    return NegTrainSettings(**{**base, **kw})
