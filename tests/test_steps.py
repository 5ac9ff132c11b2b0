"""The fine-tuning toolkit (negtrain_core.models.steps): the foreach step against torch's, both arithmetics of ``Sgd``,
the CUDA-graphed step against the eager one (GPU only), the losses by hand, the positive streams, ``RngSlot``."""

from __future__ import annotations

import copy

import pytest
import torch

from negtrain_core.config import ModelSettings
from negtrain_core.data.tensors import batch_order
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID
from negtrain_core.models import steps
from negtrain_core.models.interface import SeqOutput
from negtrain_core.models.lstm import Seq2Seq

V = 12


def _model(seed: int = 0, dropout: float = 0.0, device: str = "cpu") -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=dropout)).to(device)


def _batch(n: int = 4, seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(5, V, (n, 6), generator=g)
    tgt = torch.cat([torch.full((n, 1), BOS_ID), torch.randint(5, V, (n, 3), generator=g),
                     torch.full((n, 1), EOS_ID)], 1)
    return src.to(device), tgt.to(device)


def grads_like(params: list[torch.Tensor], scale: float, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g) * scale for p in params]


# ------------------------------------------------------------------------------------------- the foreach update


@pytest.mark.parametrize("scale", [0.01, 10.0])            # below and above the clipping threshold
def test_clip_equals_torch(scale: float):
    params = [torch.zeros(3, 4), torch.zeros(5)]
    ours, ref = grads_like(params, scale, 0), grads_like(params, scale, 0)
    for p, g in zip(params, ref):
        p.grad = g
    norm_ref = torch.nn.utils.clip_grad_norm_(params, 5.0)
    norm = steps.clip_grad_norm_(ours, 5.0)
    torch.testing.assert_close(norm, norm_ref)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    assert (norm > 5.0) == (scale == 10.0)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
@pytest.mark.parametrize("fused", [True, False])
def test_sgd_momentum_step_equals_torch_optim_sgd(fused: bool, momentum: float):
    torch.manual_seed(0)
    ours = [torch.randn(4, 3), torch.randn(7)]
    ref = [p.clone().requires_grad_() for p in ours]
    opt = torch.optim.SGD(ref, lr=0.7, momentum=momentum, weight_decay=1e-2)
    bufs, lr = [torch.zeros_like(p) for p in ours], torch.tensor(0.7)
    for t in range(6):
        if t == 3:                                           # an epoch boundary: the lr changes
            lr.fill_(0.42)
            opt.param_groups[0]["lr"] = 0.42
        grads = grads_like(ours, 1.0, t)
        for p, g in zip(ref, grads):
            p.grad = g.clone()
        opt.step()
        steps.sgd_momentum_(ours, grads, bufs, lr, momentum, 1e-2, fused=fused)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------------------------ Sgd


def _mle(model: Seq2Seq, seed: int) -> torch.Tensor:
    return steps.mle_loss(model(*_batch(seed=seed)))


def test_torch_arithmetic_is_torch_optim_sgd_bit_for_bit():
    """Sgd("torch") = backward, nn.utils.clip_grad_norm_, torch.optim.SGD: the same weights, bit for bit."""
    ours, ref = _model(), _model()
    sgd = steps.Sgd(ours.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-3, clip_norm=0.5, arithmetic="torch")
    opt = torch.optim.SGD(ref.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-3)
    for t in range(4):
        loss = sgd.update(_mle(ours, t))
        opt.zero_grad()
        ref_loss = _mle(ref, t)
        ref_loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        opt.step()
        assert torch.equal(loss, ref_loss.detach()) and not loss.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters()))


def test_the_two_arithmetics_agree_to_rounding():
    a, b = _model(), _model()
    kw = dict(lr=0.3, momentum=0.9, weight_decay=1e-3, clip_norm=0.5)
    foreach, torch_sgd = steps.Sgd(a.parameters(), **kw), steps.Sgd(b.parameters(), **kw, arithmetic="torch")
    for t in range(4):
        foreach.update(_mle(a, t))
        torch_sgd.update(_mle(b, t))
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arithmetic", ["foreach", "torch"])
def test_reset_and_set_lr_give_a_fresh_optimiser(arithmetic: str):
    """After ``reset`` and ``set_lr`` a step equals the step of a new optimiser at that lr from the same weights."""
    model = _model()
    kw = dict(momentum=0.9, weight_decay=1e-3, clip_norm=1.0, arithmetic=arithmetic)
    sgd = steps.Sgd(model.parameters(), lr=0.3, **kw)
    for t in range(3):
        sgd.update(_mle(model, t))
    twin = copy.deepcopy(model)
    sgd.reset()
    sgd.set_lr(0.1)
    sgd.update(_mle(model, 5))
    steps.Sgd(twin.parameters(), lr=0.1, **kw).update(_mle(twin, 5))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_unknown_arithmetic_is_refused():
    with pytest.raises(ValueError, match="unknown arithmetic"):
        steps.Sgd(_model().parameters(), lr=0.1, momentum=0.0, arithmetic="adam")


