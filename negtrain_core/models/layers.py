"""Layers shared by the networks: the one-hot input embedding of Section 2.

The encoder reads its input through ``OneHotEmbedding``: token ids use a lookup, while a float tensor of one-hot rows
(B, L, V) goes through a matmul, so the gradient of any loss with respect to each one-hot input position is available
directly (gibbs-enum, Appendix A, needs it; docs/release.md#models).

Its initialisation (``init``): ``uniform`` U(±0.1) without bias (ours); ``linear`` the release's one-hot map, an
``nn.Linear(V, E)`` at PyTorch's default, weight and bias U(±1/sqrt(V)) (baseline script L189, ``LSTMLM_onehot``);
``normal`` the release's decoder ``nn.Embedding`` at PyTorch's default, N(0, 1) without bias (models.py L148).
"""

from __future__ import annotations

import math

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn


INITS = ("uniform", "linear", "normal")


class OneHotEmbedding(nn.Module):
    """A linear map applied to one-hot vectors; ids take the equivalent lookup. ``weight`` (V, E); ``bias`` (E,)
    only with ``init="linear"`` (the release's ``nn.Linear``), added to every position, padding included."""

    def __init__(self, vocab_size: int, dim: int, init: str = "uniform"):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"OneHotEmbedding: unknown init {init!r} (expected one of {', '.join(INITS)})")
        bound = 1.0 / math.sqrt(vocab_size)                          # nn.Linear's default: U(±1/sqrt(fan_in))
        weight = torch.empty(vocab_size, dim)
        if init == "uniform":
            weight.uniform_(-0.1, 0.1)
        elif init == "normal":
            weight.normal_(0.0, 1.0)
        else:
            weight.uniform_(-bound, bound)
        self.weight = nn.Parameter(weight)
        bias = torch.empty(dim).uniform_(-bound, bound) if init == "linear" else None
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L) ids or (B, L, V) float one-hot rows -> (B, L, E)."""
        if x.dtype in (torch.int64, torch.int32):
            out = F.embedding(x, self.weight)
        else:
            out = x @ self.weight
        return out if self.bias is None else out + self.bias


def padded_output_copy(model: nn.Module, dtype: torch.dtype, multiple: int = 64) -> nn.Module:
    """An eval-mode copy of ``model`` in ``dtype`` whose output layer ``out`` (a Linear H -> V) has rows padded to
    ``multiple``, the padded rows' bias -inf.

    Padding keeps half-precision GEMMs on aligned tensor-core kernels (V = 10,005 is odd); the padded logits are
    -inf, so log-softmax and the gold log-probs are the original's. A tied input embedding stays as it was.
    """
    m = copy.deepcopy(model).to(dtype).eval()
    V, H = m.out.out_features, m.out.in_features
    pad = -V % multiple
    if pad:
        out = nn.Linear(H, V + pad).to(device=m.out.weight.device, dtype=dtype)
        with torch.no_grad():
            out.weight.zero_()
            out.weight[:V] = m.out.weight
            out.bias.fill_(float("-inf"))
            out.bias[:V] = m.out.bias
        m.out = out
    return m
