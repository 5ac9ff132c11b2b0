"""Layers shared by the networks: the one-hot input embedding of Section 2.

The encoder reads its input through ``OneHotEmbedding``: token ids use a lookup, while a float tensor of one-hot rows
(B, L, V) goes through a matmul, so the gradient of any loss with respect to each one-hot input position is available
directly (gibbs-enum, Appendix A, needs it; docs/release.md#models).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OneHotEmbedding(nn.Module):
    """A linear map applied to one-hot vectors; ids take the equivalent lookup."""

    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, dim).uniform_(-0.1, 0.1))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L) ids or (B, L, V) float one-hot rows -> (B, L, E)."""
        if x.dtype in (torch.int64, torch.int32):
            return F.embedding(x, self.weight)
        return x @ self.weight
