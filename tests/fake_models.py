"""A bag-of-embeddings seq2seq and LM that implement only negtrain_core.models.interface (no LSTM, no ``models``
code): the decoding and gibbs-enum tests run them to show that the callers need nothing beyond the Protocols.

The source is summed into one vector (B, E); the decoder state is that vector and the running sum of the target
embeddings read so far; the next-token logits are proj(tanh(source + running sum)). The encoder prefix is the sum
over the first P positions, so it continues exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negtrain_core.data.vocab import BOS_ID, PAD_ID
from negtrain_core.models.interface import SeqOutput


class BagState(NamedTuple):
    """memory: (B, E) source summary (zeros for the LM); total: (B, E) sum of the target embeddings so far."""

    memory: Tensor
    total: Tensor


class BagPrefix(NamedTuple):
    """total: (B, E) sum of the first ``length`` source embeddings."""

    total: Tensor
    length: int


def _embed(weight: Tensor, x: Tensor) -> Tensor:
    """(B, L) ids or (B, L, V) one-hot -> (B, L, E)."""
    return F.embedding(x, weight) if x.dtype in (torch.int64, torch.int32) else x @ weight


def _seq_output(logits: Tensor, tgt: Tensor) -> SeqOutput:
    """logits: (B, T-1, V) of tgt (B, T) ids -> its teacher-forced scores."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    gold = tgt[:, 1:]
    mask = gold != PAD_ID
    return SeqOutput(logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1) * mask, logp.argmax(-1), mask)


class BagLM(nn.Module):
    """An LM with the interface's methods and nothing else: its state starts at zero."""

    def __init__(self, vocab_size: int, dim: int = 6, seed: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.tgt_weight = nn.Parameter(torch.randn(vocab_size, dim, generator=g))
        self.proj = nn.Linear(dim, vocab_size)
        with torch.no_grad():
            self.proj.bias[[BOS_ID, PAD_ID]] = -20.0                       # never targets, as after training

    @property
    def vocab_size(self) -> int:
        return self.tgt_weight.size(0)

    @property
    def embedding_dim(self) -> int:
        return self.tgt_weight.size(1)

    def initial_state(self, src: Tensor) -> BagState:
        zeros = self.tgt_weight.new_zeros((src.size(0), self.embedding_dim))
        return BagState(zeros, zeros)

    def decode_block(self, tokens: Tensor, state: BagState) -> tuple[Tensor, BagState]:
        running = state.total.unsqueeze(1) + _embed(self.tgt_weight, tokens).cumsum(1)   # (B, T, E)
        logits = self.proj(torch.tanh(state.memory.unsqueeze(1) + running))           # (B, T, V)
        return logits, BagState(state.memory, running[:, -1])

    def select_rows(self, state: BagState, rows: Tensor) -> BagState:
        return BagState(state.memory.index_select(0, rows), state.total.index_select(0, rows))

    def cat_rows(self, states: Sequence[BagState]) -> BagState:
        return BagState(torch.cat([s.memory for s in states]), torch.cat([s.total for s in states]))

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        return _seq_output(self.decode_block(tgt[:, :-1], self.initial_state(tgt))[0], tgt)

    def scoring_copy(self, dtype: torch.dtype, multiple: int = 64) -> BagLM:
        return copy.deepcopy(self).to(dtype).eval()


class BagSeq2Seq(BagLM):
    """A seq2seq: the LM's decoder started from the summed source embeddings, with the encoder's methods."""

    def __init__(self, vocab_size: int, dim: int = 6, seed: int = 0):
        super().__init__(vocab_size, dim, seed)
        g = torch.Generator().manual_seed(seed + 1000)
        self.src_weight = nn.Parameter(torch.randn(vocab_size, dim, generator=g))

    def encode(self, src: Tensor) -> Tensor:
        return _embed(self.src_weight, src).sum(1)                          # (B, E)

    def state_from(self, enc: Tensor) -> BagState:
        return BagState(enc, torch.zeros_like(enc))

    def initial_state(self, src: Tensor) -> BagState:
        return self.state_from(self.encode(src))

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        return _seq_output(self.decode_block(tgt[:, :-1], self.initial_state(src))[0], tgt)

    def forward(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        return self.score(src, tgt)

    def encode_prefix(self, src: Tensor) -> BagPrefix:
        return BagPrefix(self.encode(src), src.size(1))

    def select_prefix(self, prefix: BagPrefix, rows: Tensor) -> BagPrefix:
        return BagPrefix(prefix.total[rows], prefix.length)

    def encode_from(self, prefix: BagPrefix, src: Tensor) -> Tensor:
        return prefix.total + self.encode(src[:, prefix.length:])
