"""Unlikelihood training (Welleck et al. 2019), vocabulary-frequency variant, as a third comparison (Table 4 +UL).

Token-level unlikelihood (Welleck et al. 2019, eq. 4) penalizes candidate tokens c with -log(1 - p(c | y_<t, x)).
The variant here is the vocabulary-usage one of Li et al. 2020 ("Don't Say That!", §3.2; ParlAI
``SequenceVocabUnlikelihoodAgentTrait`` with ``--weighting kldiv``), stated precisely:

- for each training mini-batch the model's greedy responses y^ are decoded (eval mode);
- token counts of the greedy responses (p_gen) and of the batch's reference responses (p_hum) are kept over the last
  ``window`` mini-batches, the current one included (``</s>`` counted, ``<pad>`` not);
- the candidates are the tokens the model over-uses: p_gen(w) > p_hum(w) > 0, each weighted
  beta(w) = p_gen(w) * ln(p_gen(w) / p_hum(w)), kept when beta(w) > ``threshold``;
- the unlikelihood term is taken on the generated responses: at each position t of y^ whose token y^_t is a
  candidate, -beta(y^_t) log(1 - p(y^_t | y^_<t, x)), averaged over those positions;
- the loss is the per-token MLE of the references + ``alpha`` * the unlikelihood term, one SGD step per batch; only
  MLE runs until the window holds ``window`` mini-batches.

Optimiser: SGD at ``unlikelihood.lr`` (0.001, Algorithm 2's rate, so the comparison is at equal step size) with the
``train`` block's momentum, weight decay and clipping; batch size from ``datasets.<name>.frequent``.
Shapes: B batch, S source length, T target length, L decoded length.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from torch import Tensor, nn

from negtrain_core import checkpoint, decoding
from negtrain_core.config import Settings
from negtrain_core.device import resolve
from negtrain_core.data import batch_order
from negtrain_core.frequent import as_targets, load_pairs, mle_loss, sgd, update
from negtrain_core.io import write_csv
from negtrain_core.vocab import PAD_ID

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ULSettings:
    """Config block ``unlikelihood`` + the SGD settings of ``train`` + the batch size of the dataset."""

    alpha: float = 1.0
    lr: float = 0.001
    epochs: int = 1
    window: int = 32
    threshold: float = 1e-3
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-5
    clip_norm: float = 5.0
    max_len: int = 20
    seed: int = 1
    log_every: int = 200

    @classmethod
    def from_settings(cls, s: Settings) -> "ULSettings":
        u = s.raw_config["unlikelihood"]
        epochs = min(u["epochs"], s.frequent["epochs"]) if s.scale == "quick" else u["epochs"]
        return cls(u["alpha"], u["lr"], epochs, u["window"], u["threshold"],
                   s.frequent["batch_size"], s.train.finetune_momentum, s.train.weight_decay, s.train.clip_norm,
                   s.data.max_target_len, s.seed, s.train.log_every)


def token_counts(tokens: Tensor) -> Counter:
    """tokens: (B, L) ids -> counts of every non-pad id."""
    return Counter(tokens[tokens != PAD_ID].tolist())


class TokenHistory:
    """Generated and human token counts over the last ``size`` mini-batches."""

    def __init__(self, size: int):
        self.size = size
        self.batches: deque[tuple[Counter, Counter]] = deque()
        self.gen: Counter = Counter()
        self.hum: Counter = Counter()

    @property
    def full(self) -> bool:
        return len(self.batches) >= self.size

    def push(self, gen: Counter, hum: Counter) -> None:
        self.batches.append((gen, hum))
        self.gen.update(gen)
        self.hum.update(hum)
        if len(self.batches) > self.size:
            old_gen, old_hum = self.batches.popleft()
            self.gen.subtract(old_gen)
            self.hum.subtract(old_hum)
            self.gen, self.hum = +self.gen, +self.hum                          # drop zero counts


def vocab_penalties(gen: Counter, hum: Counter, threshold: float) -> dict[int, float]:
    """beta(w) = p_gen ln(p_gen / p_hum) for tokens with p_gen > p_hum > 0 and beta > threshold."""
    g_total, h_total = sum(gen.values()), sum(hum.values())
    out = {}
    for w, c in gen.items():
        p_gen, p_hum = c / g_total, hum.get(w, 0) / h_total if h_total else 0.0
        if p_hum > 0 and p_gen > p_hum and p_gen * math.log(p_gen / p_hum) > threshold:
            out[w] = p_gen * math.log(p_gen / p_hum)
    return out


def penalty_weights(tgt: Tensor, penalties: dict[int, float]) -> Tensor:
    """tgt: (B, T) ``<s> y^ </s> <pad>..`` -> (B, T-1) beta of each scored position's token (0 if not a candidate)."""
    gold = tgt[:, 1:]
    weights = torch.zeros(gold.shape, dtype=torch.float, device=gold.device)
    for w, beta in penalties.items():
        weights = weights.masked_fill(gold == w, beta)
    return weights


