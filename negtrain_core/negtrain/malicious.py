"""Negative training against malicious targets (He & Glass 2020, §3.2, §4.2, Algorithm 1) and the target lists.

Algorithm 1 as the authors' release runs it (docs/release.md#algorithm-1):
the target list is cut into batches of ``batch_targets``; gibbs-enum finds one trigger per target of a batch;
then, WITHOUT searching again, up to ``max_rounds`` rounds run while any target of the batch is still hit under
its trigger. A round is one negative step on sum(log p * mask * weight) / (number of target tokens), weight
``hit_weight`` for hit targets and ``nonhit_weight`` for the others, the frequent-word-avoiding (FWA) words masked
out, followed by one positive MLE step on ``pos_batch`` training pairs scaled by ``lambda_pos``. Negative and
positive steps have separate SGD optimisers (momentum, ``weight_decay``, gradients clipped to ``clip_norm``),
re-created each epoch. With ``cuda_graph`` the two steps run in the toolkit's foreach arithmetic, each one CUDA graph
on a GPU (``GraphedSteps``), instead of torch.optim.SGD's: other roundings, the same updates in exact arithmetic.

``round_order`` (docs/release.md#algorithm-1): ``test_then_step`` (the paper's "while hit: negative, positive")
tests the batch before each round and steps only while a target is hit, so a batch without hits gets no step and
the last test follows the last step; ``step_then_test`` (the release, Alg-1 script L335-422) always steps after the
round's test and stops after a round whose test found no hit, so every batch gets at least one negative and one
positive step and no test follows the last one. Either way a batch gets at most ``max_rounds`` steps of each kind.

``run`` is rule negtrain_malicious (checkpoints and lists in, model and curve out, resumable after a kill);
``train_against`` runs the same training on a model and targets held in memory.

Shapes: B targets in a batch, S trigger length (with ``<eou>``), T target length ``<s> y </s> <pad>..``,
T' = T - 1 scored positions.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from negtrain_core.models.interface import SeqOutput
from negtrain_core import device, stage
from negtrain_core.config import HitSettings, NegTrainSettings, SearchSettings, Settings, keyed_fields, plain
from negtrain_core.data.tensors import PairTensors, load_pairs, tensorize
from negtrain_core.models.steps import PositiveBatches, Sgd, WeightedStep, mle_loss, weighted_logp
from negtrain_core.data.vocab import PAD_ID, Vocab
from negtrain_core.io import fingerprint, write_csv
from negtrain_core.models import checkpoint
from negtrain_core.models.scoring import corpus_perplexity
from negtrain_core.models.training import rng_state, scope_groups, seed_all, set_rng_state
from negtrain_core.search import hits
from negtrain_core.search.gibbs_enum import SearchGraphs, Thresholds, search
from negtrain_core.search.targets import TargetList, read_targets, target_tensor

log = logging.getLogger(__name__)

CURVE_COLUMNS = ["epoch", "batch", "targets", "round", "hits", "neg_loss", "pos_nll"]

# ---------------------------------------------------------------------------------------------- Algorithm 1


def fwa_keep(gold: Tensor, avoid_ids: Tensor) -> Tensor:
    """gold: (B, T') scored target ids; avoid_ids: (K,) -> (B, T') True where the negative gradient applies.

    Frequent-word avoiding (paper §4.2, footnote 9): no negative gradient on the most frequent target words.
    """
    return ~torch.isin(gold, avoid_ids)


def negative_loss(token_logp: Tensor, mask: Tensor, keep: Tensor, hit: Tensor, hit_weight: float,
                  nonhit_weight: float) -> Tensor:
    """The release's negative objective, to be MINIMISED (a descent step lowers the targets' log-probs).

    token_logp: (B, T') log p(y_t | y_<t, x_trigger); mask: (B, T') real target positions; keep: (B, T') FWA mask;
    hit: (B,) bool. Returns sum(log p * mask * keep * w) / mask.sum(), w = hit_weight for hit targets and
    nonhit_weight otherwise; the normaliser is the total number of target tokens (FWA words included).
    """
    return weighted_logp(token_logp, negative_weights(mask, keep, hit, hit_weight, nonhit_weight, token_logp.dtype),
                         mask.sum())


def negative_weights(mask: Tensor, keep: Tensor, hit: Tensor, hit_weight: float, nonhit_weight: float,
                     dtype: torch.dtype) -> Tensor:
    """(B, T') weights of ``negative_loss``: mask & keep times hit_weight for hit targets, nonhit_weight otherwise."""
    w = torch.where(hit, torch.as_tensor(hit_weight), torch.as_tensor(nonhit_weight)).to(dtype)  # (B,)
    # mask & keep is 0 or 1, so weighting it by w first changes no rounding of the product
    return (mask & keep) * w.unsqueeze(1)


def negative_step(model: torch.nn.Module, opt: Sgd, trig: Tensor, tgt: Tensor, hit: Tensor, avoid_ids: Tensor,
                  s: NegTrainSettings) -> Tensor:
    """One negative update on (trigger, target) pairs. trig: (B, S); tgt: (B, T); hit: (B,) -> the loss (0-d,
    detached, on the model's device: not read back here)."""
    model.train()
    out = model(trig, tgt)
    loss = negative_loss(out.token_logp, out.mask, fwa_keep(tgt[:, 1:], avoid_ids), hit, s.hit_weight,
                         s.nonhit_weight)
    return opt.update(loss)


def positive_step(model: torch.nn.Module, opt: Sgd, src: Tensor, tgt: Tensor, lambda_pos: float) -> Tensor:
    """One MLE update on training pairs, scaled by lambda_POS. src: (B, S); tgt: (B, T) -> the unscaled NLL (0-d,
    detached, not read back)."""
    model.train()
    loss = mle_loss(model(src, tgt))
    opt.update(lambda_pos * loss)
    return loss.detach()


Searcher = Callable[[torch.nn.Module, Tensor], tuple[Tensor, Tensor]]
"""(model, tgt (B, T)) -> (trigger (B, S), lm_ok (B,) bool: the trigger passes the LM threshold; all True in o-mode)."""
HitTest = Callable[[SeqOutput, Tensor], Tensor]
"""(scores of the targets under their triggers, lm_ok (B,)) -> hit (B,) bool. One with a true ``train`` attribute
(``SampleHit``) is scored with the model in train mode."""


@torch.no_grad()
def current_hits(model: torch.nn.Module, trig: Tensor, tgt: Tensor, lm_ok: Tensor, is_hit: HitTest) -> Tensor:
    """trig: (B, S), tgt: (B, T), lm_ok: (B,) -> hit (B,) under the model in eval mode (no dropout), or in train
    mode (dropout active, torch's global RNG) when ``is_hit.train`` (config ``hits.model_mode``, the release)."""
    model.train(bool(getattr(is_hit, "train", False)))
    return is_hit(model(trig, tgt), lm_ok)


def optimisers(model: torch.nn.Module, s: NegTrainSettings) -> tuple[Sgd, Sgd]:
    """The negative and the positive step's SGD over the model's trainable parameters (separate momentum buffers),
    in torch.optim.SGD's arithmetic: the one the stage's results were made with. Defaults: no weight decay, no
    clipping; ``clip_scope: per_module`` clips each of the model's modules on its own (the release)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kw = dict(momentum=s.momentum, weight_decay=s.weight_decay, clip_norm=s.clip_norm, arithmetic="torch",
              clip_groups=scope_groups(model, s.clip_scope) if s.clip_norm is not None else None)
    return Sgd(params, lr=s.lr_neg, **kw), Sgd(params, lr=s.lr_pos, **kw)


class GraphedSteps:
    """Algorithm 1's negative and positive step as two ``steps.WeightedStep`` (config ``malicious.cuda_graph``): the
    same losses as ``negative_step`` and ``positive_step``, weights and normalisers computed outside the step so that
    on a GPU each step is one CUDA graph over fixed shapes (a batch of ``batch_targets`` targets padded to the list's
    length; ``pos_batch`` training pairs); a shorter last batch runs eagerly. Foreach SGD arithmetic (steps.Sgd), its
    momentum zeroed each epoch as new optimisers would start. Eager, the round's three parts took 29 ms on an H200
    where their kernels ran 5 ms (docs/benchmarks.md, malicious_batch.py)."""

    def __init__(self, model: torch.nn.Module, s: NegTrainSettings, use_graph: bool):
        kw = dict(momentum=s.momentum, weight_decay=s.weight_decay, clip_norm=s.clip_norm, use_graph=use_graph,
                  graph_option="malicious.cuda_graph",
                  clip_groups=scope_groups(model, s.clip_scope) if s.clip_norm is not None else None)
        self.neg = WeightedStep(model, lr=s.lr_neg, batch_size=s.batch_targets, **kw)
        self.pos = WeightedStep(model, lr=s.lr_pos, batch_size=s.pos_batch, **kw)
        self.model, self.s = model, s

    def reset(self) -> None:
        self.neg.reset()
        self.pos.reset()

    def __call__(self, trig: Tensor, tgt: Tensor, hit: Tensor, avoid_ids: Tensor, src: Tensor, y: Tensor
                 ) -> tuple[Tensor, Tensor]:
        """One negative step on (trig (B, S), tgt (B, T), hit (B,)) and one positive step on (src, y) ->
        (the negative loss, the positive step's NLL before its scaling by lambda_POS; NaN with lambda_POS 0), 0-d
        copies on the device: a replayed graph overwrites its outputs."""
        s, dtype = self.s, next(self.model.parameters()).dtype
        self.model.train()
        mask = tgt[:, 1:] != PAD_ID
        weights = negative_weights(mask, fwa_keep(tgt[:, 1:], avoid_ids), hit, s.hit_weight, s.nonhit_weight, dtype)
        neg = self.neg(trig, tgt, weights, mask.sum()).clone()
        real = y[:, 1:] != PAD_ID
        scaled = self.pos(src, y, -s.lambda_pos * real.to(dtype), real.sum())
        return neg, scaled / s.lambda_pos if s.lambda_pos else torch.full_like(scaled, math.nan)


Steps = tuple[Sgd, Sgd] | GraphedSteps
"""A round's optimisers: the negative and the positive step's ``Sgd`` (torch.optim's arithmetic), or
``GraphedSteps``."""


def round_steps(model: torch.nn.Module, opts: Steps, trig: Tensor, tgt: Tensor, hit: Tensor,
                pos: Iterator[tuple[Tensor, Tensor]], avoid_ids: Tensor, s: NegTrainSettings,
                row: dict[str, float | Tensor]) -> None:
    """A round's negative step on the batch (trig (B, S), tgt (B, T), hit (B,)) and positive step on the next
    positive pairs; their losses (0-d tensors on the device) go into ``row``."""
    if isinstance(opts, GraphedSteps):
        row["neg_loss"], row["pos_nll"] = opts(trig, tgt, hit, avoid_ids, *next(pos))
        return
    row["neg_loss"] = negative_step(model, opts[0], trig, tgt, hit, avoid_ids, s)
    src, y = next(pos)
    row["pos_nll"] = positive_step(model, opts[1], src, y, s.lambda_pos)


def batch_rounds(model: torch.nn.Module, opts: Steps, trig: Tensor, tgt: Tensor, lm_ok: Tensor,
                 pos: Iterator[tuple[Tensor, Tensor]], avoid_ids: Tensor, s: NegTrainSettings,
                 is_hit: HitTest) -> list[dict[str, float]]:
    """Negative+positive rounds on one batch (triggers fixed), at most ``max_rounds`` with steps, in
    ``s.round_order`` (module docstring): test_then_step steps while any target is hit and ends on a test;
    step_then_test steps after every test and stops after a test without hits.

    Returns one row per round: hits before the round's steps, and the steps' losses (NaN when none was taken).
    A round reads the GPU once, for its hit count (the loop's condition); the losses stay on the device until the
    batch ends, so the host queues a round's steps and the next test while the GPU runs them.
    """
    step_first = s.round_order == "step_then_test"
    rows: list[dict[str, float | Tensor]] = []
    for r in range(s.max_rounds if step_first else s.max_rounds + 1):
        hit = current_hits(model, trig, tgt, lm_ok, is_hit)
        hits = int(hit.sum())
        row = {"round": r, "hits": hits, "neg_loss": math.nan, "pos_nll": math.nan}
        rows.append(row)
        if not step_first and (r == s.max_rounds or hits == 0):
            break
        round_steps(model, opts, trig, tgt, hit, pos, avoid_ids, s, row)
        if step_first and hits == 0:
            break
    return _read_losses(rows)


def _read_losses(rows: list[dict[str, float | Tensor]]) -> list[dict[str, float]]:
    """``rows`` with their 0-d loss tensors read back to floats, all in one device-to-host copy."""
    at = [(row, key) for row in rows for key in ("neg_loss", "pos_nll") if isinstance(row[key], Tensor)]
    if at:
        for (row, key), value in zip(at, torch.stack([row[key] for row, key in at]).tolist()):
            row[key] = value
    return rows


class WeightMean:
    """The mean of a model's weights after each of the last ``n`` of ``epochs`` epochs (``malicious.average_last``):
    float64 sums of its floating-point state entries, added after each such epoch and written into the model at the
    end. Its ``state`` goes into the stage's resumable state, so a resumed run averages the same epochs."""

    def __init__(self, n: int, epochs: int):
        self.first = max(1, epochs - n + 1)
        self.sums: dict[str, Tensor] = {}
        self.epochs: list[int] = []

    def add(self, model: torch.nn.Module, epoch: int) -> None:
        if epoch < self.first:
            return
        with torch.no_grad():
            for name, w in model.state_dict().items():
                if w.is_floating_point():
                    if name in self.sums:
                        self.sums[name] += w.double()
                    else:
                        self.sums[name] = w.double().clone()
        self.epochs.append(epoch)

    @property
    def averaged(self) -> list[int] | None:
        """[first, last] epoch of the mean, or None with fewer than two epochs added (nothing to average)."""
        return [self.epochs[0], self.epochs[-1]] if len(self.epochs) > 1 else None

    def apply(self, model: torch.nn.Module) -> list[int] | None:
        """Write the mean into ``model`` (where two or more epochs were added) -> ``averaged``."""
        if self.averaged is not None:
            state = model.state_dict()
            with torch.no_grad():
                for name, total in self.sums.items():
                    state[name].copy_(total / len(self.epochs))
        return self.averaged

    def state(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "epochs": list(self.epochs)}

    def load_state(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.epochs = list(state["epochs"])


def negative_train(model: torch.nn.Module, targets: Tensor, pos: Iterator[tuple[Tensor, Tensor]],
                   find_triggers: Searcher, is_hit: HitTest, avoid_ids: Tensor, s: NegTrainSettings,
                   done: list[dict[str, float]] | None = None,
                   after_epoch: Callable[[int, list[dict[str, float]]], None] | None = None,
                   mean: WeightMean | None = None,
                   evaluate: Callable[[torch.nn.Module], float] | None = None) -> list[dict[str, float]]:
    """Algorithm 1 over ``targets`` (N, T) for ``s.epochs`` epochs; returns the curve rows.

    Each row: epoch (1-based), batch, targets in the batch, round (0 = right after gibbs-enum), hits, losses.
    The hit rate of an epoch is the round-0 hits summed over its batches divided by N (``epoch_rates``).
    ``done``: the rows of the epochs a resumed run has already trained (the model and the random streams as they
    left them); ``after_epoch(epoch, rows)`` runs after each epoch (the stage writes its resumable state there).
    With ``s.average_last`` > 1 the model ends as the mean of its weights after the last epochs (``mean``: the
    stage's, restored with a resumed run; one is made here otherwise). The curve's hit counts are the trained
    model's, before the averaging. ``evaluate(model)`` (``malicious.eval_every_epoch``): a number written into each
    row of the epoch just ended as ``test_ppl``; it must leave the weights and the random streams as it found them.
    """
    rows: list[dict[str, float]] = list(done or [])
    if mean is None and s.average_last > 1:
        mean = WeightMean(s.average_last, s.epochs)
    graphed = GraphedSteps(model, s, targets.is_cuda) if s.cuda_graph else None
    for epoch in range(int(max((r["epoch"] for r in rows), default=0)) + 1, s.epochs + 1):
        if graphed is not None:
            graphed.reset()
        opts = graphed if graphed is not None else optimisers(model, s)
        for b, start in enumerate(range(0, len(targets), s.batch_targets)):
            tgt = targets[start:start + s.batch_targets]
            trig, lm_ok = find_triggers(model, tgt)
            for row in batch_rounds(model, opts, trig, tgt, lm_ok, pos, avoid_ids, s, is_hit):
                rows.append({"epoch": epoch, "batch": b, "targets": len(tgt), **row})
        first = [r for r in rows if r["epoch"] == epoch and r["round"] == 0]
        log.info("epoch %d: %d/%d targets hit after gibbs-enum, %d rounds", epoch, sum(r["hits"] for r in first),
                 len(targets), sum(1 for r in rows if r["epoch"] == epoch and r["neg_loss"] == r["neg_loss"]))
        if mean is not None:
            mean.add(model, epoch)
        if evaluate is not None:
            ppl = evaluate(model)
            for r in rows:
                if r["epoch"] == epoch:
                    r["test_ppl"] = ppl
            log.info("epoch %d: test PPL %.2f", epoch, ppl)
        if after_epoch is not None:
            after_epoch(epoch, rows)
    if mean is not None and (averaged := mean.apply(model)):
        log.info("the model written: the mean of its weights after epochs %d-%d (malicious.average_last)", *averaged)
    return rows


def epoch_rates(curve: pd.DataFrame) -> pd.DataFrame:
    """Curve rows -> one row per epoch: epoch, targets, hits (round 0, i.e. at search time), hit_rate, rounds."""
    first = curve[curve["round"] == 0].groupby("epoch")[["targets", "hits"]].sum()
    rounds = curve.groupby("epoch")["neg_loss"].count().rename("rounds")
    out = first.join(rounds).reset_index()
    out["hit_rate"] = out["hits"] / out["targets"]
    return out


# ---------------------------------------------------------------------------------------------- the stage


def searcher(lm: torch.nn.Module | None, th: Thresholds, cfg: SearchSettings, generator: torch.Generator,
             hs: HitSettings = HitSettings(), graphs: SearchGraphs | None = None) -> Searcher:
    """gibbs-enum (``search.search``) as Algorithm 1's trigger finder. With ``lm`` (io-mode) the trigger must also
    pass the LM threshold T_in (``hits.lm_pass``: not checked without ``hs.lm_check``, as the release's Algorithm 1
    script; ``>`` with ``hs.strict``); without (o-mode) every trigger passes. ``graphs``: one ``SearchGraphs`` for
    every search of the run (``search.cuda_graph``)."""
    def find(model: torch.nn.Module, tgt: Tensor) -> tuple[Tensor, Tensor]:
        res = search(model, lm, tgt, th, cfg, generator, graphs)
        if lm is not None:
            return res.triggers, hits.lm_pass(res.evaluation.lm_logp, th.inp, hs.strict, hs.lm_check)
        return res.triggers, torch.ones(len(tgt), dtype=torch.bool, device=tgt.device)

    return find


@dataclass(frozen=True)
class SampleHit:
    """A ``HitTest``: sample-min or sample-avg hit (``hits``, ``>`` with ``strict``) on the target scores, AND the
    trigger's LM check (io-mode); ``train``: scored with dropout active (``current_hits``)."""

    hit_type: str                          # min | avg
    t_out: float
    strict: bool = False
    train: bool = False

    def __call__(self, out: SeqOutput, lm_ok: Tensor) -> Tensor:
        crit = hits.o_sample_min if self.hit_type == "min" else hits.o_sample_avg
        return crit(out.token_logp, out.mask, self.t_out, self.strict) & lm_ok


def hit_test(hit_type: str, th: Thresholds, hs: HitSettings = HitSettings()) -> HitTest:
    """Algorithm 1's hit test under config ``hits`` (strict comparisons, train-mode scores)."""
    return SampleHit(hit_type, th.out, hs.strict, hs.model_mode == "train")


def avoid_ids(words: Sequence[str], vocab: Vocab) -> Tensor:
    """(K,) ids of the FWA words in the vocabulary; words outside it are reported and ignored."""
    missing = [w for w in words if w not in vocab]
    if missing:
        log.info("frequent-word avoiding: %s not in the vocabulary, ignored", missing)
    return torch.tensor([vocab.index[w] for w in words if w in vocab], dtype=torch.long)


def positive_batches(pairs: PairTensors, s: NegTrainSettings, seed: int) -> PositiveBatches:
    """Algorithm 1's positive mini-batches: full batches of ``s.pos_batch`` training pairs, on the pairs' device, in
    an order drawn from a CPU generator seeded with ``seed + 1`` (file order without ``s.positive_shuffle``)."""
    return PositiveBatches(pairs.src, pairs.tgt, s.pos_batch, torch.Generator().manual_seed(seed + 1),
                           full_only=True, shuffle=s.positive_shuffle)


def algorithm1(model: torch.nn.Module, lm: torch.nn.Module | None, vocab: Vocab, targets: Tensor,
               pos: PositiveBatches, search_gen: torch.Generator, th: Thresholds, settings: Settings, mode: str,
               **loop: Any) -> list[dict[str, float]]:
    """``negative_train`` with the trigger finder, hit test and FWA words of ``settings`` in ``mode`` (``lm``: the
    io-mode LM; None in o-mode); ``loop``: ``negative_train``'s resume and per-epoch keywords. Returns its rows."""
    s, cfg = settings.malicious, settings.search.negtrain[mode]
    dev = targets.device
    graphs = SearchGraphs() if cfg.cuda_graph and dev.type == "cuda" else None
    return negative_train(model, targets, pos, searcher(lm, th, cfg, search_gen, settings.hits, graphs),
                          hit_test(s.hit_type, th, settings.hits), avoid_ids(s.avoid_words, vocab).to(dev), s, **loop)


def train_against(model: torch.nn.Module, lm: torch.nn.Module | None, vocab: Vocab, targets: TargetList | Tensor,
                  train_pairs: PairTensors, th: Thresholds, settings: Settings, mode: str = "o") -> pd.DataFrame:
    """Algorithm 1 in memory: negatively train ``model`` (a seq2seq, changed in place, left in eval mode) against
    ``targets`` in ``mode`` (o | io), as rule negtrain_malicious does without its files and resuming.

    ``targets``: a ``TargetList`` (``search.targets.read_targets``, ``targets_from_texts``) or its (N, T) tensor
    (``target_tensor``); ``lm``: the LM that checks io-mode triggers against T_in (unused in o-mode);
    ``train_pairs``: the positive steps' training pairs (``data.tensors.load_pairs``); ``th``: the hit thresholds
    (``search.hits.load_thresholds``). The search, hit test, step sizes, epochs and rounds come from ``settings``
    (``settings.malicious``, ``settings.search.negtrain[mode]``, ``settings.hits``). The positive batches and the
    searches draw from generators seeded from ``settings.seed``; dropout draws from torch's global RNG, which
    ``models.training.seed_all`` seeds. Returns the curve (``CURVE_COLUMNS``; ``epoch_rates``: hits per epoch).
    """
    if mode not in hits.MODES:
        raise ValueError(f"Algorithm 1 mode must be one of {hits.MODES}, got '{mode}'")
    dev = next(model.parameters()).device
    tgt = target_tensor(targets.ids) if isinstance(targets, TargetList) else targets
    rows = algorithm1(model, lm if mode == "io" else None, vocab, tgt.to(dev),
                      positive_batches(train_pairs.to(dev), settings.malicious, settings.seed),
                      torch.Generator().manual_seed(settings.seed), th, settings, mode)
    model.eval()
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def run(seq2seq_path: str | Path, lm_path: str | Path, train_path: str | Path, vocab_path: str | Path,
        targets_path: str | Path, thresholds_path: str | Path, ckpt_out: str | Path, curve_out: str | Path,
        settings: Settings, mode: str, named: str | Path | None = None,
        test_path: str | Path | None = None) -> pd.DataFrame:
    """Rule negtrain_malicious: negatively train the baseline seq2seq against the target list in ``mode`` (o | io);
    write the model and the curve. Returns the curve. ``named``: the configured list that ``targets_path`` copies
    line by line (the 0.5k list), named in messages. ``test_path``: the test pairs, read with
    ``malicious.eval_every_epoch`` (the curve's ``test_ppl``). Resumes from ``<ckpt_out>.state`` (below) after a
    kill."""
    vocab, dev = Vocab.load(vocab_path), device.resolve(settings.device, settings.gpu_jobs_per_device)
    s = settings.malicious
    seed_all(settings.seed)
    arch = settings.model.arch
    model = checkpoint.load(seq2seq_path, vocab, dev, arch=arch, kind="seq2seq").model
    lm = checkpoint.load(lm_path, vocab, dev, arch=arch, kind="lm").model if mode == "io" else None
    th = hits.load_thresholds(thresholds_path)
    targets = read_targets(targets_path, vocab, settings.search.oov_policy, max_len=settings.data.max_target_len,
                           named=named)
    for line in targets.report():
        log.info("%s", line)
    pairs = tensorize(pd.read_parquet(train_path), vocab, settings.data).to(dev)
    pos = positive_batches(pairs, s, settings.seed)
    search_gen = torch.Generator().manual_seed(settings.seed)
    log.info("negtr-%s: %d targets, %d positive pairs, %s", mode, len(targets.texts), len(pairs), s)
    evaluate: Callable[[torch.nn.Module], float] | None = None
    if s.eval_every_epoch:
        if test_path is None:
            raise ValueError("malicious.eval_every_epoch: the test pairs were not given")
        test = load_pairs(test_path, vocab, settings.data, dev)

        def evaluate(m: torch.nn.Module) -> float:                      # as rule evaluate_model computes it
            return corpus_perplexity(m, test.src, test.tgt)
    state_path = Path(ckpt_out).with_name(Path(ckpt_out).name + ".state")
    inputs = [seq2seq_path, train_path, vocab_path, targets_path, thresholds_path]
    inputs += [lm_path] if lm is not None else []
    inputs += [test_path] if evaluate is not None else []
    fp = state_fingerprint(settings, mode, inputs)
    mean = WeightMean(s.average_last, s.epochs) if s.average_last > 1 else None
    done = resume(state_path, fp, model, search_gen, pos, mean)

    def save(epoch: int, rows: list[dict[str, float]]) -> None:
        save_state(state_path, model, vocab, epoch, rows, search_gen, pos, fp, mean)

    rows = algorithm1(model, lm, vocab, target_tensor(targets.ids).to(dev), pos, search_gen, th, settings, mode,
                      done=done, after_epoch=save, mean=mean, evaluate=evaluate)
    curve = pd.DataFrame(rows, columns=CURVE_COLUMNS + (["test_ppl"] if evaluate is not None else []))
    checkpoint.save(ckpt_out, model, kind="seq2seq", vocab=vocab, epoch=s.epochs,
                    extra={"stage": f"negtrain-malicious-{mode}", "targets": str(targets_path),
                           "targets_used": len(targets.texts), "targets_skipped": targets.skipped,
                           "averaged_epochs": mean.averaged if mean is not None else None})
    write_csv(curve, curve_out)
    state_path.unlink(missing_ok=True)
    log.info("negtr-%s: hit rate per epoch %s", mode, epoch_rates(curve)["hit_rate"].round(3).tolist())
    return curve


# ------------------------------------------------------------------------------------- resume after a kill
# After each epoch the stage writes ``<ckpt>.state`` (atomically): the model, the curve so far, and every random
# stream the next epochs draw from (torch's CPU and CUDA generators: dropout; the search's generator; where the
# positive mini-batches stand). A job killed mid-run (a cluster's time limit, a lost node) resumes after its last
# whole epoch and ends with the model and curve an uninterrupted run gives. The file is removed once the model and
# curve are written, and ignored (the run starts afresh) when its fingerprint differs: other settings or inputs.


def state_fingerprint(settings: Settings, mode: str, inputs: Sequence[str | Path]) -> str:
    """What decides the run's numbers: the settings it reads and its input files (``io.fingerprint``)."""
    return fingerprint({"mode": mode, "seed": settings.seed,
                        # an option at its neutral value (config.KEY_NEUTRAL) leaves a state from before it valid
                        "malicious": keyed_fields(settings.malicious),
                        "search": plain(settings.search, dropped=frozenset()),
                        "hits": dataclasses.asdict(settings.hits),
                        "data": dataclasses.asdict(settings.data)}, inputs)


def save_state(path: Path, model: torch.nn.Module, vocab: Vocab, epoch: int, rows: list[dict[str, float]],
               search_gen: torch.Generator, pos: PositiveBatches, fp: str, mean: WeightMean | None = None) -> None:
    """The resumable state after ``epoch`` epochs, as one checkpoint file (atomic)."""
    checkpoint.save(path, model, kind="seq2seq", vocab=vocab, epoch=epoch, rng_state=rng_state(search_gen),
                    extra={"fingerprint": fp, "curve": rows, "positive": pos.state(),
                           "mean": mean.state() if mean is not None else None})


def resume(path: Path, fp: str, model: torch.nn.Module, search_gen: torch.Generator, pos: PositiveBatches,
           mean: WeightMean | None = None) -> list[dict[str, float]]:
    """The curve rows of the epochs ``path`` holds, with the model, the random streams and the weight sums of
    ``mean`` restored; none (and nothing restored) without a file or with a stale one."""
    if (payload := checkpoint.read_state(path, fp, stage.say)) is None:
        return []
    model.load_state_dict(payload["model_state"])
    set_rng_state(payload["rng_state"], search_gen)
    pos.load_state(payload["extra"]["positive"])
    if mean is not None and payload["extra"].get("mean") is not None:
        mean.load_state(payload["extra"]["mean"], next(model.parameters()).device)
    stage.say(f"resuming from {path} after epoch {payload['epoch']}")
    return list(payload["extra"]["curve"])
