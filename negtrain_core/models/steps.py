"""The fine-tuning toolkit every training stage takes its steps through: baseline training (models.training),
Algorithm 1 and 2 (negtrain/), the GAN's generator and unlikelihood training (comparisons/).

The update. ``Sgd`` updates parameters from a loss: SGD with momentum and weight decay (dampening 0, no nesterov),
gradients clipped to a total 2-norm. It offers two arithmetics, equal in exact arithmetic but rounding differently,
so that each stage keeps the numbers its results were made with:

- ``"foreach"``: gradients from ``torch.autograd.grad``, then ``clip_grad_norm_`` and ``sgd_momentum_`` below
  (torch's fused SGD kernel where available). No host synchronisation and the learning rate a 0-d device tensor,
  so that a whole step can be captured in one CUDA graph (``GraphedStep``). Baseline training and Algorithm 2.
- ``"torch"``: ``loss.backward()``, ``nn.utils.clip_grad_norm_`` and ``torch.optim.SGD`` (on the CPU a loop over
  the tensors with ``add_(alpha=-lr)``: other roundings than the foreach update). Algorithm 1, the GAN and
  unlikelihood training.

With ``adam`` (an ``AdamRule``; foreach arithmetic only) the same object runs Adam or AdamW instead (``adam_``:
torch.optim.Adam/AdamW's update with the step count a device tensor, no host synchronisation, so it is captured in
a CUDA graph as the SGD step is): the Transformer's baseline training.

Clipping scope: one total norm over all parameters (the default), or, with ``clip_groups``, the norm of each group
of parameters clipped on its own (the release clips its one-hot map, encoder and decoder separately,
``train.clip_scope: per_module``); either way inside the graph of a ``GraphedStep``.

The steps. ``GraphedStep`` is a foreach ``Sgd`` on a fixed-shape loss that a subclass defines, run eagerly or
replayed from a CUDA graph; ``WeightedStep`` is the weighted log-likelihood step of Algorithm 2 (models.training has
the baseline's ``TrainStep``). A replay costs the step's GPU time, not its kernel launches: on a GPU the graphed
baseline step gives the same losses as the eager one, bit for bit, at 2.3x its steps/s
(benchmarks/train_throughput.py).

The losses, on teacher-forced scores (``SeqOutput``: token_logp, mask (B, T') over the scored positions
``tgt[:, 1:]``, token_logp 0 on padding): ``mle_loss`` is the positive step (baseline training, Algorithm 1's
positive step, the GAN's positive training, unlikelihood's MLE term); ``weighted_logp`` the weighted
log-likelihood of a negative step (Algorithm 1, Algorithm 2) or of Algorithm 2's scaled positive step. Decoded
samples (B, L) have no ``<s>`` and anything after ``</s>``; ``as_targets`` makes them targets
``<s> y </s> <pad>..`` (B, L+1).

The streams a run draws from besides its own batches: endless positive (MLE) mini-batches (``PositiveBatches``),
and a random state of its own (``RngSlot``) when several runs are interleaved in one process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID
from negtrain_core.device import capture_graph
from negtrain_core.models.interface import SeqOutput
from negtrain_core.models.scoring import model_output


# ----------------------------------------------------------------------------------------------- the update

Arithmetic = Literal["foreach", "torch"]
GRAPH_WARMUP = 3          # eager steps on a side stream before the capture (CUDA graph docs)
# Every graph is warmed up and captured on a stream of its own, not on torch's one default capture stream: cuBLAS
# keeps a workspace per stream and a graph keeps the one of the stream it was captured on, so graphs captured on one
# shared stream share a workspace, and replayed side by side on different streams (interleaved Algorithm 2 runs) they
# race on it. With a shared capture stream, 4 interleaved runs ended 1.7e-3 away from the same runs alone;
# with a stream per graph, 0.0 (benchmarks/gpu_sharing.py). Interleaved runs had also hung there twice before.


@torch.no_grad()
def clip_grad_norm_(grads: list[Tensor], max_norm: float) -> Tensor:
    """Scale ``grads`` in place to total 2-norm <= ``max_norm`` (as ``nn.utils.clip_grad_norm_``, no host sync).

    Returns the total norm before clipping, a 0-d tensor.
    """
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


def group_indices(params: Sequence[Tensor], groups: Sequence[Sequence[Tensor]]) -> list[list[int]]:
    """The positions in ``params`` of each group's tensors (by identity); the groups must split ``params``: each
    tensor in exactly one group, empty groups left out."""
    where = {id(p): i for i, p in enumerate(params)}
    indices = [[where[id(p)] for p in g if id(p) in where] for g in groups]
    flat = sorted(i for g in indices for i in g)
    if flat != list(range(len(params))) or sum(len(g) for g in groups) != len(flat):
        raise ValueError("clip groups must split the parameters: each one in exactly one group")
    return [g for g in indices if g]


@torch.no_grad()
def clip_groups_(grads: list[Tensor], max_norm: float, groups: list[list[int]]) -> None:
    """``clip_grad_norm_`` of each group of ``grads`` (positions, from ``group_indices``) on its own, in place:
    every group's 2-norm <= ``max_norm``, so the total may reach sqrt(len(groups)) * max_norm."""
    for group in groups:
        clip_grad_norm_([grads[i] for i in group], max_norm)


