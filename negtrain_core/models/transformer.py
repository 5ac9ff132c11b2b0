"""A pre-layer-norm Transformer encoder-decoder and decoder-only LM behind the model interface (``model.arch:
transformer``), on the same data as the LSTM models of models/lstm.py.

The blocks are pre-LN (``x + f(LayerNorm(x))``, a final LayerNorm before the output layer). Attention keeps its
weights in an ``nn.MultiheadAttention`` (``in_proj``, ``out_proj``, its dropout) and computes with
``F.scaled_dot_product_attention``, the same function for every block, so that the keys and values of the tokens
already decoded can be cached: incremental decoding (``decode_block``, T = 1 per step) reuses them, and a teacher-
forced block (T > 1, ``score``) is the same code with a causal mask over the block.

- Inputs: token embeddings through ``OneHotEmbedding`` (ids, or (B, L, V) float one-hot rows: gibbs-enum takes the
  gradient with respect to the one-hot source, and to the LM's one-hot input) times sqrt(d_model), plus learned or
  sinusoidal positions (``model.transformer.positions``), then dropout.
- Masks: sources are left-padded with ``<pad>``: the encoder's keys and the decoder's cross-attention skip pad
  positions, and a source's positions count from its first real token (so the padding width moves nothing); a
  row with no real token attends to all of its positions rather than to none. Targets are right-padded: the causal
  mask alone keeps every real position off the padding after it.
- ``tie_embeddings``: the output layer's weight is the decoder's (the LM's) input embedding;
  ``share_source_embedding``: the encoder's token table is the decoder's as well (its position table stays its own).
- States are the key-value caches: ``LMState`` for the LM, ``DecoderState`` (the cross-attention keys and values
  of the encoder output, computed once, and the self-attention cache) for the seq2seq; ``select_rows`` and
  ``cat_rows`` index and concatenate every cached tensor along the rows. ``decode_block`` has no host
  synchronisation (the decoded length is a tensor shape), so a greedy decode can be captured in a CUDA graph.
- Prefix reuse: a bidirectional encoder cannot continue from a prefix; ``encode_prefix`` keeps the prefix tokens
  and ``encode_from`` encodes the whole rows (what the interface allows), so it equals ``encode`` exactly.

Shapes: B batch, S source length, T target (block) length, t tokens decoded so far, V vocabulary, D d_model,
H heads, Dh = D / H, L layers, P prefix length, M selected rows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import PAD_ID
from negtrain_core.models.interface import SeqOutput
from negtrain_core.models.layers import OneHotEmbedding, padded_output_copy
from negtrain_core.models.lstm import _ids, _score   # the LSTM's scoring: both architectures score alike

KV = tuple[Tensor, Tensor]                            # keys, values: (B, H, length, Dh) each
# The attention kernels of eval mode: cuDNN's is left out, as for these short sequences in large batches it takes
# about twice the memory-efficient kernel's time (gibbs-enum's scoring pass, benchmarks/gibbs_enum.py --arch
# transformer). Train mode keeps torch's choice.
EVAL_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


class Encoded(NamedTuple):
    """Encoder output. out: (B, S, D) after the final LayerNorm; mask: (B, S) True on the keys to attend."""

    out: Tensor
    mask: Tensor


class LMState(NamedTuple):
    """The LM's decoding state: self_kv, per layer the keys and values of the t tokens read so far."""

    self_kv: tuple[KV, ...]


class DecoderState(NamedTuple):
    """The seq2seq's decoding state. mask: (B, S) the source keys to attend; cross_kv: per layer the keys and values
    of the encoder output (B, H, S, Dh); self_kv: per layer those of the t target tokens decoded so far."""

    mask: Tensor
    cross_kv: tuple[KV, ...]
    self_kv: tuple[KV, ...]


class EncoderPrefix(NamedTuple):
    """The first P source positions of B rows: tokens (B, P) ids (the encoder runs over whole rows)."""

    tokens: Tensor


