"""Negative training for the frequent response problem (He & Glass 2020, §3.3, §4.3, Algorithm 2).

Algorithm 2 (docs/release.md#algorithm-2): for each training mini-batch the
model's greedy responses are decoded; the frequency window is the greedy samples of the last ``window`` (200)
mini-batches, the current one included; a sample is negative when its exact string (``</s>`` included, so a sample
cut at the length limit differs from the same words ending in ``</s>``) has a ratio above ``r_thres`` in the
window; nothing is penalized until the window holds ``window`` mini-batches. A negative step lowers the negatives'
log-likelihood (the ``</s>`` position weighted ``eos_weight``, paper footnote 10), then a positive MLE step (scaled
by ``lambda_pos``) follows.

Two readings, a config choice each (defaults: the authors' release, seq2seq/neg_freq_posttrain_seq2seq.py, whose
runs gave the paper's Table 4):
- ``update_every_batch`` (release): both steps run on every mini-batch, the negative one with weight 0 on every
  sample when none is frequent. Off: the paper's Algorithm 2 listing, both updates inside the ``if``, positive on
  the same batch.
- ``negative_norm``: ``batch`` (release) divides the weighted log-likelihood by the length of all the batch's
  samples, ``negatives`` by the negative samples' length only.

More of the release's choices (docs/release.md#algorithm-2), each a config key whose default keeps the project's
reading:
- ``positive_batch`` (with ``update_every_batch``): ``stream`` (ours) takes the positive step on the next
  mini-batch of a separate stream of the training pairs, shuffled by its own generator; ``same`` on the mini-batch
  whose samples were just penalised, as the paper's listing and the release do (the release draws it from a second
  file-order generator over the same file, which stays aligned with the training pass).
- ``shuffle``: the training pass in a new random order each epoch (ours) or in file order (the release);
  ``drop_last_batch``: a pass's partial last mini-batch trained (ours) or skipped (the release's loader), the
  positive stream's too.
- ``window_reset_each_epoch``: the window persists across epochs (ours) or is emptied at each epoch's start (the
  release's window is local to its per-epoch function), so each epoch's first mini-batches have no negatives.
- ``first_negative_batch``: negatives from the mini-batch that fills the window (``full``, the ``window``-th) or
  from the next one (``after_full``, the release: its list of samples is only read once it exceeds ``window``
  mini-batches and has dropped the oldest). Both count over exactly ``window`` mini-batches, the current one
  included.

Optimiser: SGD, lr 0.001 (paper §4.3), momentum 0.9, weight decay and gradient-norm clipping from the ``train``
block, the norm over all parameters or (``clip_scope: per_module``, the release) over each module on its own: the
release uses SGD with momentum 0.9 for every optimiser it builds (baseline training and both steps of Algorithm 1),
so Algorithm 2 keeps it. As in Algorithm 1, negative and positive steps have separate optimisers
(their momentum buffers would otherwise mix the two directions); the release re-creates both every iteration
(``fresh_optimizers_each_epoch``).

Speed (the algorithm unchanged): with ``update_every_batch`` off the model only changes at a mini-batch with
negatives, so the greedy samples of the mini-batches up to and including the next such one can be decoded together,
in one batched call (``next_lookahead``, ``frequent.lookahead``); samples decoded past an update are discarded. With
it on, each mini-batch is decoded on its own, on a GPU by one CUDA graph (``decoding.GraphedGreedy``). Both updates
have fixed shapes and each runs as one CUDA graph on a GPU (``Updates``; ``train.cuda_graph``). The frequency window
lives on the device (``FrequencyWindow``: the samples of the last mini-batches as token rows; a sample's count is
the number of rows equal to it), so that a release-mode loop has no host synchronisation per mini-batch (with the
CUDA graphs; the eager greedy decode syncs to stop early) and the GPU runs ahead of Python: the negative counts are
read at log lines and at the end of an epoch only. The listing reading reads, once the window is full, whether each
mini-batch had negatives (to skip it otherwise). On a GPU a row decoded among more rows may differ from the row
decoded alone in the last floating-point bits (other GEMM kernels); on the CPU the lookahead gives the same training
run, weights included (tests/test_frequent.py). Several r_thres can run interleaved in one process
(``frequent.runs_per_job``, default 2), each on its own CUDA stream and random state (``FrequentRun``, ``RngSlot``):
a graphed run leaves most of the GPU idle, and separate processes share it only by time slices. Each interleaved run
gives, bit for bit, what it gives alone: on the CPU (tested), and on a GPU since each CUDA graph is captured on its
own stream (steps.GRAPH_WARMUP's note) and each run's graphs hold a CUDA generator state of their own (``RngSlot``).
Switchboard's two paper-scale runs, interleaved, reproduced the curves and test metrics of the same runs alone
exactly, in 1,230 s against about 1,850 s one after another (docs/reproduction/switchboard/README.md).
benchmarks/frequent_throughput.py and benchmarks/gpu_sharing.py measure the gains.

A killed job resumes after its last finished epoch (``StateFiles``: one ``<ckpt>.state`` per run, written after each
epoch) and ends as an uninterrupted one would (tests/test_frequent.py, on the CPU).

Greedy samples are decoded with the model in eval mode (the behaviour that max-ratio measures at test time); the
updates run in train mode (dropout on). Shapes: B batch, S source length, T target length ``<s> y </s> <pad>..``,
L decoded length.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import Tensor, nn

from negtrain_core import stage
from negtrain_core.models import checkpoint, decoding
from negtrain_core.evaluate import metrics
from negtrain_core.config import ConfigError, FrequentSettings, Settings
from negtrain_core.data.tensors import batch_order, load_pairs
from negtrain_core.device import resolve, tf32_matmul
from negtrain_core.models.steps import RngSlot, WeightedStep, mask_after_eos, PositiveBatches, with_bos
from negtrain_core.models.training import rng_state, scope_groups, set_rng_state
from negtrain_core.io import fingerprint, write_csv
from negtrain_core.models.interface import fresh_copy
from negtrain_core.models.scoring import corpus_perplexity
from negtrain_core.data.vocab import EOS_ID, PAD_ID, Vocab

log = logging.getLogger(__name__)


class FrequentAbort(RuntimeError):
    """Test perplexity passed ``ppl_abort``: the run is abandoned, as the release does."""


# ------------------------------------------------------------------------------------------ frequency window


class FrequencyWindow:
    """The greedy samples of the last ``size`` mini-batches, kept on the device: a ring of ``size`` slots of
    ``batch_size`` response rows (``response_rows``), so that ``push`` and ``flags`` need no host synchronisation.

    Slots not yet written, and the rows a short mini-batch (an epoch's last) leaves unused, hold -1, which no
    response row equals. The number of responses in the window (``total``) and whether it is ``full`` are known on
    the host from the mini-batch sizes.
    """

    def __init__(self, size: int, batch_size: int, max_len: int, device: torch.device | str | None = None,
                 first_negative_batch: str = "full"):
        self.size = size
        # pushes before any flag: the window full (``full``) or full after one eviction (``after_full``)
        self.first = size + (first_negative_batch == "after_full")
        self.rows = torch.full((size, batch_size, max_len), -1, dtype=torch.long, device=device)
        self.sizes: deque[int] = deque()
        self.pushed = 0
        self.total = 0

    @property
    def full(self) -> bool:
        """True once negatives may be flagged: ``size`` mini-batches pushed, or ``size + 1`` with
        ``first_negative_batch`` ``after_full`` (Algorithm 2 penalizes nothing before)."""
        return self.pushed >= self.first

    def clear(self) -> None:
        """Empty the window, in place (``window_reset_each_epoch``)."""
        self.rows.fill_(-1)
        self.sizes.clear()
        self.pushed = self.total = 0

    def push(self, rows: Tensor) -> None:
        """Add one mini-batch of response rows (b, max_len), b <= batch_size, in place of the oldest beyond
        ``size``."""
        slot = self.rows[self.pushed % self.size]
        slot.fill_(-1)
        slot[:len(rows)] = rows
        self.pushed += 1
        self.sizes.append(len(rows))
        self.total += len(rows)
        if len(self.sizes) > self.size:
            self.total -= self.sizes.popleft()

    def counts(self, rows: Tensor) -> Tensor:
        """rows (b, max_len) -> (b,) how many of the window's responses equal each row."""
        window = self.rows.view(1, -1, self.rows.shape[-1])                 # (1, size * batch_size, max_len)
        return (rows.unsqueeze(1) == window).all(-1).sum(1)

    def flags(self, rows: Tensor, r_thres: float) -> Tensor:
        """Which of ``rows`` (b, max_len) are negatives: a device bool (b,), ratio in the window (the rows already
        pushed) above ``r_thres``; none before the window is full. In float64, as Python's ``count / total``."""
        if not self.full:
            return torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        return self.counts(rows).to(torch.float64) / self.total > r_thres

    def state(self) -> dict[str, Any]:
        """The window's contents, for a resumable run."""
        return {"rows": self.rows.cpu(), "sizes": list(self.sizes), "pushed": self.pushed, "total": self.total}

    def load_state(self, state: dict[str, Any]) -> None:
        self.rows.copy_(state["rows"])
        self.sizes = deque(state["sizes"])
        self.pushed, self.total = state["pushed"], state["total"]

    def max_ratio(self) -> float:
        """The most frequent response's share of the window (a host synchronisation: for logging)."""
        if not self.total:
            return 0.0
        flat = self.rows.view(-1, self.rows.shape[-1])
        valid = flat[flat[:, 0] >= 0]                                         # the written rows
        return int(torch.unique(valid, dim=0, return_counts=True)[1].max()) / self.total


# ------------------------------------------------------------------------------------------------- the steps


def response_rows(samples: Tensor, max_len: int) -> Tensor:
    """samples: (B, L) decoded ids -> (B, max_len) canonical rows: padded to ``max_len``, ``<pad>`` after the
    first ``</s>``. Two samples are the same response (the exact string up to and including the first ``</s>``;
    greedy emits no ``<pad>`` before it) iff their rows are equal."""
    return mask_after_eos(decoding.pad_samples(samples, max_len))


def position_weights(tgt: Tensor, eos_weight: float, on_last_position: bool = False) -> Tensor:
    """tgt: (B, T) targets -> (B, T-1) weights of the scored positions ``tgt[:, 1:]``.

    1 on real tokens, 0 on padding, ``eos_weight`` on ``</s>``; with ``on_last_position`` (the release's quirk)
    ``eos_weight`` goes on each row's last real position instead, whether or not it is ``</s>``.
    """
    gold = tgt[:, 1:]
    real = (gold != PAD_ID).float()                                          # (B, T-1)
    if on_last_position:
        last = real.sum(1).long().clamp(min=1) - 1                           # (B,)
        is_down = torch.zeros_like(real).scatter_(1, last.unsqueeze(1), 1.0).bool()
    else:
        is_down = gold == EOS_ID
    return torch.where(is_down, torch.full_like(real, eos_weight), real) * real


class Updates:
    """Algorithm 2's two updates, each a ``WeightedStep`` with its own momentum buffers (the release's separate
    optimisers: the two directions' momenta would otherwise mix).

    Both take fixed shapes so that on a GPU each is one CUDA graph: the negative step runs on the whole batch with
    weight 0 on the rows that are not negatives (the same gradient as a step on the negative rows alone; only
    dropout masks are drawn for all rows), its samples padded to ``max_len``.
    """

    def __init__(self, model: nn.Module, cfg: FrequentSettings, batch_size: int, use_graph: bool):
        kw = dict(clip_norm=cfg.clip_norm, momentum=cfg.momentum, weight_decay=cfg.weight_decay, lr=cfg.lr,
                  batch_size=batch_size, use_graph=use_graph, clip_groups=scope_groups(model, cfg.clip_scope))
        self.model = model
        self.negative, self.positive = WeightedStep(model, **kw), WeightedStep(model, **kw)


class StepStats(NamedTuple):
    """negatives: how many samples of the batch were negatives, a 0-d device tensor (no host sync); neg_loss,
    pos_loss: 0-d tensors of the two steps' losses (None without update), valid until the next update: read them
    at once."""

    negatives: Tensor
    neg_loss: Tensor | None
    pos_loss: Tensor | None


def frequent_step(updates: Updates, src: Tensor, tgt: Tensor, samples: Tensor, window: FrequencyWindow,
                  cfg: FrequentSettings, positive: tuple[Tensor, Tensor] | None = None) -> StepStats:
    """One mini-batch of Algorithm 2 given its greedy ``samples`` (B, L).

    src (B, S), tgt (B, T): the training pairs; ``positive``: the pairs of the positive step (default the same
    batch). With ``cfg.update_every_batch`` both steps run whatever the flags (the negative one with all weights 0
    when nothing is frequent: only its momentum and weight decay move the weights, as in the release), with no host
    synchronisation: the flags stay on the device. Otherwise a batch without negatives changes nothing, which the
    host learns from one synchronisation (once the window is full).
    """
    rows = response_rows(samples, cfg.max_len)                              # (B, max_len)
    window.push(rows)
    flags = window.flags(rows, cfg.r_thres)                                 # (B,) device bool
    negatives = flags.sum()
    if not cfg.update_every_batch and not (window.full and bool(flags.any())):
        return StepStats(negatives, None, None)
    updates.model.train()
    is_neg = flags.unsqueeze(1)                                              # (B, 1)
    neg_tgt = with_bos(rows)                                                 # (B, max_len + 1)
    real_neg = neg_tgt[:, 1:] != PAD_ID
    weights = position_weights(neg_tgt, cfg.eos_weight, cfg.eos_weight_on_last_position) * is_neg
    norm = real_neg.sum() if cfg.negative_norm == "batch" else (real_neg & is_neg).sum()
    neg = updates.negative(src, neg_tgt, weights, norm)
    pos_src, pos_tgt = positive if positive is not None else (src, tgt)
    real = (pos_tgt[:, 1:] != PAD_ID).float()
    pos = updates.positive(pos_src, pos_tgt, -cfg.lambda_pos * real, real.sum())
    return StepStats(negatives, neg, pos)


# ---------------------------------------------------------------------------------------------- Algorithm 2


def _epoch_row(model: nn.Module, epoch: int, test: tuple[Tensor, Tensor], vocab: Vocab, cfg: FrequentSettings,
               counters: dict[str, float]) -> dict[str, float]:
    """One curve row: test PPL and the diversity of the greedy test responses after ``epoch`` epochs."""
    ppl = corpus_perplexity(model, *test, cfg.eval_batch_size)
    responses = decoding.greedy_responses(model, test[0], vocab, cfg.max_len, cfg.eval_batch_size)
    return {"epoch": epoch, **counters, "test_ppl": ppl, "test_max_ratio": metrics.max_ratio(responses),
            "test_ent2": metrics.entropy(responses, 2), "test_ent3": metrics.entropy(responses, 3),
            "top_response": metrics.most_frequent(responses)[0]}


def _check_ppl(row: dict[str, float], cfg: FrequentSettings) -> None:
    if row["test_ppl"] > cfg.ppl_abort:
        raise FrequentAbort(f"frequent negative training (r_thres={cfg.r_thres:g}) aborted after epoch "
                            f"{row['epoch']}: test PPL {row['test_ppl']:.2f} > frequent.ppl_abort {cfg.ppl_abort:g}")


def next_lookahead(used: int, limit: int) -> int:
    """How many mini-batches to greedy-decode in the next call, after ``used`` of the last block were consumed.

    A block of k mini-batches is decoded in one call; its samples stay valid for as long as the model does not
    change, i.e. up to the first mini-batch with negatives, whose update makes the rest of the block stale (they are
    decoded again). So k doubles after a block used whole and restarts at twice the mini-batches used otherwise,
    at most ``limit`` (``frequent.lookahead``; 1 decodes each mini-batch on its own, as the release does).
    """
    return max(1, min(limit, 2 * used))


def _counts(host: dict[str, int], device: dict[str, Tensor]) -> dict[str, int]:
    """The curve's counters in its column order, the device ones read (a host synchronisation)."""
    return {"steps": host["steps"], "negative_steps": int(device["negative_steps"]),
            "negatives": int(device["negatives"]), "decodes": host["decodes"]}


class FrequentRun:
    """One run of Algorithm 2 on ``model`` (in place): its updates, decoder, frequency window, data order, counters
    and curve. ``epoch`` yields after each mini-batch, so that ``train_frequent`` can interleave several runs.

    With ``own_stream`` (several runs on one GPU) the run's work goes to its own CUDA stream and its random draws
    to its own ``RngSlot``: the runs' kernels overlap on the GPU, and each run computes exactly what it computes
    alone (the same kernels on the same inputs in the same order).
    """

    def __init__(self, model: nn.Module, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], vocab: Vocab,
                 cfg: FrequentSettings, log_every: int, own_stream: bool = False):
        self.model, self.train, self.test, self.vocab = model, train, test, vocab
        self.cfg, self.log_every = cfg, log_every
        device = train[0].device
        self.stream = torch.cuda.Stream(device) if own_stream and device.type == "cuda" else None
        self.rng = RngSlot(device) if own_stream else None
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(device))      # the weights and data loaded before
        self.gen = torch.Generator().manual_seed(cfg.seed)
        use_graph = cfg.cuda_graph and device.type == "cuda"
        self.updates = Updates(model, cfg, cfg.batch_size, use_graph)
        self.decode_one = decoding.GraphedGreedy(model, cfg.max_len) if use_graph else None
        # positive_batch "stream": a separate stream of positive mini-batches, shuffled by its own generator; None:
        # the positive step takes the batch itself
        self.pos_stream = (PositiveBatches(*train, cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 1),
                                           full_only=cfg.drop_last_batch)
                           if cfg.update_every_batch and cfg.positive_batch == "stream" else None)
        self.lookahead = 1 if cfg.update_every_batch else cfg.lookahead     # the model changes at every batch
        self.window = FrequencyWindow(cfg.window, cfg.batch_size, cfg.max_len, device, cfg.first_negative_batch)
        self.counters = {"steps": 0, "decodes": 0}                          # host ints
        zero = torch.zeros((), dtype=torch.long, device=device)
        self.device_counters = {"negative_steps": zero.clone(), "negatives": zero.clone()}  # read at epoch ends
        self.curve: list[dict[str, float]] = []
        self.started = 0.0

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The run's stream and random state, when it has its own (else nothing changes)."""
        with contextlib.ExitStack() as stack:
            if self.stream is not None:
                stack.enter_context(torch.cuda.stream(self.stream))
            if self.rng is not None:
                stack.enter_context(self.rng.active())
            yield

    def evaluate(self, epoch: int) -> None:
        """Append the curve row after ``epoch`` epochs (0: before training); after training, raise
        ``FrequentAbort`` past ``ppl_abort``. Reads the device counters: waits for the run's queued GPU work."""
        counts = _counts(self.counters, self.device_counters)
        seconds = time.perf_counter() - self.started if epoch else 0.0
        row = _epoch_row(self.model, epoch, self.test, self.vocab, self.cfg, {**counts, "seconds": seconds})
        if epoch:
            log.info("r_thres %g epoch %d (%.1f s, %d decodes, %d negative batches): test PPL %.2f, max-ratio %.4f "
                     "('%s'), Ent-2 %.3f, Ent-3 %.3f", self.cfg.r_thres, epoch, seconds, row["decodes"],
                     row["negative_steps"], row["test_ppl"], row["test_max_ratio"], row["top_response"],
                     row["test_ent2"], row["test_ent3"])
        self.curve.append(row)
        if epoch:
            _check_ppl(row, self.cfg)

    def state(self) -> dict[str, Any]:
        """Everything the run's next epochs depend on besides the weights: the curve, counters, momentum buffers,
        window, data order, positive stream and random states (tensors and primitives, weights_only-safe). Reads
        the device: call between epochs."""
        return {"curve": self.curve, "counters": dict(self.counters),
                "device_counters": {k: int(v) for k, v in self.device_counters.items()},
                # momentum buffers are zeroed at each epoch's start with fresh_optimizers_each_epoch: not kept
                "bufs": None if self.cfg.fresh_optimizers_each_epoch else
                {"negative": [b.cpu() for b in self.updates.negative.bufs],
                 "positive": [b.cpu() for b in self.updates.positive.bufs]},
                "window": self.window.state(), "rng": rng_state(self.gen),
                "slot": self.rng.state() if self.rng is not None else None,
                "positive": self.pos_stream.state() if self.pos_stream is not None else None}

    def load_state(self, model_state: dict[str, Tensor], state: dict[str, Any]) -> None:
        """Return the run to what ``state`` (and the weights ``model_state``) recorded. Outside ``active``: that
        would put the global random state back into the run's slot on leaving."""
        self.model.load_state_dict(model_state)
        if state["bufs"] is not None:
            with torch.no_grad():
                for step, bufs in ((self.updates.negative, state["bufs"]["negative"]),
                                   (self.updates.positive, state["bufs"]["positive"])):
                    torch._foreach_copy_(step.bufs, [b.to(step.bufs[0].device) for b in bufs])
        self.window.load_state(state["window"])
        set_rng_state(state["rng"], self.gen)
        if self.rng is not None:
            self.rng.load_state(state["slot"])
        if self.pos_stream is not None:
            self.pos_stream.load_state(state["positive"])
        self.counters = dict(state["counters"])
        for k, v in state["device_counters"].items():
            self.device_counters[k].fill_(v)
        self.curve = list(state["curve"])
        if self.stream is not None:                  # the copies above ran on the current stream
            self.stream.wait_stream(torch.cuda.current_stream(self.stream.device))

    def epoch(self, epoch: int) -> Iterator[None]:
        """One pass over the training data; yields after each mini-batch's update."""
        cfg, train, updates, window = self.cfg, self.train, self.updates, self.window
        self.started = time.perf_counter()
        if cfg.fresh_optimizers_each_epoch:                                  # the release re-creates both SGDs
            for step in (updates.negative, updates.positive):
                step.reset()
        if cfg.window_reset_each_epoch:
            window.clear()
        order = batch_order(len(train[0]), cfg.batch_size, shuffle=cfg.shuffle, generator=self.gen,
                            device=train[0].device, drop_last=cfg.drop_last_batch)
        i, k = 0, 1
        while i < len(order):
            block = order[i:i + k]
            src_block = train[0][torch.cat(block)]
            if self.decode_one is not None and len(block) == 1:
                samples = self.decode_one(src_block)
            else:
                samples = decoding.greedy(self.model, src_block, max_len=cfg.max_len)
            self.counters["decodes"] += 1
            used, offset = 0, 0
            for b in block:
                rows_b = slice(offset, offset + len(b))
                pos = next(self.pos_stream) if self.pos_stream is not None else None
                stats = frequent_step(updates, train[0][b], train[1][b], samples[rows_b], window, cfg, pos)
                used, offset = used + 1, offset + len(b)
                self.counters["steps"] += 1
                self.device_counters["negative_steps"] += stats.negatives > 0
                self.device_counters["negatives"] += stats.negatives
                if self.counters["steps"] % self.log_every == 0:
                    log.info("r_thres %g epoch %d step %d: window max-ratio %.4f, %d negatives (neg %.4f, pos %.4f), "
                             "%d decodes", cfg.r_thres, epoch, self.counters["steps"], window.max_ratio(),
                             int(stats.negatives), float(stats.neg_loss) if stats.neg_loss is not None else 0.0,
                             float(stats.pos_loss) if stats.pos_loss is not None else 0.0, self.counters["decodes"])
                yield
                if stats.neg_loss is not None:
                    break                                                    # the model changed: decode anew
            i, k = i + used, next_lookahead(used, self.lookahead)


