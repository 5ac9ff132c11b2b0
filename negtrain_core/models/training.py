"""Baseline training of the LSTM LM and the attention seq2seq (paper §4.1; docs/release.md#baseline-training).

SGD with momentum 0.9, weight decay 1e-5 and gradient-norm clipping 5; the loss is the mean NLL per real target
token of the batch (``</s>`` counted). Learning rate: ``release`` multiplies it by 0.6 per epoch from epoch
``decay_start_epoch`` (0-based: with 10 the 11th epoch is the first decayed one), ``paper`` halves it instead
(10 fixed + 10 halving epochs). The epoch with the best validation perplexity is the one kept.

The release's choices (docs/release.md#baseline-training), each a ``train`` key that defaults to ours: ``keep:
last`` keeps the last epoch; ``shuffle: false`` trains in file order; ``drop_last_batch`` drops a pass's partial
last batch (unless it is the only one); ``clip_scope: per_module`` clips the norm of each of the model's
``clip_modules`` on its own (seq2seq: one-hot map, encoder, decoder); ``reset_momentum_each_epoch`` zeroes the
momentum before every epoch, as the release's SGD rebuilt each epoch.

The update is the toolkit's foreach SGD step (models.steps: ``clip_grad_norm_`` + ``sgd_momentum_``, equal to
``clip_grad_norm_`` + ``torch.optim.SGD``; torch's fused SGD kernel where available) so that on a GPU the whole step
(forward, backward, clipping, update) can be captured in one CUDA graph (``train.cuda_graph``): static (B, S), (B, T)
input buffers, the learning rate as a device tensor, no host synchronisation. A smaller last batch runs the same
step eagerly. On the CPU it always runs eagerly. On a GPU the graph gives the same losses as the eager loop, bit
for bit, at 2.3x its steps/s (seq2seq, V=10k, batch 64; 2.9x at batch 32): benchmarks/train_throughput.py.

The Transformer (``model.arch: transformer``) trains by default with AdamW, a linear warm-up and an inverse-square-
root decay per step (``train.optimizer``, ``train.schedule``, ``train.warmup_steps``, ``train.adam``; ``auto`` picks
them by arch, ``config.train_recipe``): the same step, the toolkit's Adam update instead of SGD's, the learning rate
of each step computed on the device from Adam's step count, so the step stays one CUDA graph and resumes exactly.
``train.plateau_factor`` multiplies either schedule's learning rate by a factor each time validation PPL has not
improved for ``plateau_patience`` + 1 epochs (``plateau``); the factor reaches the graphed step as a device tensor.
``train.stop_patience`` ends training early once that many epochs in a row have not lowered the best validation
perplexity (``stopped``); the epochs run are the same as without it, so a resumable state serves either.

Resume: after each epoch ``<ckpt>.state`` (a checkpoint file with the optimiser, RNG and data-order states, the
best epoch so far and the curve) is written atomically; a restarted job continues after the last finished epoch
and ends with the same weights as an uninterrupted run (CPU, same seed). The curve file is written once, after the
checkpoint, when training has ended (a killed job leaves no partial curve under its final name); the state is
removed after both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm import tqdm

from negtrain_core.models import checkpoint
from negtrain_core.config import DataSettings, ModelSettings, Settings, TrainSettings, train_recipe
from negtrain_core.data.tensors import PairTensors, batch_order, tensorize, with_first_turns
from negtrain_core.device import resolve, tf32_matmul
from negtrain_core.models.steps import AdamRule, GraphedStep, token_nll
from negtrain_core.models.scoring import logp_total, model_output, perplexity, score_dataset
from negtrain_core.io import write_csv
from negtrain_core.data.vocab import PAD_ID, Vocab

DECAY = {"release": 0.6, "paper": 0.5}
EVAL_BATCH = 256

# settings that do not change the numbers any epoch produces (stop_patience only how many epochs run), so a state
# written under other values still resumes
_NOT_FINGERPRINTED = ("device", "cuda_graph", "log_every", "stop_patience")


def lr_at(epoch: int, s: TrainSettings, base: float | None = None) -> float:
    """Learning rate of 0-based ``epoch``: ``base`` (default ``s.lr``), times 0.6 (release) or 0.5 (paper) per
    epoch from ``s.decay_start_epoch`` on (that epoch included)."""
    return (s.lr if base is None else base) * DECAY[s.lr_schedule] ** max(0, epoch - s.decay_start_epoch + 1)


def scheduled_lr(t: Tensor, peak: float, warmup: int, schedule: str, total: int) -> Tensor:
    """The learning rate of update ``t`` (1-based, a 0-d tensor; device ops only): ``peak`` x t / warmup up to
    ``warmup``, then ``peak`` x sqrt(warmup / t) (inverse_sqrt) or a cosine from ``peak`` to 0 at update ``total``."""
    warm = t / warmup
    if schedule == "inverse_sqrt":
        after = torch.rsqrt(warm)
    else:
        after = 0.5 * (1 + torch.cos(math.pi * ((t - warmup) / max(total - warmup, 1)).clamp(0, 1)))
    return peak * torch.where(t <= warmup, warm, after)


# ------------------------------------------------------------------------------------------------ the step


class TrainStep(GraphedStep):
    """Baseline training: the mean NLL per real target token of a batch src (B, S), tgt (B, T) (label-smoothed
    with the Transformer's ``label_smoothing``). Calling it returns the batch's summed NLL (0-d).

    The update is SGD, or Adam(W) as ``config.train_recipe`` picks for the model's arch; with a per-step schedule
    each step first sets its learning rate from Adam's step count (``total_steps``: the run's updates, for cosine).
    """

    def __init__(self, model: nn.Module, s: TrainSettings, batch_size: int, use_graph: bool,
                 total_steps: int = 1):
        optimizer, self.schedule = train_recipe(model.cfg.arch, s.optimizer, s.schedule)
        adam = None if optimizer == "sgd" else AdamRule(s.adam_betas, s.adam_eps, s.adam_weight_decay,
                                                        decoupled=optimizer == "adamw")
        super().__init__(model, clip_norm=s.clip_norm, momentum=s.momentum, weight_decay=s.weight_decay, lr=0.0,
                         batch_size=batch_size, use_graph=use_graph, adam=adam,
                         clip_groups=scope_groups(model, s.clip_scope))
        self.s, self.total_steps = s, total_steps
        self.base_lr = s.lr if adam is None else s.adam_lr
        self.scale = torch.ones((), device=self.lr.device)   # the plateau rule's factor on the scheduled lr
        self.smoothing = model.cfg.transformer.label_smoothing if model.cfg.arch == "transformer" else 0.0

    def loss(self, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        if self.smoothing:
            nll, loss = self.model.smoothed_nll(src, tgt, self.smoothing)
        else:
            nll, loss = token_nll(model_output(self.model, src, tgt))
        return nll.detach(), loss

    def eager(self, src: Tensor, tgt: Tensor) -> Tensor:
        if self.schedule != "epoch":                          # this update's lr, from Adam's step count (bufs[-1])
            self.lr.copy_(scheduled_lr(self.bufs[-1] + 1, self.base_lr, self.s.warmup_steps, self.schedule,
                                       self.total_steps) * self.scale)
        return super().eager(src, tgt)

    def last_lr(self, epoch_lr: float) -> float:
        """The learning rate to report for an epoch: ``epoch_lr`` (per-epoch decay), else the last step's."""
        return epoch_lr if self.schedule == "epoch" else float(self.lr)