def _map_rows(fn: Callable[..., Tensor], *states: Any) -> Any:
    """Apply ``fn`` to the matching tensors of ``states`` (tensors, tuples and NamedTuples of them)."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    parts = [_map_rows(fn, *group) for group in zip(*states)]
    return type(first)(*parts) if hasattr(first, "_fields") else tuple(parts)


def select_state(state: Any, rows: Tensor) -> Any:
    """Every tensor of ``state`` (rows first) -> its rows (M,)."""
    return _map_rows(lambda x: x.index_select(0, rows), state)


def cat_states(states: Sequence[Any]) -> Any:
    """States of consecutive row blocks -> one state of all their rows."""
    return _map_rows(lambda *xs: torch.cat(xs, dim=0), *states)


def key_mask(ids: Tensor) -> Tensor:
    """ids: (B, S) -> (B, S) True on real tokens; a row without any is all True (attending to nothing is undefined)."""
    real = ids != PAD_ID
    return real | ~real.any(dim=1, keepdim=True)


def source_positions(ids: Tensor) -> Tensor:
    """ids: (B, S) left-padded -> (B, S) positions counted from the first real token (0 on the padding)."""
    return ((ids != PAD_ID).long().cumsum(dim=1) - 1).clamp(min=0)


def causal_mask(block: int, past: int, device: torch.device) -> Tensor | None:
    """(block, past + block) True where query i (position past + i) may see key j (j <= past + i); None when one
    query sees every key."""
    if block == 1:
        return None
    return torch.ones(block, past + block, dtype=torch.bool, device=device).tril(diagonal=past)


def sinusoid(positions: Tensor, dim: int, dtype: torch.dtype) -> Tensor:
    """positions: (..., L) -> (..., L, dim) [sin(p w_i), cos(p w_i)], w_i = 10000^(-2i/dim) (Vaswani et al.)."""
    freq = torch.exp(torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) * (-math.log(1e4) / dim))
    angle = positions.unsqueeze(-1).float() * freq
    return torch.cat([angle.sin(), angle.cos()], dim=-1).to(dtype)


# ------------------------------------------------------------------------------------------------- layers


class Attention(nn.Module):
    """Multi-head attention on an ``nn.MultiheadAttention``'s weights, computed by ``scaled_dot_product_attention``
    so that keys and values can be computed apart from the queries (cached, or the encoder output's once)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.heads = heads

    def _split(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, H, L, Dh)."""
        B, L, D = x.shape
        return x.view(B, L, self.heads, D // self.heads).transpose(1, 2)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Self-attention inputs: x (B, L, D) -> queries, keys, values (B, H, L, Dh) each (one GEMM)."""
        return tuple(self._split(p) for p in F.linear(x, self.mha.in_proj_weight, self.mha.in_proj_bias).chunk(3, -1))

    def query(self, x: Tensor) -> Tensor:
        """x: (B, L, D) -> queries (B, H, L, Dh)."""
        D = x.size(-1)
        return self._split(F.linear(x, self.mha.in_proj_weight[:D], self.mha.in_proj_bias[:D]))

    def keys_values(self, memory: Tensor) -> KV:
        """memory: (B, S, D) -> keys, values (B, H, S, Dh) (cross-attention over the encoder output)."""
        D = memory.size(-1)
        kv = F.linear(memory, self.mha.in_proj_weight[D:], self.mha.in_proj_bias[D:])
        return tuple(self._split(p) for p in kv.chunk(2, -1))

    def attend(self, q: Tensor, kv: KV, mask: Tensor | None) -> Tensor:
        """q: (B, H, Lq, Dh); kv: (B, H, Lk, Dh) each; mask: broadcastable to (B, H, Lq, Lk), True = attend ->
        the output projection of the attended values (B, Lq, D)."""
        p = self.mha.dropout if self.training else 0.0
        with contextlib.nullcontext() if self.training else sdpa_kernel(EVAL_BACKENDS):
            out = F.scaled_dot_product_attention(q, *kv, attn_mask=mask, dropout_p=p)  # (B, H, Lq, Dh)
        B, H, L, Dh = out.shape
        return self.mha.out_proj(out.transpose(1, 2).reshape(B, L, H * Dh))


class Block(nn.Module):
    """One pre-LN layer: x + SelfAttn(LN(x)), [x + CrossAttn(LN(x), memory)], x + FF(LN(x)); dropout on each
    residual branch, and on the attention weights (``attention_dropout``, None: the same ``dropout``)."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, cross: bool,
                 attention_dropout: float | None = None):
        super().__init__()
        p_attn = dropout if attention_dropout is None else attention_dropout
        self.self_norm, self.self_attn = nn.LayerNorm(dim), Attention(dim, heads, p_attn)
        self.cross_norm = nn.LayerNorm(dim) if cross else None
        self.cross_attn = Attention(dim, heads, p_attn) if cross else None
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor | None, past: KV | None = None, cross: KV | None = None,
                cross_mask: Tensor | None = None) -> tuple[Tensor, KV]:
        """x: (B, T, D); mask: the self-attention mask; past: cached keys, values (B, H, t, Dh) or None; cross:
        the memory's keys, values with ``cross_mask`` (B, 1, 1, S) -> (B, T, D) and the keys, values of t + T."""
        q, k, v = self.self_attn.qkv(self.self_norm(x))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = x + self.drop(self.self_attn.attend(q, (k, v), mask))
        if self.cross_attn is not None:
            q = self.cross_attn.query(self.cross_norm(x))
            x = x + self.drop(self.cross_attn.attend(q, cross, cross_mask))
        return x + self.drop(self.ff(self.ff_norm(x))), (k, v)


class Embedder(nn.Module):
    """Tokens (ids or one-hot rows) -> token embedding x sqrt(D) + position embedding, then dropout."""

    def __init__(self, vocab_size: int, cfg: ModelSettings, dropout: float):
        super().__init__()
        t = cfg.transformer
        self.dim, self.max_positions = t.d_model, t.max_positions
        self.tokens = OneHotEmbedding(vocab_size, t.d_model)
        nn.init.normal_(self.tokens.weight, std=t.d_model ** -0.5)
        self.positions = nn.Embedding(t.max_positions, t.d_model) if t.positions == "learned" else None
        if self.positions is not None:
            nn.init.normal_(self.positions.weight, std=t.d_model ** -0.5)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, positions: Tensor) -> Tensor:
        """x: (B, L) ids or (B, L, V) one-hot; positions: (B or 1, L) -> (B, L, D)."""
        emb = self.tokens(x) * math.sqrt(self.dim)
        if self.positions is None:
            return self.drop(emb + sinusoid(positions, self.dim, emb.dtype))
        return self.drop(emb + self.positions(positions))

    def check_length(self, length: int) -> None:
        """Refuse positions past the learned table (a plain shape check, no host synchronisation)."""
        if self.positions is not None and length > self.max_positions:
            raise ValueError(f"Transformer: position {length - 1} is past model.transformer.max_positions "
                             f"({self.max_positions}); raise it and retrain")


