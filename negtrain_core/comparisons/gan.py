"""The GAN comparison of He & Glass (2020), §4.3 eq. (6) and Appendix E.

Discriminator D(x, y) (Appendix E, after Yu et al. 2016 and Kim 2014): tokens -> embedding (the one-hot linear map
of Section 2, ``models.layers.OneHotEmbedding``); a 1D convolution with ``filters`` filters of each width in
``filter_widths`` (3/4/5/6), ReLU, max-over-time pooling; the SAME network ("the same network forward pass is also
applied for y") encodes x and y; [x_rep; y_rep] goes through a linear map to ``highway_hidden`` units and
``highway_layers`` highway layers (Srivastava et al. 2015) of that size, then a linear output and a sigmoid.
The authors' release (``CNN_KIM_TWOINPUT_D``, docs/release.md#gan) departs from this in five ways, each an option
that is off by default: a convolution bank of y's own (``separate_convs``), dropout on [x_rep; y_rep]
(``dropout``), highway gate biases starting at -2 (``gate_bias``) and right-aligned responses (``align: right``,
its ``sen_left2right``), and highway layers acting on the 2,400-d concatenation itself, with no linear map before
them (``projection: false``).

Training (Appendix E): the generator G is the baseline seq2seq. D and G alternate ``d_steps``:``g_steps`` (3:1)
over the training mini-batches: a D step is one binary cross-entropy step (real (x, y_ref) = 1, sampled
(x, y ~ G(.|x)) = 0) at ``d_lr`` (0.01) with ``d_optimizer`` (Adam by default: the paper names only the lr, and
the SeqGAN discriminator it follows is trained with Adam; SGD with momentum at 0.01 stayed at chance accuracy for 90
quick-scale steps, Adam reached 0.77); a G step is the log-derivative trick of eq. (11)-(12),
loss = mean_b log(1 - D(x, y_b)) * log G(y_b | x) over samples y_b ~ G(.|x) (the reward detached), followed, with
``positive_training``, by one teacher-forced MLE step on the batch ("crucial", Appendix E). Generator lr: each of
``g_lrs`` is trained and the one with the lowest validation max-ratio among runs whose validation perplexity stays
within ``select_ppl_tolerance`` of the baseline's is kept (the paper: "the best result is reported"; the tolerance
keeps a run that bought diversity by damaging the model from winning). Each lr is its own job (``run_one``): eager
training is bound by kernel launches on the CPU, so runs in separate processes share one GPU nearly in parallel;
``run_select`` then picks. A run seeds itself, so it gives what it would give after the others in one process.
Samples are drawn in eval mode (no dropout).
G's SGD uses the ``train`` block's momentum (0.9), weight decay and clipping, as all the release's optimisers do;
D's optimiser takes ``d_weight_decay`` (0; the release's SGD has 1e-5), and with ``d_optimizer: sgd`` the momentum and
clipping. Sampled responses are padded to the references' width, so D cannot tell them apart by padding. D is not
pre-trained (the paper does not say it is; the release's 2,001 pre-training steps run only with a positive D ratio,
0 by default).

Shapes: B batch, S source length, L response length (no ``<s>``; ``</s>`` then ``<pad>``), E embedding, F filters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negtrain_core.models import checkpoint, decoding
from negtrain_core.evaluate import metrics
from negtrain_core.config import GanSettings, Settings, format_lr
from negtrain_core.device import resolve
from negtrain_core.data.tensors import batch_order, load_pairs
from negtrain_core.models.steps import OptimizerStep, Sgd, as_targets, mle_loss
from negtrain_core.io import atomic_copy, write_csv
from negtrain_core.models.interface import Seq2SeqModel, fresh_copy
from negtrain_core.models.layers import OneHotEmbedding
from negtrain_core.models.scoring import corpus_perplexity
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab

log = logging.getLogger(__name__)


class Highway(nn.Module):
    """y = t * relu(W_h x) + (1 - t) * x,  t = sigmoid(W_t x)  (Srivastava et al. 2015). x: (B, D) -> (B, D).
    ``gate_bias``: the gate's bias starts at this value (the release's ``HighwayMLP``: -2, so the layer starts
    close to carrying x through); None keeps PyTorch's default initialisation."""

    def __init__(self, dim: int, gate_bias: float | None = None):
        super().__init__()
        self.h = nn.Linear(dim, dim)
        self.t = nn.Linear(dim, dim)
        if gate_bias is not None:
            with torch.no_grad():
                self.t.bias.fill_(gate_bias)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.t(x))
        return gate * F.relu(self.h(x)) + (1 - gate) * x