@torch.no_grad()
def sgd_momentum_(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: Tensor,
                  momentum: float, weight_decay: float, fused: bool | None = None) -> None:
    """``torch.optim.SGD`` (dampening 0, no nesterov) in place, with ``lr`` a 0-d tensor and zero-initialised
    momentum ``bufs``: d = g + wd * p; buf = momentum * buf + d; p -= lr * buf (buf = d on the first step, as in
    torch). ``fused`` (default: when torch has it) runs torch's fused SGD kernel, one pass over the tensors;
    otherwise five foreach passes, ``grads`` being overwritten."""
    if fused is None:
        fused = hasattr(torch, "_fused_sgd_")
    if fused:
        # torch's kernel takes no momentum buffers at momentum 0 (plain SGD, the paper's §4.1 wording)
        torch._fused_sgd_(params, grads, bufs if momentum else [], weight_decay=weight_decay, momentum=momentum, lr=lr,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=False)
        return
    torch._foreach_add_(grads, params, alpha=weight_decay)
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, grads)
    torch._foreach_sub_(params, torch._foreach_mul(bufs, lr))


@dataclass(frozen=True)
class AdamRule:
    """Adam's constants: betas, eps and weight decay, decoupled (AdamW) or added to the gradient (Adam)."""

    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled: bool = True


def adam_buffers(params: list[Tensor]) -> list[Tensor]:
    """Zeroed Adam state, one flat list (saved and restored as SGD's momentum is): the first moments of ``params``,
    their second moments, then the step count (a 0-d float64 tensor: the bias corrections 1 - beta^t in double)."""
    return ([torch.zeros_like(p) for p in params] + [torch.zeros_like(p) for p in params]
            + [torch.zeros((), dtype=torch.float64, device=params[0].device)])


@torch.no_grad()
def adam_(params: list[Tensor], grads: list[Tensor], bufs: list[Tensor], lr: Tensor, rule: AdamRule) -> None:
    """One Adam(W) step in place with ``lr`` a 0-d tensor and ``bufs`` from ``adam_buffers``: t += 1;
    p *= 1 - lr wd (decoupled) or g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps). ``grads`` may be overwritten."""
    n, (b1, b2) = len(params), rule.betas
    exp_avg, exp_avg_sq, step = bufs[:n], bufs[n:2 * n], bufs[2 * n]
    step.add_(1)
    if rule.weight_decay and rule.decoupled:
        torch._foreach_mul_(params, 1 - lr.double() * rule.weight_decay)
    elif rule.weight_decay:
        torch._foreach_add_(grads, params, alpha=rule.weight_decay)
    torch._foreach_lerp_(exp_avg, grads, 1 - b1)
    torch._foreach_mul_(exp_avg_sq, b2)
    torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - b2)
    denom = torch._foreach_sqrt(exp_avg_sq)
    torch._foreach_div_(denom, torch.sqrt(1 - b2 ** step))
    torch._foreach_add_(denom, rule.eps)
    updates = torch._foreach_div(exp_avg, denom)
    torch._foreach_mul_(updates, lr / (1 - b1 ** step))
    torch._foreach_sub_(params, updates)