class StateFiles:
    """The resumable states of a job's runs, one ``<ckpt>.state`` beside each run's checkpoint, written after each
    epoch (atomically, each a checkpoint file: the weights, ``FrequentRun.state`` and ``fingerprint``). A job
    resumes only when every run has a state of the same epoch and fingerprint; otherwise it starts afresh (one line
    says why when a state was there)."""

    def __init__(self, ckpt_paths: list[str | Path], fingerprint: str, vocab: Vocab):
        self.paths = [Path(p).with_name(Path(p).name + ".state") for p in ckpt_paths]
        self.fingerprint, self.vocab = fingerprint, vocab

    def save(self, runs: list[FrequentRun], epoch: int) -> None:
        for run, path in zip(runs, self.paths):
            checkpoint.save(path, run.model, kind="seq2seq", vocab=self.vocab, epoch=epoch,
                            extra={"fingerprint": self.fingerprint, "run": run.state()})

    def load(self, runs: list[FrequentRun]) -> int:
        """The epochs the states hold, with every run restored; 0 (nothing restored) when they cannot resume."""
        if not any(p.is_file() for p in self.paths):
            return 0
        payloads = [checkpoint.read(p) if p.is_file() else None for p in self.paths]
        if any(p is None or p["extra"].get("fingerprint") != self.fingerprint for p in payloads):
            stage.say(f"{self.paths[0]}: not every run of the job has a state of these settings and inputs; "
                      f"starting afresh")
            return 0
        if len({p["epoch"] for p in payloads}) != 1:
            stage.say(f"{self.paths[0]}: the job's runs stopped after different epochs; starting afresh")
            return 0
        for run, p in zip(runs, payloads):
            run.load_state(p["model_state"], p["extra"]["run"])
        others = " (and the job's other runs from theirs)" if len(runs) > 1 else ""
        stage.say(f"resuming from {self.paths[0]}{others} after epoch {payloads[0]['epoch']}")
        return int(payloads[0]["epoch"])

    def remove(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def weight_grads(models: list[nn.Module], cfgs: list[FrequentSettings]) -> Iterator[None]:
    """Each model's release decoder sums its weight gradients over the steps as its run's ``weight_grads`` says
    (``Seq2Seq.release_weight_grads``, models/step_grads.py), for this block only; ``per_step`` leaves a model as it
    is. ``deferred`` on a model without that decoder raises ValueError (one line)."""
    changed = []
    try:
        for model, cfg in zip(models, cfgs):
            if cfg.weight_grads == "per_step":
                continue
            if not hasattr(model, "release_weight_grads") or model.cfg.attention != "release":
                raise ValueError(f"frequent.weight_grads: {cfg.weight_grads!r} needs the release's LSTM decoder "
                                 f"(model.attention: release), not a {type(model).__name__}")
            model.release_weight_grads = cfg.weight_grads            # the instance's, over the class default
            changed.append(model)
        yield
    finally:
        for model in changed:
            del model.release_weight_grads                           # the class default again


def train_frequent(models: list[nn.Module], train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                   vocab: Vocab, cfgs: list[FrequentSettings], log_every: int = 200,
                   states: StateFiles | None = None) -> list[pd.DataFrame]:
    """Run Algorithm 2 on each of ``models`` in place, with the settings ``cfgs`` alike; return their per-epoch
    curves (epoch 0 = before training).

    train/test: (src (N, S), tgt (N, T)) on the models' device. Each mini-batch's greedy samples come from the
    model as it is when the mini-batch is reached (see ``next_lookahead`` for how several are decoded in one
    call). Raises ``FrequentAbort`` (one line) when a test perplexity after an epoch exceeds ``cfg.ppl_abort``.

    Several runs (several r_thres on the same data, the same number of epochs) are interleaved mini-batch by
    mini-batch, each on its own CUDA stream and random state (``FrequentRun``): on a GPU their kernels overlap, and
    each run gives what it gives alone. With ``states`` each epoch's end is written there, and a killed job resumes
    from it.
    """
    for key in ("epochs", "matmul_precision"):
        if len({getattr(c, key) for c in cfgs}) != 1:
            raise ValueError(f"interleaved Algorithm 2 runs need one {key}, got {[getattr(c, key) for c in cfgs]}")
    with tf32_matmul(cfgs[0].matmul_precision == "tf32"), weight_grads(models, cfgs):   # CUDA graphs keep both
        runs = [FrequentRun(m, train, test, vocab, c, log_every, own_stream=len(models) > 1)
                for m, c in zip(models, cfgs)]
        done = states.load(runs) if states is not None else 0
        if not done:
            for run in runs:
                with run.active():
                    run.evaluate(0)
        for epoch in range(done + 1, cfgs[0].epochs + 1):
            passes = {run: run.epoch(epoch) for run in runs}
            while passes:
                for run, steps in list(passes.items()):
                    with run.active():
                        if next(steps, StopIteration) is StopIteration:
                            del passes[run]
                            run.evaluate(epoch)
            if states is not None:
                states.save(runs, epoch)
    return [pd.DataFrame(run.curve) for run in runs]


# ------------------------------------------------------------------------------------------------ the stage


def settings_at(s: Settings, r_thres: float) -> FrequentSettings:
    """The Algorithm 2 settings of the configured ``r_thres`` (one of datasets.<name>.frequent.r_thres)."""
    for cfg in s.frequent:
        if cfg.r_thres == r_thres:
            return cfg
    raise ConfigError(f"r_thres {r_thres:g} is not one of datasets.{s.data.name}.frequent.r_thres "
                      f"({', '.join(f'{c.r_thres:g}' for c in s.frequent)}): add it there")


def unfilled_window(n_pairs: int, cfg: FrequentSettings) -> str | None:
    """Why Algorithm 2 on ``n_pairs`` training pairs never penalises a response, or None: its mini-batches (those of
    one epoch when ``window_reset_each_epoch`` empties the window) are fewer than a full window (one more with
    ``first_negative_batch: after_full``), and nothing is a negative before the window is full."""
    per_epoch = -(-n_pairs // cfg.batch_size)
    if cfg.drop_last_batch and per_epoch > 1 and n_pairs % cfg.batch_size:
        per_epoch -= 1
    seen = per_epoch if cfg.window_reset_each_epoch else per_epoch * cfg.epochs
    if seen >= cfg.window + (cfg.first_negative_batch == "after_full"):
        return None
    span = "an epoch" if cfg.window_reset_each_epoch else f"{cfg.epochs} epoch(s)"
    return (f"Algorithm 2 never penalises a response: {span} of {n_pairs} training pairs in mini-batches of "
            f"{cfg.batch_size} give {seen} mini-batches, fewer than fill its window of {cfg.window} (frequent.window; "
            f"quick.frequent_window at quick scale); lower it, or train on more pairs or for more epochs")


def run(seq2seq_path: str | Path, train_path: str | Path, test_path: str | Path, ckpt_outs: list[str | Path],
        curve_outs: list[str | Path], s: Settings, r_thres: list[float]) -> list[pd.DataFrame]:
    """Rule negtrain_frequent: Algorithm 2 on the baseline at each of ``r_thres`` (interleaved when several, see
    ``train_frequent``); writes each run's checkpoint and curve, only once every run has finished."""
    cfgs = [settings_at(s, r) for r in r_thres]
    torch.manual_seed(s.seed)
    dev = resolve(s.device, s.gpu_jobs_per_device)
    # one load, then copies: building a model draws random numbers, and each run must start from the state it has
    # alone
    base = checkpoint.load(seq2seq_path, device=dev, arch=s.model.arch, kind="seq2seq")
    models = [base.model] + [fresh_copy(base.model) for _ in r_thres[1:]]
    vocab = base.vocab
    train = load_pairs(train_path, vocab, s.data, dev, cfgs[0].max_train_pairs)
    test = load_pairs(test_path, vocab, s.data, dev)
    log.info("Algorithm 2 on %d training pairs (%d test), r_thres %s: %s", len(train), len(test),
             ", ".join(f"{r:g}" for r in r_thres), cfgs[0])
    if (why := unfilled_window(len(train), cfgs[0])) is not None:         # the runs of a job share all but r_thres
        stage.say(f"{s.data.name}: {why}")
    states = StateFiles(ckpt_outs, state_fingerprint(s, cfgs, [seq2seq_path, train_path, test_path]), vocab)
    curves = train_frequent(models, train, test, vocab, cfgs, s.train.log_every, states)
    for r, model, curve, ckpt_out, curve_out in zip(r_thres, models, curves, ckpt_outs, curve_outs):
        checkpoint.save(ckpt_out, model, kind="seq2seq", vocab=vocab,
                        extra={"stage": "negtrain_frequent", "r_thres": r, "base": str(seq2seq_path)})
        write_csv(curve.assign(r_thres=r, dataset=s.data.name, scale=s.scale), curve_out)
    states.remove()
    return curves


def state_fingerprint(s: Settings, cfgs: list[FrequentSettings], inputs: list[str | Path]) -> str:
    """What decides the job's numbers: its runs' settings, the data settings, the seed and its input files
    (``io.fingerprint``)."""
    return fingerprint({"seed": s.seed, "data": dataclasses.asdict(s.data),
                        "runs": [dataclasses.asdict(c) for c in cfgs]}, inputs)