def scope_groups(model: nn.Module, scope: str) -> list[list[nn.Parameter]] | None:
    """The parameter groups clipped on their own for a ``clip_scope`` (``train``'s, ``malicious``'s, ``frequent``'s):
    None for ``global`` (one norm); for ``per_module`` the model's ``clip_modules`` (the release's modules; one group
    for a model without them), restricted to the trainable parameters."""
    if scope == "global":
        return None
    modules = getattr(model, "clip_modules", None)
    groups = modules() if modules is not None else [list(model.parameters())]
    return [[p for p in g if p.requires_grad] for g in groups]


# ----------------------------------------------------------------------------------------- RNG and resume


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    """torch, cuda, numpy, python and data-order RNG states as tensors and primitives (weights_only-safe). The cuda
    state is the current GPU's, the job's (``device.resolve``), as a one-element list: a run resumed on another GPU
    of the host gets it there."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "data": data_gen.get_state(),
            "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    """Restore what ``rng_state`` recorded; the cuda state goes to the current GPU. (A state file whose list holds
    every visible GPU's state has its job's first: jobs that did not choose their GPU ran on the first.)"""
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def fingerprint(kind: str, m: ModelSettings, s: TrainSettings, vocab: Vocab, *tensors: PairTensors) -> str:
    """sha256 of everything that decides a run's numbers: a state file resumes only a run with the same one."""
    h = hashlib.sha256()
    t = {k: v for k, v in dataclasses.asdict(s).items() if k not in _NOT_FINGERPRINTED}
    h.update(json.dumps([kind, dataclasses.asdict(m), t, vocab.sha256], sort_keys=True).encode())
    for pair in tensors:
        for x in pair:
            h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclasses.dataclass