# ------------------------------------------------------------------------------------------------- models


def _dropout(cfg: ModelSettings) -> float:
    """model.transformer.dropout, or the dataset's train.dropout (``cfg.dropout``, the LSTM's) when it is None."""
    return cfg.dropout if cfg.transformer.dropout is None else cfg.transformer.dropout


def _stack(cfg: ModelSettings, cross: bool) -> nn.ModuleList:
    t = cfg.transformer
    return nn.ModuleList(Block(t.d_model, t.heads, t.ff, _dropout(cfg), cross, t.attention_dropout)
                         for _ in range(t.layers))


def _empty_cache(cfg: ModelSettings, rows: int, like: Tensor) -> tuple[KV, ...]:
    """Per layer empty keys, values (rows, H, 0, Dh) in ``like``'s dtype and device."""
    t = cfg.transformer
    empty = like.new_zeros((rows, t.heads, 0, t.d_model // t.heads))
    return tuple((empty, empty) for _ in range(t.layers))


class _TransformerModel(nn.Module):
    """What both Transformer models share: the interface's sizes, the output layer (tied to the decoder's input
    embedding or not), label-smoothed training losses and the half-precision scoring copy."""

    cfg: ModelSettings
    out: nn.Linear

    def _output_layer(self, embed: Embedder) -> None:
        t = self.cfg.transformer
        self.out = nn.Linear(t.d_model, self.cfg.vocab_size)
        if t.tie_embeddings:
            self.out.weight = embed.tokens.weight                # (V, D): logits = h W^T + b

    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    @property
    def embedding_dim(self) -> int:
        return self.cfg.transformer.d_model

    def teacher_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        """Teacher-forced logits (B, T-1, V) for tgt[:, 1:]."""
        raise NotImplementedError

    def smoothed_nll(self, src: Tensor, tgt: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        """Baseline training's label-smoothed loss: (summed gold NLL of the real target tokens, the mean over them of
        (1 - eps) NLL + eps mean_v(-log p_v)) (``F.cross_entropy``'s ``label_smoothing``), both 0-d."""
        gold = tgt[:, 1:]
        logits = self.teacher_logits(src, tgt)                                    # (B, T-1, V)
        logp = F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)
        mask = (gold != PAD_ID).to(logp.dtype)
        nll = -logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1) * mask
        smooth = -logp.mean(-1) * mask
        loss = ((1 - smoothing) * nll + smoothing * smooth).sum() / mask.sum().clamp(min=1)
        return nll.sum(), loss

    def scoring_copy(self, dtype: torch.dtype, multiple: int = 64) -> nn.Module:
        """An eval-mode copy in ``dtype`` with the output layer padded to ``multiple`` rows
        (layers.padded_output_copy)."""
        return padded_output_copy(self, dtype, multiple)


class TransformerLM(_TransformerModel):
    """A decoder-only Transformer LM: causal self-attention blocks over ``<s> y_1 ..``. Its decoding state is an
    ``LMState`` (empty before ``<s>``)."""

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        self.embed = Embedder(cfg.vocab_size, cfg, _dropout(cfg))
        self.layers = _stack(cfg, cross=False)
        self.norm = nn.LayerNorm(cfg.transformer.d_model)
        self._output_layer(self.embed)

    def decode_block(self, tokens: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        """tokens: (B, T) ids or (B, T, V) one-hot, after the t tokens of ``state`` -> logits (B, T, V) and the
        state after them."""
        past, T = state.self_kv[0][0].size(2), tokens.size(1)
        self.embed.check_length(past + T)
        x = self.embed(tokens, torch.arange(past, past + T, device=tokens.device).unsqueeze(0))
        mask, cache = causal_mask(T, past, tokens.device), []
        for layer, kv in zip(self.layers, state.self_kv):
            x, kv = layer(x, mask, kv)
            cache.append(kv)
        return self.out(self.norm(x)), LMState(tuple(cache))

    def teacher_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.decode_block(tgt[:, :-1], self.initial_state(tgt))[0]

    def forward(self, tokens: Tensor) -> SeqOutput:
        """tokens: (B, T) ids or (B, T, V) one-hot, starting with <s> -> scores of tokens[:, 1:]."""
        logits, _ = self.decode_block(tokens[:, :-1], self.initial_state(tokens))
        return _score(logits, _ids(tokens)[:, 1:])

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """The interface's teacher-forced scores: ``forward(tgt)``; src is not read."""
        return self(tgt)

    def initial_state(self, src: Tensor) -> LMState:
        """Empty caches for the B rows of src (only its size and device are read)."""
        return LMState(_empty_cache(self.cfg, src.size(0), self.out.weight.new_zeros((), device=src.device)))

    def select_rows(self, state: LMState, rows: Tensor) -> LMState:
        return select_state(state, rows)

    def cat_rows(self, states: Sequence[LMState]) -> LMState:
        return cat_states(states)


class TransformerSeq2Seq(_TransformerModel):
    """A pre-LN Transformer encoder-decoder. The source token embedding is its own or the decoder's
    (``share_source_embedding``); the decoder's input embedding may be tied to the output layer. Its encoder output
    is an ``Encoded``, its decoding state a ``DecoderState``, its prefix an ``EncoderPrefix``."""

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg, D = cfg, cfg.transformer.d_model
        self.src_embed = Embedder(cfg.vocab_size, cfg, _dropout(cfg))
        self.tgt_embed = Embedder(cfg.vocab_size, cfg, _dropout(cfg))
        if cfg.transformer.share_source_embedding:
            self.src_embed.tokens.weight = self.tgt_embed.tokens.weight     # (V, D), one table for both sides
        self.encoder, self.enc_norm = _stack(cfg, cross=False), nn.LayerNorm(D)
        self.decoder, self.dec_norm = _stack(cfg, cross=True), nn.LayerNorm(D)
        self._output_layer(self.tgt_embed)

    def encode(self, src: Tensor) -> Encoded:
        """src: (B, S) ids or (B, S, V) one-hot, left-padded with <pad>."""
        ids = _ids(src)
        mask = key_mask(ids)
        self.src_embed.check_length(src.size(1))
        x = self.src_embed(src, source_positions(ids))
        attn_mask = mask[:, None, None, :]                                   # (B, 1, 1, S)
        for layer in self.encoder:
            x, _ = layer(x, attn_mask)
        return Encoded(self.enc_norm(x), mask)

    def state_from(self, enc: Encoded) -> DecoderState:
        """The cross-attention keys and values of every decoder layer, and empty self-attention caches."""
        cross = tuple(layer.cross_attn.keys_values(enc.out) for layer in self.decoder)
        return DecoderState(enc.mask, cross, _empty_cache(self.cfg, enc.out.size(0), enc.out))

    def initial_state(self, src: Tensor) -> DecoderState:
        return self.state_from(self.encode(src))

    def decode_block(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """tokens: (B, T) ids after the t tokens of ``state`` -> logits (B, T, V) and the state after them."""
        past, T = state.self_kv[0][0].size(2), tokens.size(1)
        self.tgt_embed.check_length(past + T)
        x = self.tgt_embed(tokens, torch.arange(past, past + T, device=tokens.device).unsqueeze(0))
        mask, cross_mask, cache = causal_mask(T, past, tokens.device), state.mask[:, None, None, :], []
        for layer, kv, cross in zip(self.decoder, state.self_kv, state.cross_kv):
            x, kv = layer(x, mask, kv, cross, cross_mask)
            cache.append(kv)
        return self.out(self.dec_norm(x)), state._replace(self_kv=tuple(cache))

    def teacher_logits(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.decode_block(tgt[:, :-1], self.initial_state(src))[0]

    def forward(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """src: (B, S) ids or (B, S, V) one-hot; tgt: (B, T) ids ``<s> y </s> <pad>..`` -> scores of tgt[:, 1:]."""
        return _score(self.teacher_logits(src, tgt), tgt[:, 1:])

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """The interface's teacher-forced scores: ``forward(src, tgt)``."""
        return self(src, tgt)

    def select_rows(self, state: DecoderState, rows: Tensor) -> DecoderState:
        return select_state(state, rows)

    def cat_rows(self, states: Sequence[DecoderState]) -> DecoderState:
        return cat_states(states)

    # ------------------------------------------------------------------ prefix reuse: whole rows are encoded

    def encode_prefix(self, src: Tensor) -> EncoderPrefix:
        """src: (B, P) ids -> kept as they are (P may be 0)."""
        return EncoderPrefix(src)

    def select_prefix(self, prefix: EncoderPrefix, rows: Tensor) -> EncoderPrefix:
        return EncoderPrefix(prefix.tokens.index_select(0, rows))

    def encode_from(self, prefix: EncoderPrefix, src: Tensor) -> Encoded:
        """``encode(src)`` of src (M, S) ids, whose first P positions are the prefix's: every position attends to
        every other, so the whole rows are encoded."""
        return self.encode(src)