def test_weighted_step_without_graph_is_the_foreach_sgd_step_on_its_loss():
    ours, ref = _model(), _model()
    src, tgt = _batch()
    weights, norm = torch.rand(4, 4) * (tgt[:, 1:] != PAD_ID), torch.tensor(7)
    step = steps.WeightedStep(ours, clip_norm=0.5, momentum=0.9, weight_decay=1e-3, lr=0.3, batch_size=4,
                              use_graph=False)
    sgd = steps.Sgd(ref.parameters(), lr=0.3, momentum=0.9, weight_decay=1e-3, clip_norm=0.5)
    for _ in range(3):
        report = step(src, tgt, weights, norm)
        want = sgd.update(steps.weighted_logp(ref(src, tgt).token_logp, weights, norm))
        assert torch.equal(report, want)
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graph_replays_give_the_eager_steps():
    """Past the warm-up, a WeightedStep replayed from its CUDA graph moves the weights as the eager step does (a
    short last batch runs eagerly), dropout included: both draw from the same CUDA random state."""
    runs = {}
    for use_graph in (False, True):
        model = _model(dropout=0.3, device="cuda")
        step = steps.WeightedStep(model, clip_norm=0.5, momentum=0.9, weight_decay=1e-3, lr=0.3, batch_size=4,
                                  use_graph=use_graph)
        torch.cuda.manual_seed(0)
        model.train()
        reports = []
        for t in range(steps.GRAPH_WARMUP + 4):
            src, tgt = _batch(3 if t == steps.GRAPH_WARMUP + 2 else 4, seed=t, device="cuda")
            weights = -(tgt[:, 1:] != PAD_ID).float()
            reports.append(step(src, tgt, weights, (tgt[:, 1:] != PAD_ID).sum()).clone())
            if t == steps.GRAPH_WARMUP + 1:
                step.reset()                                     # in place: the graph keeps its buffers
                step.set_lr(0.2)
        torch.cuda.synchronize()
        runs[use_graph] = torch.stack(reports).cpu(), [p.detach().cpu() for p in model.parameters()]
    (eager, w_eager), (graphed, w_graphed) = runs[False], runs[True]
    assert torch.equal(eager, graphed)
    assert all(torch.equal(a, b) for a, b in zip(w_eager, w_graphed))


class _FailingCapture:
    """Stands in for ``torch.cuda.graph``: the body runs, then ending the capture fails, as CUDA reports an operation
    a graph cannot hold (a host read inside the step, say)."""

    def __init__(self, graph, **kwargs):
        self.kwargs = kwargs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")


