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
A step's UL bookkeeping stays on the device (no host sync, a fixed number of kernels): counts are scatter-adds into
(V,) tensors, the window a ring buffer of them, beta a dense (V,) tensor; the curve's statistics are read back
only when logged.
Shapes: B batch, S source length, T target length, L decoded length, V vocabulary (the model's output size).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from torch import Tensor, nn

from negtrain_core.models import checkpoint, decoding
from negtrain_core.config import Settings, ULSettings
from negtrain_core.device import resolve
from negtrain_core.data.tensors import batch_order, load_pairs
from negtrain_core.models.steps import Sgd, as_targets, mle_loss
from negtrain_core.io import write_csv
from negtrain_core.data.vocab import PAD_ID

log = logging.getLogger(__name__)


def token_counts(tokens: Tensor, vocab_size: int) -> Tensor:
    """tokens: (B, L) ids -> (V,) counts of every non-pad id, on ``tokens``' device.

    A scatter-add rather than ``torch.bincount``, whose CUDA version reads the ids' min and max back to the host.
    """
    ids = tokens.reshape(-1)
    counts = torch.zeros(vocab_size, dtype=torch.long, device=tokens.device)
    return counts.scatter_add_(0, ids, (ids != PAD_ID).long())


class TokenHistory:
    """Generated and human token counts (V,) over the last ``size`` mini-batches, kept on the device.

    Each batch's counts sit in a ring buffer (size, V); the running sums ``gen`` and ``hum`` add the new batch and
    subtract the row it overwrites (zeros until the window has been filled once).
    """

    def __init__(self, size: int, vocab_size: int, device: torch.device | str | None = None):
        if size < 1:
            raise ValueError(f"unlikelihood.window must be >= 1, got {size}")
        self.size, self.pushed = size, 0
        self.gen = torch.zeros(vocab_size, dtype=torch.long, device=device)
        self.hum = torch.zeros_like(self.gen)
        self._gen_rows = torch.zeros((size, vocab_size), dtype=torch.long, device=device)
        self._hum_rows = torch.zeros_like(self._gen_rows)

    @property
    def full(self) -> bool:
        return self.pushed >= self.size

    def push(self, gen: Tensor, hum: Tensor) -> None:
        """gen, hum: (V,) counts of one mini-batch; evicts the batch pushed ``size`` pushes ago."""
        slot = self.pushed % self.size
        for total, rows, new in ((self.gen, self._gen_rows, gen), (self.hum, self._hum_rows, hum)):
            total += new - rows[slot]
            rows[slot] = new
        self.pushed += 1


def vocab_penalties(gen: Tensor, hum: Tensor, threshold: float) -> Tensor:
    """gen, hum: (V,) counts -> (V,) float64 beta(w) = p_gen ln(p_gen / p_hum) where p_gen > p_hum > 0 and
    beta > threshold, 0 elsewhere (so the candidates are exactly the tokens with beta > 0)."""
    p_gen = gen.double() / gen.sum().clamp(min=1)
    p_hum = hum.double() / hum.sum().clamp(min=1)
    over = (p_hum > 0) & (p_gen > p_hum)
    beta = p_gen * torch.where(over, p_gen / p_hum, 1.0).log()                # 0 off ``over``
    return beta.where(over & (beta > threshold), 0.0)


def penalty_weights(tgt: Tensor, beta: Tensor) -> Tensor:
    """tgt: (B, T) ``<s> y^ </s> <pad>..``, beta: (V,) -> (B, T-1) float beta of each scored position's token
    (0 on padding and on non-candidates)."""
    gold = tgt[:, 1:]
    return beta[gold].float().masked_fill(gold == PAD_ID, 0.0)


def unlikelihood_loss(token_logp: Tensor, weights: Tensor) -> Tensor:
    """token_logp, weights: (B, T') -> sum(-w log(1 - p)) / number of positions with w > 0 (0 when none)."""
    one_minus_p = (1 - token_logp.exp()).clamp(min=1e-20)
    n = (weights > 0).sum()
    return (-(weights * one_minus_p.log())).sum() / n.clamp(min=1)


class ULStats(NamedTuple):
    """One step's statistics as 0-d device tensors (no host sync); ``row`` reads them back."""

    mle: Tensor
    ul: Tensor
    candidates: Tensor

    def row(self) -> dict[str, float | int]:
        """The statistics as Python numbers, with one device-to-host copy."""
        mle, ul, candidates = torch.stack([self.mle.float(), self.ul.float(), self.candidates.float()]).tolist()
        return {"mle": mle, "ul": ul, "candidates": int(candidates)}



def ul_step(model: nn.Module, opt: Sgd, src: Tensor, tgt: Tensor, samples: Tensor, history: TokenHistory,
            cfg: ULSettings) -> ULStats:
    """One mini-batch: src (B, S), tgt (B, T) references, samples (B, L) the model's greedy responses.

    Once the history is full the generated responses are scored every step; with no candidate token their
    weights are all 0 and so is the UL term (no data-dependent branch, hence no host sync).
    """
    V = history.gen.numel()
    history.push(token_counts(samples, V), token_counts(tgt[:, 1:], V))
    model.train()
    loss = mle_loss(model(src, tgt))
    mle = loss.detach()
    ul = torch.zeros((), device=src.device)
    candidates = torch.zeros((), dtype=torch.long, device=src.device)
    if history.full:
        beta = vocab_penalties(history.gen, history.hum, cfg.threshold)
        candidates = (beta > 0).sum()
        gen_tgt = as_targets(samples)
        ul = unlikelihood_loss(model(src, gen_tgt).token_logp, penalty_weights(gen_tgt, beta))
        loss = loss + cfg.alpha * ul
    opt.update(loss)
    return ULStats(mle, ul.detach(), candidates)


def train_unlikelihood(model: nn.Module, train: tuple[Tensor, Tensor], cfg: ULSettings) -> pd.DataFrame:
    """Fine-tune ``model`` in place with MLE + alpha * vocabulary unlikelihood.

    Returns the curve: one row every ``log_every`` steps and at the end of each epoch (that step's losses); the
    statistics are read back to the host only for those rows.
    """
    device = train[0].device
    gen = torch.Generator().manual_seed(cfg.seed)
    # torch.optim.SGD's arithmetic: the one the comparison's results were made with
    opt = Sgd(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
              clip_norm=cfg.clip_norm, arithmetic="torch")
    history, rows, step = TokenHistory(cfg.window, model.vocab_size, device), [], 0
    for epoch in range(1, cfg.epochs + 1):
        order = batch_order(len(train[0]), cfg.batch_size, shuffle=True, generator=gen, device=device)
        for i, idx in enumerate(order):
            src, tgt = train[0][idx], train[1][idx]
            samples = decoding.greedy(model, src, max_len=cfg.max_len)         # eval mode, no gradients
            stats = ul_step(model, opt, src, tgt, samples, history, cfg)
            step += 1
            if step % cfg.log_every == 0 or i == len(order) - 1:
                row = stats.row()
                rows.append({"epoch": epoch, "step": step, **row})
                log.info("epoch %d step %d: MLE %.4f, UL %.4f, %d candidate tokens", epoch, step, *row.values())
    return pd.DataFrame(rows, columns=["epoch", "step", "mle", "ul", "candidates"])


def run(seq2seq_path: str | Path, train_path: str | Path, ckpt_out: str | Path, curve_out: str | Path,
        s: Settings) -> pd.DataFrame:
    """Rule train_unlikelihood: fine-tune the baseline with vocabulary unlikelihood; checkpoint and curve."""
    torch.manual_seed(s.seed)
    dev = resolve(s.device, s.gpu_jobs_per_device)
    base = checkpoint.load(seq2seq_path, device=dev, arch=s.model.arch, kind="seq2seq")
    cfg = s.unlikelihood
    train = load_pairs(train_path, base.vocab, s.data, dev, cfg.max_train_pairs)
    log.info("unlikelihood training on %d pairs: %s", len(train), cfg)
    curve = train_unlikelihood(base.model, train, cfg)
    checkpoint.save(ckpt_out, base.model, kind="seq2seq", vocab=base.vocab,
                    extra={"stage": "train_unlikelihood", "alpha": cfg.alpha, "base": str(seq2seq_path)})
    write_csv(curve.assign(dataset=s.data.name, scale=s.scale), curve_out)
    return curve