def right_align(y: Tensor) -> Tensor:
    """The release's ``sen_left2right``: (B, L) responses in the decoded layout (``words </s> <pad>..``, or words to
    the end without ``</s>``) -> (B, L + 1) ``<pad>.. <s> words </s>``. Every row ends with ``</s>`` (a sample that
    ran out of length gets one); ``<s>`` precedes the words where the row has room (not for L words)."""
    batch, length = y.shape
    width = length + 1
    n = ((y != EOS_ID).long().cumprod(1) * (y != PAD_ID)).sum(1, keepdim=True)   # (B, 1) words before the </s>
    pos = torch.arange(width, device=y.device).expand(batch, width)        # (B, W)
    k = pos - (width - 1 - n)                                              # index into y of each output position
    words = torch.gather(y, 1, k.clamp(0, length - 1))
    out = torch.where((k >= 0) & (k < n), words, torch.full_like(words, PAD_ID))
    out = torch.where(pos == width - 1, torch.full_like(out, EOS_ID), out)
    return torch.where(pos == width - 2 - n, torch.full_like(out, BOS_ID), out)


class Discriminator(nn.Module):
    """CNN discriminator D(x, y) of Appendix E; ``forward`` returns logits (B,), D = sigmoid(logits).

    The release's choices (``CNN_KIM_TWOINPUT_D``), each off by default: ``separate_convs`` gives y a convolution
    bank of its own (the embedding stays shared); ``dropout`` acts on [x_rep; y_rep] before the linear map;
    ``gate_bias`` initialises every highway gate's bias; ``align="right"`` right-aligns y (``right_align``);
    ``projection=False`` drops the linear map, so the highway layers act on [x_rep; y_rep] itself."""

    def __init__(self, vocab_size: int, embedding_dim: int, filter_widths: tuple[int, ...] = (3, 4, 5, 6),
                 filters: int = 300, highway_layers: int = 3, highway_hidden: int = 2000, *,
                 separate_convs: bool = False, dropout: float = 0.0, gate_bias: float | None = None,
                 align: str = "left", projection: bool = True):
        super().__init__()
        if align not in ("left", "right"):
            raise ValueError(f"align must be left or right, not {align!r}")
        self.min_len = max(filter_widths)
        self.align = align
        self.embed = OneHotEmbedding(vocab_size, embedding_dim)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, filters, w) for w in filter_widths)
        self.y_convs = (nn.ModuleList(nn.Conv1d(embedding_dim, filters, w) for w in filter_widths)
                        if separate_convs else None)                  # None: y goes through x's bank
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        width = 2 * filters * len(filter_widths)                            # [x_rep; y_rep]
        self.proj = nn.Linear(width, highway_hidden) if projection else None   # None: highways on [x_rep; y_rep]
        hidden = highway_hidden if projection else width
        self.highways = nn.Sequential(*(Highway(hidden, gate_bias) for _ in range(highway_layers)))
        self.out = nn.Linear(hidden, 1)

    def features(self, tokens: Tensor, convs: nn.ModuleList | None = None) -> Tensor:
        """tokens: (B, L) ids or (B, L, V) one-hot -> (B, F * len(widths)) max-over-time features of ``convs``
        (x's bank by default)."""
        emb = self.embed(tokens)                                              # (B, L, E)
        if emb.size(1) < self.min_len:
            emb = torch.cat([emb, self.embed(torch.full((emb.size(0), self.min_len - emb.size(1)), PAD_ID,
                                                        dtype=torch.long, device=emb.device))], dim=1)
        emb = emb.transpose(1, 2)                                             # (B, E, L)
        bank = self.convs if convs is None else convs
        return torch.cat([F.relu(conv(emb)).amax(dim=2) for conv in bank], dim=1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, S) source, y: (B, L) response -> logits (B,)."""
        if self.align == "right":
            if y.dim() != 2:
                raise ValueError("align='right' takes responses as ids (B, L)")
            y = right_align(y)
        rep = torch.cat([self.features(x), self.features(y, self.y_convs)], dim=1)    # (B, 2 F len(widths))
        h = self.dropout(rep)
        if self.proj is not None:
            h = F.relu(self.proj(h))
        return self.out(self.highways(h)).squeeze(1)


def build_discriminator(vocab_size: int, embedding_dim: int, cfg: GanSettings) -> Discriminator:
    return Discriminator(vocab_size, embedding_dim, cfg.filter_widths, cfg.filters, cfg.highway_layers,
                         cfg.highway_hidden, separate_convs=cfg.separate_convs, dropout=cfg.dropout,
                         gate_bias=cfg.gate_bias, align=cfg.align, projection=cfg.projection)


def d_loss(disc: Discriminator, x: Tensor, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Binary cross-entropy of real (label 1) and fake (label 0) responses; returns (loss, accuracy), both 0-d
    tensors on the device (the accuracy detached)."""
    logits = torch.cat([disc(x, real), disc(x, fake)])                        # (2B,)
    labels = torch.cat([logits.new_ones(len(real)), logits.new_zeros(len(fake))])
    acc = ((logits.detach() > 0).float() == labels).float().mean()
    return F.binary_cross_entropy_with_logits(logits, labels), acc


