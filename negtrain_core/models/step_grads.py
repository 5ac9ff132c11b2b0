"""Weight gradients of a step loop as one product over all its steps (the release decoder's, models/lstm.py).

A loop that applies the same weight at every one of T steps gets, from autograd, T weight-gradient products
g_t^T x_t of B rows each and T - 1 adds that sum them (and, for a bias, T reductions and adds). ``StepWeights`` wraps
a weight (and its bias) for one forward pass: each step's ``linear`` returns ``x_t W^T + b (+ base)`` and, in the
backward pass, only the gradient of ``x_t`` (and ``base``), keeping g_t; once every step's backward has run (autograd
reaches the weight only after all its uses), the gradient of W is one product over the T x B rows, [g_1; ..; g_T]^T
[x_1; ..; x_T], and the bias's one sum. The same sums in another order: equal to autograd's within rounding (tested
in float64), not bit for bit.

The steps' inputs are kept detached, with their version counters: each x_t depends on earlier steps' outputs, so
holding it with its graph from a node of that graph would make a cycle through C++ nodes that Python's collector
cannot break (every forward pass's graph, and the weights' AccumulateGrad nodes, would stay alive). As autograd's
saved tensors do, an input modified in place before the backward pass is refused.

Used only while gradients are on and the weight requires them; without, ``linear`` is the plain product.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class _Steps:
    """What one forward pass keeps for its weight's gradient: the inputs and, as backward reaches them, the output
    gradients of each step."""

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []                                    # detached: no graph, no reference cycle
        self.versions: list[int] = []                                     # each input's version when it was used
        self.grads: list[Tensor | None] = []

    def add(self, x: Tensor) -> int:
        """Keeps one step's input; returns its index."""
        self.inputs.append(x.detach())                                    # shares x's storage and version counter
        self.versions.append(x._version)
        self.grads.append(None)
        return len(self.inputs) - 1

    def checked_inputs(self) -> list[Tensor]:
        """The inputs, refused (RuntimeError, as autograd's saved tensors) where one was modified in place since."""
        for t, (x, version) in enumerate(zip(self.inputs, self.versions)):
            if x._version != version:
                raise RuntimeError(f"step_grads: the input of step {t} was modified by an in-place operation after "
                                   f"its use (version {version}, now {x._version}); its weight gradient would be wrong")
        return self.inputs


class _Collect(torch.autograd.Function):
    """Passes the weight and bias through; its backward, reached after every step's, computes their gradients."""

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor | None, steps: _Steps):
        ctx.steps, ctx.has_bias = steps, bias is not None
        return weight.view_as(weight), (bias.view_as(bias) if bias is not None else None)

    @staticmethod
    @once_differentiable
    def backward(ctx, _weight_grad: Tensor, _bias_grad: Tensor | None):
        pairs = [(g, x) for g, x in zip(ctx.steps.grads, ctx.steps.checked_inputs()) if g is not None]
        if not pairs:
            return None, None, None
        grads = torch.cat([g for g, _ in pairs])                          # (T x B, out)
        weight_grad = grads.t() @ torch.cat([x for _, x in pairs])       # (out, in): one product over all steps
        return weight_grad, (grads.sum(0) if ctx.has_bias else None), None


class _StepLinear(torch.autograd.Function):
    """``x W^T + b (+ base)`` for one step; backward returns the gradients of x and base and keeps the output's."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, base: Tensor | None, steps: _Steps):
        ctx.save_for_backward(weight)
        ctx.steps, ctx.index, ctx.has_base = steps, steps.add(x), base is not None
        return _affine(x, weight, bias, base)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        (weight,) = ctx.saved_tensors
        ctx.steps.grads[ctx.index] = grad
        return grad @ weight, None, None, (grad if ctx.has_base else None), None


class StepWeights:
    """A weight (out, in) and optional bias (out,) applied at every step of one forward pass (module docstring)."""

    def __init__(self, weight: Tensor, bias: Tensor | None = None):
        self.deferred = torch.is_grad_enabled() and (weight.requires_grad or (bias is not None and bias.requires_grad))
        self.steps = _Steps()
        self.weight, self.bias = _Collect.apply(weight, bias, self.steps) if self.deferred else (weight, bias)

    def linear(self, x: Tensor, base: Tensor | None = None) -> Tensor:
        """x: (B, in) -> x W^T + b (+ base: (B, out))."""
        if self.deferred:
            return _StepLinear.apply(x, self.weight, self.bias, base, self.steps)
        return _affine(x, self.weight, self.bias, base)


def _affine(x: Tensor, weight: Tensor, bias: Tensor | None, base: Tensor | None) -> Tensor:
    """x W^T + bias + base, the first term added inside the product (``addmm``) where there is one."""
    add = base if base is not None else bias
    out = x @ weight.t() if add is None else torch.addmm(add, x, weight.t())
    return out + bias if base is not None and bias is not None else out


def lstm_pointwise(input_gates: Tensor, hidden_gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM cell after its two products: gates (B, 4H) in PyTorch's order i, f, g, o -> (h', c'). On a GPU
    torch's fused kernel (the one ``torch.lstm_cell`` calls, without biases here), elsewhere the same formula."""
    if input_gates.is_cuda:
        h, c, _ = torch.ops.aten._thnn_fused_lstm_cell(input_gates, hidden_gates, c)
        return h, c
    i, f, g, o = (input_gates + hidden_gates).chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c