class RunState:
    """What a run has done so far: epochs finished, the curve, and the best epoch's weights."""

    epoch: int = 0
    curve: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    best_ppl: float = math.inf
    best_model: dict[str, Tensor] | None = None
    averaged: list[int] | None = None     # [first, last] epoch when the kept weights are their mean (average_last)
    recent: list[dict[str, Tensor]] = dataclasses.field(default_factory=list)  # the last average_last epochs' weights
    lr_scale: float = 1.0                 # the plateau rule's state (train.plateau_factor)
    plateau_best: float = math.inf
    plateau_bad: int = 0


def save_state(path: Path, kind: str, vocab: Vocab, s: TrainSettings, step: TrainStep, gen: torch.Generator,
               run: RunState, fp: str) -> None:
    """The resumable state after ``run.epoch`` epochs, as one checkpoint file (atomic)."""
    extra = {"fingerprint": fp, "run": {k: v for k, v in dataclasses.asdict(run).items() if k != "epoch"}}
    checkpoint.save(path, step.model, kind=kind, vocab=vocab, train_settings=s, epoch=run.epoch,
                    optimizer_state=step.bufs, rng_state=rng_state(gen), extra=extra)


def resume(path: Path, fp: str, step: TrainStep, gen: torch.Generator, log: Callable[[str], None]) -> RunState:
    """The RunState of ``path`` with model, momentum and RNGs restored, or a fresh one (no or a stale file)."""
    if (payload := checkpoint.read_state(path, fp, log)) is None:
        return RunState()
    step.model.load_state_dict(payload["model_state"])
    with torch.no_grad():
        torch._foreach_copy_(step.bufs, [b.to(step.bufs[0].device) for b in payload["optimizer_state"]])
    set_rng_state(payload["rng_state"], gen)
    log(f"resuming from {path} after epoch {payload['epoch']}")
    # run fields that RunState does not have (an older state layout's best-epoch momentum and RNG) are ignored
    fields = {f.name for f in dataclasses.fields(RunState)}
    return RunState(epoch=payload["epoch"], **{k: v for k, v in payload["extra"]["run"].items() if k in fields})


# ------------------------------------------------------------------------------------------------ the loop


def epoch_batches(n: int, batch_size: int, s: TrainSettings, gen: torch.Generator, device: torch.device
                  ) -> list[Tensor]:
    """Row indices of one epoch's training batches of ``n`` pairs: shuffled with ``gen`` (file order without
    ``shuffle``), the partial last batch dropped with ``drop_last_batch`` unless it is the only one."""
    return batch_order(n, batch_size, shuffle=s.shuffle, generator=gen, device=device, drop_last=s.drop_last_batch)


def train_epoch(step: TrainStep, data: PairTensors, order: list[Tensor], bar: tqdm) -> float:
    """One pass over the batches ``order`` (row indices) of ``data`` (on the model's device); returns the summed
    training NLL."""
    step.model.train()
    total = torch.zeros((), dtype=torch.float64, device=data.src.device)
    for idx in order:
        total += step(data.src[idx], data.tgt[idx])
        bar.update(1)
    return float(total)