def g_loss(model: Seq2SeqModel, disc: Discriminator, x: Tensor, samples: Tensor) -> Tensor:
    """Eq. (11): mean_b log(1 - D(x, y_b)) * log G(y_b | x), reward detached; samples: (B, L) drawn from G."""
    with torch.no_grad():
        reward = F.logsigmoid(-disc(x, samples))                              # log(1 - sigmoid(logit)), (B,)
    log_g = model(x, as_targets(samples)).token_logp.sum(1)                   # (B,)
    return (reward * log_g).mean()


def references(tgt: Tensor) -> Tensor:
    """tgt: (B, T) ``<s> y </s> <pad>..`` -> (B, T-1) responses in the decoded layout (no ``<s>``)."""
    return tgt[:, 1:]



class GanLrError(ValueError):
    """A generator lr that ``gan.g_lrs`` does not list (its row would mix settings into the sweep), in one line."""


class GanStats(NamedTuple):
    d_steps: int
    g_steps: int
    d_acc: float


def discriminator_step(disc: nn.Module, cfg: GanSettings) -> OptimizerStep | Sgd:
    """D's optimiser: Adam, or SGD with the ``train`` block's momentum (the release), at ``d_lr`` with
    ``d_weight_decay`` (the release's 1e-5; torch's L2 term in either) and clipping. torch.optim's arithmetic for both
    networks' steps: the one the comparison's results were made with."""
    if cfg.d_optimizer == "adam":
        adam = torch.optim.Adam(disc.parameters(), lr=cfg.d_lr, weight_decay=cfg.d_weight_decay)
        return OptimizerStep(adam, cfg.clip_norm)
    return Sgd(disc.parameters(), lr=cfg.d_lr, momentum=cfg.momentum, weight_decay=cfg.d_weight_decay,
               clip_norm=cfg.clip_norm, arithmetic="torch")


def train_gan(model: Seq2SeqModel, train: tuple[Tensor, Tensor], g_lr: float, cfg: GanSettings) -> GanStats:
    """Alternate D and G steps (``d_steps``:``g_steps``) over ``cfg.epochs`` passes of ``train``; G in place."""
    torch.manual_seed(cfg.seed)
    device = train[0].device
    disc = build_discriminator(model.vocab_size, model.embedding_dim, cfg).to(device)
    d_step = discriminator_step(disc, cfg)
    g_step = Sgd(model.parameters(), lr=g_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                 clip_norm=cfg.clip_norm, arithmetic="torch")
    gen = torch.Generator().manual_seed(cfg.seed)
    sample_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    d_steps = g_steps = 0
    acc = torch.zeros((), device=device)                                      # read back once, at the end
    for _ in range(cfg.epochs):
        for i, idx in enumerate(batch_order(len(train[0]), cfg.batch_size, shuffle=True, generator=gen, device=device)):
            src, tgt = train[0][idx], train[1][idx]
            samples = decoding.sample(model, src, max_len=cfg.max_len, generator=sample_gen)   # eval mode
            samples = decoding.pad_samples(samples, tgt.size(1) - 1)          # the references' width
            if i % (cfg.d_steps + cfg.g_steps) < cfg.d_steps:
                disc.train()
                loss, acc = d_loss(disc, src, references(tgt), samples)
                d_step.update(loss)
                d_steps += 1
                continue
            model.train()
            g_step.update(g_loss(model, disc, src, samples))
            if cfg.positive_training:
                g_step.update(mle_loss(model(src, tgt)))
            g_steps += 1
    d_acc = float(acc)
    log.info("GAN g_lr=%g: %d D steps, %d G steps, last D accuracy %.3f", g_lr, d_steps, g_steps, d_acc)
    return GanStats(d_steps, g_steps, d_acc)