@pytest.mark.parametrize("option", ["train.cuda_graph", "malicious.cuda_graph"])
def test_a_failed_capture_is_one_line_naming_the_config_key(monkeypatch, option):
    """A capture that fails ends the job with one line that names the key turning the graph off (the stage keeps a
    package error's message); out of memory passes unchanged (also where ending the capture then fails), for the callers
    that halve their batches on it."""
    from negtrain_core import device, stage

    monkeypatch.setattr(torch.cuda, "graph", _FailingCapture)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(steps.GraphedStep, "_own_stream", lambda self: None)
    step = steps.WeightedStep(_model(), clip_norm=0.5, momentum=0.9, weight_decay=0.0, lr=0.1, batch_size=4,
                              use_graph=True, graph_option=option)
    src, tgt = _batch()
    with pytest.raises(device.GraphCaptureError) as err:
        step._capture(src, tgt, -(tgt[:, 1:] != PAD_ID).float(), torch.tensor(4))
    message = str(err.value)
    assert "\n" not in message and f"'{option}: false'" in message
    assert "not permitted when stream is capturing" in message
    assert stage.error_line(err.value) == "negtrain: " + message

    def out_of_memory(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(torch.cuda, "graph", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        with device.capture_graph(object(), option):
            pass

    class EndFails:                                   # ending the capture fails after the body ran out of memory
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            raise RuntimeError("CUDA error: operation failed due to a previous error during capture")

    monkeypatch.setattr(torch.cuda, "graph", EndFails)
    with pytest.raises(torch.OutOfMemoryError):
        with device.capture_graph(object(), option):
            raise torch.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(device.GraphCaptureError):     # without one it stays a capture error
        with device.capture_graph(object(), option):
            pass


# --------------------------------------------------------------------------------------------------- losses


def test_losses_by_hand():
    mask = torch.tensor([[True, True, False], [True, False, False]])
    out = SeqOutput(torch.tensor([[-1.0, -2.0, 0.0], [-3.0, 0.0, 0.0]]), torch.zeros(2, 3, dtype=torch.long), mask)
    nll, per_token = steps.token_nll(out)
    assert nll.item() == 6.0 and per_token.item() == 2.0 and steps.mle_loss(out).item() == 2.0
    weights = torch.tensor([[1.0, 0.5, 0.0], [0.1, 0.0, 0.0]])
    assert steps.weighted_logp(out.token_logp, weights, torch.tensor(4)).item() == pytest.approx(-2.3 / 4)
    assert steps.weighted_logp(out.token_logp, weights, torch.tensor(0)).item() == pytest.approx(-2.3)   # max(0, 1)


def test_as_targets_pads_after_the_first_eos():
    samples = torch.tensor([[5, EOS_ID, 6, EOS_ID], [7, 8, 9, 10]])
    assert steps.as_targets(samples).tolist() == [[BOS_ID, 5, EOS_ID, PAD_ID, PAD_ID], [BOS_ID, 7, 8, 9, 10]]


# -------------------------------------------------------------------------------------------------- streams


def test_positive_batches_visit_each_pair_once_per_pass():
    src = torch.arange(10).unsqueeze(1)
    batches = steps.PositiveBatches(src, src, 3, torch.Generator().manual_seed(0))
    one_pass = [next(batches)[0] for _ in range(4)]                   # 3 + 3 + 3 + the short last batch of 1
    assert [len(b) for b in one_pass] == [3, 3, 3, 1]
    assert sorted(torch.cat(one_pass).flatten().tolist()) == list(range(10))


def test_positive_batches_full_only_drop_the_short_last_batch_unless_it_is_the_only_one():
    src = torch.arange(10).unsqueeze(1)
    batches = steps.PositiveBatches(src, src + 100, 3, torch.Generator().manual_seed(0), full_only=True)
    first = [next(batches) for _ in range(3)]
    seen = torch.cat([s for s, _ in first]).flatten().tolist()       # 3 full batches of one pass
    assert len(set(seen)) == 9 and all(torch.equal(t, s + 100) for s, t in first)
    assert len(next(batches)[0]) == 3                                # the next pass, not a batch of 1
    few = steps.PositiveBatches(src[:2], src[:2], 3, torch.Generator().manual_seed(0), full_only=True)
    assert len(next(few)[0]) == 2


def test_positive_batches_follow_the_shuffled_batch_order():
    """Pass after pass, the batches of ``batch_order`` with the same generator (Algorithm 2's positive stream)."""
    src, n = torch.arange(10).unsqueeze(1), 10
    batches = steps.PositiveBatches(src, src, 4, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    want = batch_order(n, 4, shuffle=True, generator=gen) + batch_order(n, 4, shuffle=True, generator=gen)
    assert all(torch.equal(next(batches)[0].flatten(), idx) for idx in want)


def test_rng_slots_draw_what_each_draws_alone():
    torch.manual_seed(0)
    a, b = steps.RngSlot(torch.device("cpu")), steps.RngSlot(torch.device("cpu"))
    outside = torch.get_rng_state()
    draws = {"a": [], "b": []}
    for _ in range(3):
        for name, slot in (("a", a), ("b", b)):
            with slot.active():
                draws[name].append(torch.rand(2))
    assert torch.equal(torch.get_rng_state(), outside)               # the state outside is left as it was
    torch.manual_seed(0)
    alone = [torch.rand(2) for _ in range(3)]
    for name in draws:
        assert all(torch.equal(x, y) for x, y in zip(draws[name], alone))