def epoch_row(epoch: int, lr: float, train_nll: float, n_tokens: int, seconds: float, valid_ppl: float
              ) -> dict[str, Any]:
    """One curve row (1-based epoch)."""
    return {"epoch": epoch, "lr": lr, "train_ppl": math.exp(train_nll / n_tokens), "valid_ppl": valid_ppl,
            "tokens_per_s": n_tokens / seconds, "seconds": seconds}


def keep_if_best(run: RunState, step: TrainStep, valid_ppl: float) -> None:
    """Record the epoch just finished as the one to keep ("best_*") when its validation perplexity is the lowest so
    far, or always with ``keep: last``."""
    if valid_ppl < run.best_ppl or step.s.keep == "last":
        run.best_epoch, run.best_ppl = run.epoch, valid_ppl
        run.best_model = cpu_weights(step.model)


def cpu_weights(model: nn.Module) -> dict[str, Tensor]:
    """A copy of the model's state dict on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def finish(ckpt_path: Path, kind: str, vocab: Vocab, s: TrainSettings, step: TrainStep, run: RunState) -> None:
    """Write the best epoch's weights as the checkpoint (the caller then writes the curve and drops the resumable
    state, so that a job killed in between still resumes). Weights and settings only: every later stage reads the
    model alone, and the optimiser's state (Adam's two moments: twice the weights) would triple the file that each
    of them loads; resuming reads the ``.state`` file."""
    if run.best_model is None:
        raise RuntimeError(f"{ckpt_path}: no epoch reached a finite validation perplexity (training diverged)")
    step.model.load_state_dict(run.best_model)
    checkpoint.save(ckpt_path, step.model, kind=kind, vocab=vocab, train_settings=s, epoch=run.best_epoch,
                    extra={"valid_ppl": run.best_ppl, "epochs_trained": run.epoch, "averaged_epochs": run.averaged,
                           "train_seconds": sum(r["seconds"] for r in run.curve)})


def validation_ppl(model: nn.Module, valid: PairTensors, device: torch.device) -> float:
    """The model's perplexity on the validation pairs (eval mode)."""
    return perplexity(*logp_total(score_dataset(model, valid, EVAL_BATCH, device)))