class OptimizerStep:
    """A torch optimiser's step on a loss: ``loss.backward()``, ``nn.utils.clip_grad_norm_`` (unless ``clip_norm``
    is None; of each of ``clip_groups`` on its own when given), ``opt.step()``. The ``"torch"`` arithmetic of
    ``Sgd``, and the GAN discriminator's Adam."""

    def __init__(self, opt: torch.optim.Optimizer, clip_norm: float | None = None,
                 clip_groups: Sequence[Sequence[Tensor]] | None = None):
        self.opt, self.clip_norm = opt, clip_norm
        self.params = [p for group in opt.param_groups for p in group["params"]]
        self.clip_groups = None if clip_groups is None else [
            [self.params[i] for i in g] for g in group_indices(self.params, clip_groups)]

    def update(self, loss: Tensor) -> Tensor:
        """One step on ``loss`` (0-d); returns it detached (no host sync)."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm is not None:
            for params in self.clip_groups or [self.params]:
                nn.utils.clip_grad_norm_(params, self.clip_norm)
        self.opt.step()
        return loss.detach()


class Sgd:
    """SGD with momentum and weight decay on ``params``, gradients clipped to ``clip_norm`` (None: not clipped; with
    ``clip_groups``, groups of ``params`` that split them, each group's norm on its own), in the ``arithmetic`` a
    stage's results were made with (module docstring); with ``adam``, Adam(W) instead (then ``momentum`` and
    ``weight_decay`` are not read). One object is one optimiser: its momentum (Adam's moments and step count) is its
    own; ``reset`` zeroes it (a fresh optimiser)."""

    def __init__(self, params: Iterable[Tensor], *, lr: float, momentum: float, weight_decay: float = 0.0,
                 clip_norm: float | None = None, arithmetic: Arithmetic = "foreach", adam: AdamRule | None = None,
                 clip_groups: Sequence[Sequence[Tensor]] | None = None):
        if arithmetic not in ("foreach", "torch"):
            raise ValueError(f"Sgd: unknown arithmetic {arithmetic!r}")
        if adam is not None and arithmetic != "foreach":
            raise ValueError("Sgd: the Adam update has the foreach arithmetic only")
        self.params, self.arithmetic, self.adam = list(params), arithmetic, adam
        self.clip_norm, self.momentum, self.weight_decay = clip_norm, momentum, weight_decay
        self.clip_groups = None if clip_groups is None else group_indices(self.params, clip_groups)
        if arithmetic == "torch":
            sgd = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay)
            self.torch_step = OptimizerStep(sgd, clip_norm, clip_groups)
            return
        self.bufs = adam_buffers(self.params) if adam else [torch.zeros_like(p) for p in self.params]
        self.lr = torch.full((), float(lr), device=self.params[0].device)

    def update(self, loss: Tensor) -> Tensor:
        """One step on ``loss`` (0-d); returns it detached (no host sync)."""
        if self.arithmetic == "torch":
            return self.torch_step.update(loss)
        grads = list(torch.autograd.grad(loss, self.params))
        if self.clip_norm is not None and self.clip_groups is not None:
            clip_groups_(grads, self.clip_norm, self.clip_groups)
        elif self.clip_norm is not None:
            clip_grad_norm_(grads, self.clip_norm)
        if self.adam is not None:
            adam_(self.params, grads, self.bufs, self.lr, self.adam)
        else:
            sgd_momentum_(self.params, grads, self.bufs, self.lr, self.momentum, self.weight_decay)
        return loss.detach()

    def set_lr(self, lr: float) -> None:
        if self.arithmetic == "torch":
            for group in self.torch_step.opt.param_groups:
                group["lr"] = lr
        else:
            self.lr.fill_(lr)

    def reset(self) -> None:
        """Zero the momentum, as a new optimiser would start (in place: a captured graph keeps its buffers)."""
        if self.arithmetic == "torch":
            self.torch_step.opt.state.clear()
        else:
            torch._foreach_zero_(self.bufs)


# --------------------------------------------------------------------------- fixed-shape steps, CUDA graphs


class GraphedStep(Sgd):
    """One foreach SGD step (gradients of a loss, clipping, weight decay, momentum; Adam's with ``adam``) on
    fixed-shape inputs; eager or
    replayed from one CUDA graph captured on the first calls whose batch has ``batch_size`` rows (smaller batches,
    and every call without ``use_graph``, run eagerly).

    Subclasses give ``loss(*inputs) -> (report, loss)``: ``loss`` (0-d) is differentiated, ``report`` (0-d,
    detached) is returned by the call. A replayed step returns the graph's static output, overwritten by the next
    replay: consume it at once. The graph reads static input buffers, the learning rate as a device tensor and the
    momentum buffers ``bufs`` in place, so ``set_lr`` and ``reset`` apply to it.
    """

    def __init__(self, model: nn.Module, *, clip_norm: float, momentum: float, weight_decay: float, lr: float,
                 batch_size: int, use_graph: bool, adam: AdamRule | None = None,
                 clip_groups: Sequence[Sequence[Tensor]] | None = None, graph_option: str = "train.cuda_graph"):
        super().__init__(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                         clip_norm=clip_norm, adam=adam, clip_groups=clip_groups)
        self.model, self.batch_size, self.use_graph = model, batch_size, use_graph
        self.graph_option = graph_option                     # the config key named if the capture fails
        self.graph: torch.cuda.CUDAGraph | None = None
        self.stream: torch.cuda.Stream | None = None       # warm-up and capture stream, made on the first graphed call
        self.calls = 0

    def loss(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def eager(self, *inputs: Tensor) -> Tensor:
        report, loss = self.loss(*inputs)
        self.update(loss)
        return report

    def __call__(self, *inputs: Tensor) -> Tensor:
        if not self.use_graph or inputs[0].shape[0] != self.batch_size:
            return self.eager(*inputs)
        self.calls += 1
        if self.calls <= GRAPH_WARMUP:
            return self._side_stream(*inputs)
        if self.graph is None:
            self._capture(*inputs)
        for static, x in zip(self.static_inputs, inputs):
            static.copy_(x)
        self.graph.replay()
        return self.static_report

    def _side_stream(self, *inputs: Tensor) -> Tensor:
        stream = self._own_stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            report = self.eager(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        return report

    def _own_stream(self) -> torch.cuda.Stream:
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        return self.stream

    def _capture(self, *inputs: Tensor) -> None:
        """Record (not run) the step on static buffers shaped like ``inputs``, on the step's own stream (see the
        note at ``GRAPH_WARMUP``)."""
        self.static_inputs = [x.clone() for x in inputs]
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with capture_graph(self.graph, self.graph_option, stream=self._own_stream()):
            self.static_report = self.eager(*self.static_inputs)


class WeightedStep(GraphedStep):
    """Fine-tuning on weighted token log-probs: loss = sum(log p(tgt_t) * weights_t) / max(norm, 1)
    (``losses.weighted_logp``).

    src (B, S), tgt (B, T), weights (B, T-1) (0 on padding), norm a 0-d count; positive weights lower the
    log-likelihood (a negative step), negative weights raise it (MLE). Returns the loss (0-d).
    """

    def loss(self, src: Tensor, tgt: Tensor, weights: Tensor, norm: Tensor) -> tuple[Tensor, Tensor]:
        loss = weighted_logp(model_output(self.model, src, tgt).token_logp, weights, norm)
        return loss.detach(), loss


# --------------------------------------------------------------------------------------- losses and targets


def token_nll(out: SeqOutput) -> tuple[Tensor, Tensor]:
    """-> (summed negative log-likelihood of the real target tokens, the same per token), both 0-d."""
    nll = -out.token_logp.sum()
    return nll, nll / out.mask.sum().clamp(min=1)


def mle_loss(out: SeqOutput) -> Tensor:
    """The positive objective: mean negative log-likelihood per real target token (``</s>`` counted), 0-d."""
    return token_nll(out)[1]


def weighted_logp(token_logp: Tensor, weights: Tensor, norm: Tensor) -> Tensor:
    """token_logp, weights: (B, T'); norm: 0-d count -> sum(token_logp * weights) / max(norm, 1), to be minimised:
    positive weights lower the log-likelihood (a negative step), negative ones raise it."""
    return (token_logp * weights).sum() / norm.clamp(min=1)


def mask_after_eos(samples: Tensor) -> Tensor:
    """samples: (B, L) decoded ids -> the same with every position strictly after the first ``</s>`` ``<pad>``."""
    ended = (samples == EOS_ID).long().cumsum(1)
    after_eos = (ended - (samples == EOS_ID).long()) > 0                     # (B, L) strictly after the first </s>
    return samples.masked_fill(after_eos, PAD_ID)


def with_bos(rows: Tensor) -> Tensor:
    """rows: (B, L) responses already masked after ``</s>`` -> (B, L+1) targets ``<s> y </s> <pad>..``."""
    return torch.cat([torch.full_like(rows[:, :1], BOS_ID), rows], dim=1)


def as_targets(samples: Tensor) -> Tensor:
    """samples: (B, L) decoded ids -> (B, L+1) targets ``<s> y </s> <pad>..`` (anything after ``</s>`` padded)."""
    return with_bos(mask_after_eos(samples))


# -------------------------------------------------------------------------------------------------- streams


class PositiveBatches(Iterator[tuple[Tensor, Tensor]]):
    """Endless mini-batches (src (b, S), tgt (b, T)) of the training pairs src (N, S), tgt (N, T): each pass a new
    permutation from the CPU ``generator`` (file order when ``shuffle`` is False: the release's Algorithm 1 stream),
    moved to the pairs' device and cut into ``batch_size`` rows, so each pair comes once per pass. A pass's short
    last batch is kept (Algorithm 2's ``positive_batch: stream``) or, with ``full_only``, dropped unless it is the
    pass's only one (Algorithm 1; Algorithm 2 with ``drop_last_batch``).

    ``state()`` is where the stream stands (the generator's state before the current pass's permutation, and the
    next batch's index in it), ``load_state`` returns to it: a resumed run draws the batches it would have drawn.
    """

    def __init__(self, src: Tensor, tgt: Tensor, batch_size: int, generator: torch.Generator,
                 full_only: bool = False, shuffle: bool = True):
        self.src, self.tgt, self.batch_size, self.generator, self.full_only = src, tgt, batch_size, generator, full_only
        self.shuffle = shuffle
        self._chunks: tuple[Tensor, ...] = ()
        self._next = 0
        self._pass_start: Tensor | None = None       # the generator's state before the current pass's permutation

    def _new_pass(self) -> None:
        self._pass_start = self.generator.get_state()
        order = torch.randperm(len(self.src), generator=self.generator) if self.shuffle else torch.arange(len(self.src))
        chunks = order.to(self.src.device).split(self.batch_size)
        if self.full_only and len(chunks) > 1 and len(chunks[-1]) < self.batch_size:
            chunks = chunks[:-1]
        self._chunks, self._next = chunks, 0

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self._next >= len(self._chunks):
            self._new_pass()
        idx = self._chunks[self._next]
        self._next += 1
        return self.src[idx], self.tgt[idx]

    def state(self) -> dict[str, Any]:
        """Where the stream stands: tensors and ints (a checkpoint's weights_only-safe contents)."""
        return {"pass_start": self._pass_start, "next": self._next}

    def load_state(self, state: dict[str, Any]) -> None:
        if state["pass_start"] is None:               # no batch drawn yet
            return
        self.generator.set_state(state["pass_start"])
        self._new_pass()
        self._next = state["next"]


class RngSlot:
    """A private random state (torch's CPU generator and, on a GPU, the device's default CUDA generator: dropout
    draws from these), swapped in by ``active``. Runs interleaved in one process each draw from their own slot, so
    each run's dropout masks are those it would draw alone, whatever runs beside it.

    The CPU state is swapped by value. The CUDA state is a state object of its own (``Generator.clone_state``),
    swapped in with ``graphsafe_set_state``: a CUDA graph captured while it is in keeps it, and each replay writes
    that object's seed and offset to the object's own device tensors, on the replaying stream, for the graph's
    kernels to read. Swapping values into the one default state instead (``set_rng_state``) left every run's graphs
    reading one shared pair of device tensors, which a replay on another stream could overwrite before this graph's
    dropout kernels read them: at paper scale the interleaved runs drew other dropout masks than alone (Switchboard
    docs/reproduction/switchboard/README.md)."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.gen = self.cuda = None
        if device.type == "cuda":
            index = torch.cuda.current_device() if device.index is None else device.index
            self.gen = torch.cuda.default_generators[index]
            self.cuda = self.gen.clone_state()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        saved_cpu = torch.get_rng_state()
        saved_cuda = self.gen.graphsafe_get_state() if self.gen is not None else None
        torch.set_rng_state(self.cpu)
        if self.gen is not None:
            self.gen.graphsafe_set_state(self.cuda)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            torch.set_rng_state(saved_cpu)
            if self.gen is not None:
                self.gen.graphsafe_set_state(saved_cuda)

    def state(self) -> dict[str, Any]:
        """The slot's random state (its CPU state, its CUDA state object's seed and offset), for a resumable run."""
        return {"cpu": self.cpu.clone(), "cuda": self.cuda.get_state() if self.cuda is not None else None}

    def load_state(self, state: dict[str, Any]) -> None:
        self.cpu = state["cpu"].clone()
        if self.cuda is not None and state["cuda"] is not None:
            self.cuda.set_state(state["cuda"])
