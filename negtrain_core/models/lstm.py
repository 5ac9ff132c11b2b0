"""The LSTM language model and the attention seq2seq of He & Glass (ACL 2020), Section 2.

Both models read their input through ``OneHotEmbedding``: token ids use a lookup, while a float tensor of one-hot
rows (batch, length, V) goes through a matmul, so the gradient of any loss with respect to each one-hot input
position is available directly (gibbs-enum, Appendix A, needs it; shared/REFERENCE_NOTES.md "Models").

``forward`` returns per-token log-probs of the gold next tokens and the greedy (argmax) prediction, so the
training loss, the hit criteria and the search share one code path. Shapes: B batch, S source length,
T target length (``<s> y_1 .. y_m </s> <pad>..``), V vocabulary, E embedding, H hidden.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import PAD_ID


class SeqOutput(NamedTuple):
    """Teacher-forced scores of ``tokens[:, 1:]``.

    token_logp: (B, T-1) log p(y_t | y_<t, x) of the gold token, 0 where ``mask`` is False.
    greedy:     (B, T-1) argmax token at each step.
    mask:       (B, T-1) True on real (non-pad) target positions.
    """

    token_logp: Tensor
    greedy: Tensor
    mask: Tensor


class Encoded(NamedTuple):
    """Encoder output. out: (B, S, H); src_mask: (B, S) True on real tokens; state: ((L,B,H), (L,B,H))."""

    out: Tensor
    src_mask: Tensor
    state: tuple[Tensor, Tensor]


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


def _score(logits: Tensor, gold: Tensor) -> SeqOutput:
    """logits: (B, T', V); gold: (B, T') -> SeqOutput."""
    logp = F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)  # half -> float
    mask = gold != PAD_ID
    token_logp = logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1) * mask
    return SeqOutput(token_logp, logp.argmax(-1), mask)


def _ids(x: Tensor) -> Tensor:
    """Token ids of an id tensor or of one-hot rows (argmax)."""
    return x if x.dtype in (torch.int64, torch.int32) else x.argmax(-1)


class LSTMLM(nn.Module):
    """1-layer LSTM LM (paper §4.1; footnote 6: trained on responses as independent sentences)."""

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        self.embed = OneHotEmbedding(cfg.vocab_size, cfg.embedding_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = nn.LSTM(cfg.embedding_dim, cfg.hidden_dim, cfg.num_layers, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)

    def logits(self, tokens: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple]:
        """tokens: (B, T) ids or (B, T, V) one-hot -> logits (B, T, V) for the next token, final state."""
        h, state = self.rnn(self.drop(self.embed(tokens)), state)  # (B, T, H)
        return self.out(self.drop(h)), state

    def forward(self, tokens: Tensor) -> SeqOutput:
        """tokens: (B, T) ids or (B, T, V) one-hot, starting with <s> -> scores of tokens[:, 1:]."""
        logits, _ = self.logits(tokens[:, :-1])
        return _score(logits, _ids(tokens)[:, 1:])


class Seq2Seq(nn.Module):
    """LSTM encoder-decoder with Luong global attention (paper §2).

    attention="general": score(h_t, h_s) = h_t^T W_a h_s on the decoder output h_t (Luong et al. 2015), padded
    source positions masked when ``mask_source_padding``. attention="release": the authors' release computes the
    query from the decoder input embedding and the previous decoder state and does not mask padding.
    """

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        E, H, V = cfg.embedding_dim, cfg.hidden_dim, cfg.vocab_size
        self.src_embed = OneHotEmbedding(V, E)
        self.tgt_embed = OneHotEmbedding(V, E)          # the decoder has its own embedding (release)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.LSTM(E, H, cfg.num_layers, batch_first=True)
        self.decoder = nn.LSTM(E, H, cfg.num_layers, batch_first=True)
        q_in = H if cfg.attention == "general" else E + H
        self.attn_q = nn.Linear(q_in, H, bias=False)    # W_a (general) or the release's query map
        self.combine = nn.Linear(2 * H, H)              # W_c [c_t; h_t]
        self.out = nn.Linear(H, V)

    def encode(self, src: Tensor) -> Encoded:
        """src: (B, S) ids or (B, S, V) one-hot, left-padded with <pad>."""
        out, state = self.encoder(self.drop(self.src_embed(src)))  # (B, S, H)
        return Encoded(out, _ids(src) != PAD_ID, state)

    def _attend(self, query: Tensor, enc: Encoded) -> Tensor:
        """query: (B, T, H) -> context (B, T, H)."""
        scores = query @ enc.out.transpose(1, 2)  # (B, T, S)
        if self.cfg.attention == "general" and self.cfg.mask_source_padding:
            scores = scores.masked_fill(~enc.src_mask.unsqueeze(1), float("-inf"))
        return torch.softmax(scores, dim=-1) @ enc.out

    def decode(self, tgt_in: Tensor, enc: Encoded, state: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """tgt_in: (B, T) ids -> logits (B, T, V) and the decoder state after the last step.

        ``state`` None starts from the encoder's final state; step-by-step decoding passes the previous one.
        """
        state = enc.state if state is None else state
        emb = self.drop(self.tgt_embed(tgt_in))               # (B, T, E)
        h, new_state = self.decoder(emb, state)               # (B, T, H)
        if self.cfg.attention == "general":
            query = self.attn_q(h)
        else:
            prev = torch.cat([state[0][-1].unsqueeze(1), h[:, :-1]], dim=1)  # h_{t-1}: (B, T, H)
            query = self.attn_q(torch.cat([emb, prev], dim=-1))
        ctx = self._attend(query, enc)                        # (B, T, H)
        hid = torch.tanh(self.combine(torch.cat([ctx, h], dim=-1)))
        return self.out(self.drop(hid)), new_state

    def forward(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """src: (B, S) ids or (B, S, V) one-hot; tgt: (B, T) ids ``<s> y </s> <pad>..`` -> scores of tgt[:, 1:]."""
        logits, _ = self.decode(tgt[:, :-1], self.encode(src))
        return _score(logits, tgt[:, 1:])


def fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with its LSTM weights in one contiguous cuDNN buffer again (``copy.deepcopy`` splits
    them, and cuDNN would then re-pack them on every call); a no-op beyond the copy on CPU."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()
    return twin