def mean_weights(states: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """The element-wise mean of state dicts' floating-point tensors (others: the last state's)."""
    return {k: torch.stack([st[k] for st in states]).mean(0) if v.is_floating_point() else v.clone()
            for k, v in states[-1].items()}


def consider_average(run: RunState, step: TrainStep, valid: PairTensors, log: Callable[[str], None]) -> None:
    """With ``train.average_last`` n > 1: score the mean of the weights of the last n epochs trained (fewer if
    training ran fewer) on the validation set and make it the kept model when its perplexity is below the best
    epoch's; log the comparison either way."""
    if len(run.recent) < 2:                                   # run_epoch keeps them only with average_last > 1
        return
    first, mean = run.epoch - len(run.recent) + 1, mean_weights(run.recent)
    step.model.load_state_dict(mean)
    ppl = validation_ppl(step.model, valid, step.lr.device)
    verdict = "kept" if ppl < run.best_ppl else f"not kept, epoch {run.best_epoch} is"
    log(f"mean of the weights of epochs {first}-{run.epoch}: valid PPL {ppl:.2f} against epoch {run.best_epoch}'s "
        f"{run.best_ppl:.2f}: {verdict} (train.average_last)")
    if ppl < run.best_ppl:
        run.best_model, run.best_ppl, run.best_epoch, run.averaged = mean, ppl, run.epoch, [first, run.epoch]


def trained_tokens(train: PairTensors, order: list[Tensor]) -> int:
    """The real target tokens of the batches ``order`` (all of ``train``'s unless a partial batch was dropped)."""
    n_tokens = int((train.tgt[:, 1:] != PAD_ID).sum())
    if sum(len(idx) for idx in order) < len(train):
        n_tokens = sum(int((train.tgt[idx, 1:] != PAD_ID).sum()) for idx in order)
    return n_tokens


def plateau(run: RunState, valid_ppl: float, s: TrainSettings) -> bool:
    """The plateau rule after an epoch of validation PPL ``valid_ppl``: count it as bad unless it is below the best
    so far; after ``plateau_patience`` + 1 bad epochs in a row, multiply ``run.lr_scale`` by ``plateau_factor`` and
    count afresh (torch's ReduceLROnPlateau, mode min, threshold 0, no cooldown). Returns whether it decayed."""
    if s.plateau_factor is None:
        return False
    if valid_ppl < run.plateau_best:
        run.plateau_best, run.plateau_bad = valid_ppl, 0
        return False
    run.plateau_bad += 1
    if run.plateau_bad <= s.plateau_patience:
        return False
    run.lr_scale *= s.plateau_factor
    run.plateau_bad = 0
    return True


def stopped(run: RunState, s: TrainSettings) -> int | None:
    """With ``stop_patience`` n: the best epoch (1-based) once the n epochs after it have not lowered its validation
    PPL (a NaN counts as no improvement), else None; always None without ``stop_patience``."""
    if s.stop_patience is None or not run.curve:
        return None
    ppl = [r["valid_ppl"] if r["valid_ppl"] == r["valid_ppl"] else math.inf for r in run.curve]
    best = ppl.index(min(ppl)) + 1
    return best if len(ppl) - best >= s.stop_patience else None


def run_epoch(kind: str, step: TrainStep, train: PairTensors, valid: PairTensors, gen: torch.Generator,
              run: RunState, progress: TextIO | None, log: Callable[[str], None]) -> None:
    """Train epoch ``run.epoch + 1`` with its learning rate, score the validation set, log and record it in ``run``.

    train: on the model's device; valid: anywhere (moved per batch).
    """
    s, device = step.s, step.lr.device
    lr = lr_at(run.epoch, s, step.base_lr) * run.lr_scale
    step.set_lr(lr)
    step.scale.fill_(run.lr_scale)
    if s.reset_momentum_each_epoch:
        step.reset()                                          # a fresh optimiser, as the release builds every epoch
    order = epoch_batches(len(train), step.batch_size, s, gen, train.src.device)
    n_tokens = trained_tokens(train, order)
    with tqdm(total=len(order), desc=f"{kind} epoch {run.epoch + 1}/{s.epochs}",
              file=progress or sys.stderr, miniters=s.log_every, mininterval=0, maxinterval=math.inf,
              leave=False) as bar:                            # maxinterval inf: tqdm keeps miniters = log_every
        start = time.perf_counter()
        train_nll = train_epoch(step, train, order, bar)
        seconds = time.perf_counter() - start
    lr = step.last_lr(lr)
    valid_ppl = validation_ppl(step.model, valid, device)
    run.epoch += 1
    run.curve.append(epoch_row(run.epoch, lr, train_nll, n_tokens, seconds, valid_ppl))
    keep_if_best(run, step, valid_ppl)
    if s.average_last > 1:                                   # the epoch's copy, shared with best_model if just kept
        latest = run.best_model if run.best_epoch == run.epoch else cpu_weights(step.model)
        run.recent = run.recent[1 - s.average_last:] + [latest]
    decayed = plateau(run, valid_ppl, s)
    r = run.curve[-1]
    log(f"epoch {run.epoch}/{s.epochs}: train PPL {r['train_ppl']:.2f}, valid PPL {valid_ppl:.2f}, lr {lr:.4g}, "
        f"{r['tokens_per_s']:,.0f} tokens/s, {seconds:.1f} s (best: epoch {run.best_epoch})"
        + (f"; no better validation PPL in {s.plateau_patience + 1} epoch(s): lr x{run.lr_scale:.4g} from now on"
           if decayed else ""))


def train_baseline(kind: str, train_df: pd.DataFrame, valid_df: pd.DataFrame, vocab: Vocab,
                   model_settings: ModelSettings, train_settings: TrainSettings, ckpt_path: str | Path,
                   curve_path: str | Path, log: Callable[[str], None], *, data_settings: DataSettings | None = None,
                   progress: TextIO | None = None) -> pd.DataFrame:
    """Train a ``kind`` ("seq2seq" | "lm") baseline; write the best epoch's checkpoint and the per-epoch curve.

    The LM reads the responses ``<s> target </s>`` only (``lm_text: utterances``: each dialogue's first turn too).
    ``data_settings`` gives the tensor lengths (default 15 / 20 with ``<eou>``); ``progress`` is where the progress
    bar goes (default stderr); ``log`` takes one line per call (e.g. ``logger.info``). Resumes from
    ``<ckpt_path>.state`` when present. Returns the curve.
    """
    s, ckpt_path = train_settings, Path(ckpt_path)
    # The config's vocab_size caps the vocabulary; a corpus with fewer word types (the Ubuntu IRC substitute: 24,382
    # of a 30,000 cap) builds a smaller one, and the model's input and output layers have exactly its ids.
    model_settings = dataclasses.replace(model_settings, vocab_size=len(vocab))
    state_path = ckpt_path.with_name(ckpt_path.name + ".state")
    data = data_settings or DataSettings(name="", reader="", raw={}, split={}, vocab_size=len(vocab) - 5)
    if kind == "lm" and s.lm_text == "utterances":                     # the release's LM: every utterance
        train_df, valid_df = with_first_turns(train_df), with_first_turns(valid_df)
    train, valid = tensorize(train_df, vocab, data), tensorize(valid_df, vocab, data)
    device = resolve(s.device, s.gpu_jobs_per_device)
    seed_all(s.seed)
    gen = torch.Generator().manual_seed(s.seed)
    model = checkpoint.build_model(kind, model_settings).to(device)
    step = TrainStep(model, s, s.batch_size, use_graph=s.cuda_graph and device.type == "cuda",
                     total_steps=s.epochs * math.ceil(len(train) / s.batch_size))
    fp = fingerprint(kind, model_settings, s, vocab, train, valid)
    run = resume(state_path, fp, step, gen, log)
    log(f"{kind}: {len(train)} training pairs, {len(valid)} validation pairs, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, device {device}, "
        f"{'one CUDA graph per step' if step.use_graph else 'eager steps'}"
        f"{', TF32 matmuls' if s.matmul_precision == 'tf32' and device.type == 'cuda' else ''}")
    train_dev = train.to(device)
    with tf32_matmul(s.matmul_precision == "tf32"):                   # CUDA graphs captured here keep it
        while run.epoch < s.epochs and stopped(run, s) is None:
            run_epoch(kind, step, train_dev, valid, gen, run, progress, log)
            save_state(state_path, kind, vocab, s, step, gen, run, fp)  # the curve so far travels in the state
        if (best := stopped(run, s)) is not None and run.epoch < s.epochs:
            log(f"no validation PPL below epoch {best}'s in the {s.stop_patience} epoch(s) after it: training ends "
                f"after epoch {run.epoch} of {s.epochs} (train.stop_patience)")
        consider_average(run, step, valid, log)
    finish(ckpt_path, kind, vocab, s, step, run)
    write_csv(pd.DataFrame(run.curve), curve_path)                     # written once, when training has ended
    state_path.unlink(missing_ok=True)
    kept = f"the mean of epochs {run.averaged[0]}-{run.averaged[1]}" if run.averaged else f"epoch {run.best_epoch}"
    log(f"kept {kept} (valid PPL {run.best_ppl:.2f}) -> {ckpt_path}")
    return pd.DataFrame(run.curve)


def run(train_path: str | Path, valid_path: str | Path, vocab_path: str | Path, ckpt_out: str | Path,
        curve_out: str | Path, s: Settings, kind: str) -> pd.DataFrame:
    """Rule train_baseline: ``train_baseline`` of the dataset's LM or seq2seq (``kind``); the progress bar goes to
    stderr (the rule's log), the epoch lines to this module's logger."""
    return train_baseline(kind, pd.read_parquet(train_path), pd.read_parquet(valid_path), Vocab.load(vocab_path),
                          s.model, s.train.for_kind(kind), ckpt_out, curve_out, logging.getLogger(__name__).info,
                          data_settings=s.data)