def unlikelihood_loss(token_logp: Tensor, weights: Tensor) -> Tensor:
    """token_logp, weights: (B, T') -> sum(-w log(1 - p)) / number of positions with w > 0 (0 when none)."""
    one_minus_p = (1 - token_logp.exp()).clamp(min=1e-20)
    n = (weights > 0).sum()
    return (-(weights * one_minus_p.log())).sum() / n.clamp(min=1)


class ULStats(NamedTuple):
    mle: float
    ul: float
    candidates: int


def ul_step(model: nn.Module, opt: torch.optim.Optimizer, src: Tensor, tgt: Tensor, samples: Tensor,
            history: TokenHistory, cfg: ULSettings) -> ULStats:
    """One mini-batch: src (B, S), tgt (B, T) references, samples (B, L) the model's greedy responses."""
    history.push(token_counts(samples), token_counts(tgt[:, 1:]))
    model.train()
    loss = mle_loss(model, src, tgt)
    mle = float(loss.detach())
    penalties = vocab_penalties(history.gen, history.hum, cfg.threshold) if history.full else {}
    ul = torch.zeros((), device=src.device)
    if penalties:
        gen_tgt = as_targets(samples)
        ul = unlikelihood_loss(model(src, gen_tgt).token_logp, penalty_weights(gen_tgt, penalties))
        loss = loss + cfg.alpha * ul
    update(model, opt, loss, cfg.clip_norm)
    return ULStats(mle, float(ul.detach()), len(penalties))


def train_unlikelihood(model: nn.Module, train: tuple[Tensor, Tensor], cfg: ULSettings) -> pd.DataFrame:
    """Fine-tune ``model`` in place with MLE + alpha * vocabulary unlikelihood.

    Returns the curve: one row every ``log_every`` steps and at the end of each epoch (that step's losses).
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = sgd(model, cfg.lr, cfg.momentum, cfg.weight_decay)
    history, rows, step = TokenHistory(cfg.window), [], 0
    for epoch in range(1, cfg.epochs + 1):
        order = batch_order(len(train[0]), cfg.batch_size, shuffle=True, generator=gen)
        for i, idx in enumerate(order):
            idx = idx.to(train[0].device)
            src, tgt = train[0][idx], train[1][idx]
            samples = decoding.greedy(model, src, max_len=cfg.max_len)         # eval mode, no gradients
            stats = ul_step(model, opt, src, tgt, samples, history, cfg)
            step += 1
            if step % cfg.log_every == 0 or i == len(order) - 1:
                rows.append({"epoch": epoch, "step": step, **stats._asdict()})
                log.info("epoch %d step %d: MLE %.4f, UL %.4f, %d candidate tokens", epoch, step, *stats)
    return pd.DataFrame(rows, columns=["epoch", "step", "mle", "ul", "candidates"])


def run(seq2seq_path: str | Path, train_path: str | Path, s: Settings, ckpt_out: str | Path,
        curve_out: str | Path) -> pd.DataFrame:
    """Rule train_unlikelihood: fine-tune the baseline with vocabulary unlikelihood; checkpoint and curve."""
    torch.manual_seed(s.seed)
    dev = resolve(s.device)
    base = checkpoint.load(seq2seq_path, device=dev)
    cfg = ULSettings.from_settings(s)
    train = load_pairs(train_path, base.vocab, s.data, dev)
    log.info("unlikelihood training on %d pairs: %s", len(train), cfg)
    curve = train_unlikelihood(base.model, train, cfg)
    checkpoint.save(ckpt_out, base.model, kind="seq2seq", vocab=base.vocab,
                    extra={"stage": "train_unlikelihood", "alpha": cfg.alpha, "base": str(seq2seq_path)})
    write_csv(curve.assign(dataset=s.data.name, scale=s.scale), curve_out)
    return curve