def select(sweep: pd.DataFrame, tolerance: float) -> int:
    """Row index of the lowest validation max-ratio with valid PPL <= (1 + tolerance) * baseline; else lowest PPL."""
    ok = sweep[sweep["valid_ppl"] <= (1 + tolerance) * sweep["baseline_valid_ppl"]]
    if ok.empty:
        return int(sweep["valid_ppl"].idxmin())
    return int(ok.sort_values(["max_ratio", "valid_ppl"], kind="stable").index[0])


def validation_scores(model: Seq2SeqModel, valid: tuple[Tensor, Tensor], vocab: Vocab, max_len: int
                      ) -> dict[str, float]:
    """What the generator-lr pick reads of a model: validation PPL, and greedy max-ratio and Ent-2."""
    responses = decoding.greedy_responses(model, valid[0], vocab, max_len)
    return {"valid_ppl": corpus_perplexity(model, *valid), "max_ratio": metrics.max_ratio(responses),
            "ent2": metrics.entropy(responses, 2)}


def run_one(seq2seq_path: str | Path, train_path: str | Path, valid_path: str | Path, ckpt_out: str | Path,
            row_out: str | Path, s: Settings, g_lr: float | str) -> pd.DataFrame:
    """Rule train_gan_lr: one GAN run at generator lr ``g_lr`` (one of ``g_lrs``; a string as paths spell it) from
    the baseline; writes the checkpoint and its row of the sweep table (validation PPL, max-ratio, Ent-2; the
    baseline's validation PPL)."""
    cfg, g_lr = s.gan, float(g_lr)
    if g_lr not in cfg.g_lrs:
        raise GanLrError(f"GAN generator lr {format_lr(g_lr)} is not one of gan.g_lrs "
                         f"({', '.join(map(format_lr, cfg.g_lrs))}): add it there, or build models/gan.pt, which "
                         f"trains each configured lr")
    torch.manual_seed(s.seed)
    dev = resolve(s.device, s.gpu_jobs_per_device)
    base = checkpoint.load(seq2seq_path, device=dev, arch=s.model.arch, kind="seq2seq")
    train = load_pairs(train_path, base.vocab, s.data, dev, cfg.max_train_pairs)
    valid = load_pairs(valid_path, base.vocab, s.data, dev)
    log.info("GAN on %d training pairs: %s", len(train), cfg)
    base_ppl = corpus_perplexity(base.model, *valid)
    model = fresh_copy(base.model)                  # as the sequential sweep trained: cuDNN-packed LSTM weights
    stats = train_gan(model, train, g_lr, cfg)
    scores = validation_scores(model, valid, base.vocab, cfg.max_len)
    row = pd.DataFrame([{"g_lr": g_lr, "valid_ppl": scores["valid_ppl"], "baseline_valid_ppl": base_ppl,
                         "max_ratio": scores["max_ratio"], "ent2": scores["ent2"],
                         "d_acc": stats.d_acc, "d_steps": stats.d_steps, "g_steps": stats.g_steps,
                         "dataset": s.data.name, "scale": s.scale}])
    checkpoint.save(ckpt_out, model, kind="seq2seq", vocab=base.vocab,
                    extra={"stage": "train_gan", "g_lr": g_lr, "base": str(seq2seq_path)})
    write_csv(row, row_out)
    return row


def run_select(rows: Sequence[str | Path], ckpts: Sequence[str | Path], ckpt_out: str | Path, sweep_out: str | Path,
               s: Settings) -> pd.DataFrame:
    """Rule train_gan: the sweep table of ``run_one``'s rows (``g_lrs`` order, ``ckpts`` alike) with ``selected``
    marking the validation pick, whose checkpoint is copied to ``ckpt_out``."""
    cfg = s.gan
    table = pd.concat([pd.read_csv(r) for r in rows], ignore_index=True).drop(columns=["dataset", "scale"])
    best = select(table, cfg.select_ppl_tolerance)
    table["selected"] = table.index == best
    log.info("GAN generator-lr sweep:\n%s", table.to_string(index=False))
    atomic_copy(ckpts[best], ckpt_out)
    write_csv(table.assign(dataset=s.data.name, scale=s.scale), sweep_out)
    return table
