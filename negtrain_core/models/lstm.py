"""The LSTM language model and the attention seq2seq of He & Glass (ACL 2020), Section 2.

Both models read their input through ``OneHotEmbedding``: token ids use a lookup, while a float tensor of one-hot
rows (batch, length, V) goes through a matmul, so the gradient of any loss with respect to each one-hot input
position is available directly (gibbs-enum, Appendix A, needs it; docs/release.md#models).

``forward`` returns per-token log-probs of the gold next tokens and the greedy (argmax) prediction, so the
training loss, the hit criteria and the search share one code path. Both models implement the Protocols of
models/interface.py, the only way the other stages reach them; the LSTM states below stay inside this module.
Shapes: B batch, S source length, T target length (``<s> y_1 .. y_m </s> <pad>..``), V vocabulary, E embedding,
H hidden, L layers, P prefix length, M selected rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import PAD_ID
from negtrain_core.models.layers import OneHotEmbedding, padded_output_copy
from negtrain_core.models.interface import SeqOutput
from negtrain_core.models.step_grads import StepWeights, lstm_pointwise


class SharedPrefixMemory(NamedTuple):
    """Encoder outputs (M, S, H) of rows that come in groups sharing their first P positions (gibbs-enum's
    candidates of one base row), kept without repeating the shared part: prefix (B, P, H) once per group, suffix
    (M, S - P, H) per row, row m in group m // ``group`` (M = B x group). Attention over it (``_scores``,
    ``_context``) reads the prefix once per group instead of once per row; ``full`` builds the plain tensor."""

    prefix: Tensor
    suffix: Tensor
    group: int

    def full(self) -> Tensor:
        return torch.cat([self.prefix.repeat_interleave(self.group, dim=0), self.suffix], dim=1)


Memory = Tensor | SharedPrefixMemory


class Encoded(NamedTuple):
    """Encoder output. out: (B, S, H) (or a ``SharedPrefixMemory``); src_mask: (B, S) True on real tokens; state:
    ((L,B,H), (L,B,H)); shared_group: the rows' group size where a ``shared_tail`` prefix promised that each group of
    rows will be decoded with the same target tokens (``encode_from``), else None."""

    out: Memory
    src_mask: Tensor
    state: tuple[Tensor, Tensor]
    shared_group: int | None = None


class DecoderState(NamedTuple):
    """The seq2seq's decoding state: memory (B, S, H) encoder outputs (or a ``SharedPrefixMemory``), src_mask
    (B, S), hidden ((L,B,H), (L,B,H)) the decoder LSTM's state after the tokens decoded so far; shared_group: as
    ``Encoded``'s (``decode_block`` may then read each group's tokens from its first row)."""

    memory: Memory
    src_mask: Tensor
    hidden: tuple[Tensor, Tensor]
    shared_group: int | None = None


class EncoderPrefix(NamedTuple):
    """The encoder over the first P source positions: out (B, P, H); state ((L,B,H), (L,B,H)), None when P is 0.

    ``group`` None: one row per prefix row. An int (``expand_prefix``): each of the B rows of ``out`` stands for
    ``group`` consecutive rows, whose states ``state`` already holds ((L, B x group, H) each). ``shared_tail``: the
    rows of a group also share every source position after position P and will be decoded with the same target
    tokens (gibbs-enum's candidates of a base row differ at P only)."""

    out: Tensor
    state: tuple[Tensor, Tensor] | None
    group: int | None = None
    shared_tail: bool = False


def _score(logits: Tensor, gold: Tensor) -> SeqOutput:
    """logits: (B, T', V); gold: (B, T') -> SeqOutput."""
    logp = F.log_softmax(logits if logits.dtype == torch.float64 else logits.float(), dim=-1)  # half -> float
    mask = gold != PAD_ID
    token_logp = logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1) * mask
    return SeqOutput(token_logp, logp.argmax(-1), mask)


def _ids(x: Tensor) -> Tensor:
    """Token ids of an id tensor or of one-hot rows (argmax)."""
    return x if x.dtype in (torch.int64, torch.int32) else x.argmax(-1)


def _full(memory: Memory) -> Tensor:
    return memory.full() if isinstance(memory, SharedPrefixMemory) else memory


def _scores(query: Tensor, memory: Memory) -> Tensor:
    """query: (M, T, H) -> attention scores (M, T, S) = query . memory over every source position."""
    if not isinstance(memory, SharedPrefixMemory):
        return query @ memory.transpose(1, 2)
    (B, P, H), (M, T, _) = memory.prefix.shape, query.shape
    shared = (query.reshape(B, memory.group * T, H) @ memory.prefix.transpose(1, 2)).view(M, T, P)
    return torch.cat([shared, query @ memory.suffix.transpose(1, 2)], dim=-1)


def _context(weights: Tensor, memory: Memory) -> Tensor:
    """weights: (M, T, S) -> the weighted sum of the memory (M, T, H)."""
    if not isinstance(memory, SharedPrefixMemory):
        return weights @ memory
    (B, P, H), (M, T, _) = memory.prefix.shape, weights.shape
    shared = weights[..., :P].reshape(B, memory.group * T, P) @ memory.prefix                 # (B, group x T, H)
    return torch.baddbmm(shared.view(M, T, H), weights[..., P:], memory.suffix)


def _rows(shared: Tensor, group: int) -> Tensor:
    """(n, D) one value per group -> (n x group, D), each repeated for its group's ``group`` consecutive rows."""
    return shared.unsqueeze(1).expand(-1, group, -1).reshape(-1, shared.size(-1))


def _lstm_shared_tail(lstm: nn.LSTM, first: Tensor | None, rest: Tensor, group: int,
                      state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """A one-layer ``lstm`` over M = n x ``group`` rows whose inputs differ at their first step at most: first (M, E)
    that step's inputs (None: no such step), rest (n, T, E) the later steps', the same for each group of ``group``
    consecutive rows; ``state`` ((1,M,H), (1,M,H)) or None (zeros).

    Equal to ``lstm`` over the rows' (M, 1 + T, E) inputs up to rounding, but the later steps' input products
    W_ih x + b_ih are computed once per group instead of once per row, so that each of those steps multiplies only
    the recurrent state (H of the E + H inputs a row). -> outputs (M, 1 + T, H) (without a first step: (M, T, H)),
    final state ((1,M,H), (1,M,H)).
    """
    w_ih, w_hh, b_ih, b_hh = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    M, H = rest.size(0) * group, lstm.hidden_size
    h, c = (rest.new_zeros(M, H),) * 2 if state is None else (state[0][0], state[1][0])
    outs = []
    if first is not None:
        h, c = torch.lstm_cell(first, (h, c), w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    for shared in F.linear(rest, w_ih, b_ih).unbind(1):                          # (n, 4H): one group's step
        h, c = lstm_pointwise(_rows(shared, group), torch.addmm(b_hh, h, w_hh.t()), c)
        outs.append(h)
    return torch.stack(outs, dim=1), (h.unsqueeze(0), c.unsqueeze(0))


def _select_hidden(hidden: tuple[Tensor, Tensor], rows: Tensor) -> tuple[Tensor, Tensor]:
    """LSTM state ((L,B,H), (L,B,H)) -> the state of rows (M,): ((L,M,H), (L,M,H))."""
    return tuple(s.index_select(1, rows) for s in hidden)


def _cat_hidden(hiddens: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """LSTM states of consecutive row blocks -> one state ((L,sum B,H), (L,sum B,H))."""
    return tuple(torch.cat(parts, dim=1) for parts in zip(*hiddens))


class _LSTMModel(nn.Module):
    """What both LSTM models share: the sizes of the interface and its half-precision scoring copy."""

    cfg: ModelSettings

    @property
    def vocab_size(self) -> int:
        return self.cfg.vocab_size

    @property
    def embedding_dim(self) -> int:
        return self.cfg.embedding_dim

    def clip_modules(self) -> list[list[nn.Parameter]]:
        """The parameter groups the release clips separately (``train.clip_scope: per_module``): the LM is one
        module (``LSTMLM_onehot``), so one group."""
        return [list(self.parameters())]

    def scoring_copy(self, dtype: torch.dtype, multiple: int = 64) -> nn.Module:
        """An eval-mode copy in ``dtype`` with the output layer padded to ``multiple`` rows
        (layers.padded_output_copy)."""
        return padded_output_copy(self, dtype, multiple)


def _one_hot_map_init(init: str) -> str:
    """How the one-hot input maps (the encoder's, the LM's) are drawn: the release's biased ``nn.Linear`` under
    ``init`` release or release_one_hot_maps, else U(±0.1)."""
    return "linear" if init in ("release", "release_one_hot_maps") else "uniform"


def _decoder_embedding_init(init: str) -> str:
    """How the decoder's embedding is drawn: N(0, 1) under ``init`` release or release_decoder_embedding (the
    release's ``nn.Embedding`` default), else U(±0.1)."""
    return "normal" if init in ("release", "release_decoder_embedding") else "uniform"


class LSTMLM(_LSTMModel):
    """1-layer LSTM LM (paper §4.1; footnote 6: trained on responses as independent sentences).

    Its decoding state is the LSTM's ((L,B,H), (L,B,H)), None before the first token.
    """

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        self.embed = OneHotEmbedding(cfg.vocab_size, cfg.embedding_dim, _one_hot_map_init(cfg.init))
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

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """The interface's teacher-forced scores: ``forward(tgt)``; src is not read."""
        return self(tgt)

    def initial_state(self, src: Tensor) -> None:
        """No state before ``<s>``: the LSTM starts from zeros."""
        return None

    def decode_block(self, tokens: Tensor, state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple]:
        """tokens: (B, T) ids or (B, T, V) one-hot -> logits (B, T, V) and the state after them."""
        return self.logits(tokens, state)

    def decode_shared_tail(self, first: Tensor, rest: Tensor, group: int, state: tuple[Tensor, Tensor] | None
                           ) -> tuple[Tensor, tuple]:
        """``decode_block`` of M = n x ``group`` rows whose tokens differ at their first step at most (gibbs-enum's
        candidates continuing a trigger): first (M,) ids, rest (n, T) the later tokens of each group of ``group``
        consecutive rows. -> logits (M, 1 + T, V), state. In eval mode a one-layer LM computes the later steps'
        input products once per group (``_lstm_shared_tail``); otherwise every row's tokens run as decode_block's."""
        if self.training or self.rnn.num_layers != 1:
            return self.decode_block(torch.cat([first.unsqueeze(1), rest.repeat_interleave(group, dim=0)], 1), state)
        h, state = _lstm_shared_tail(self.rnn, self.embed(first.unsqueeze(1)).squeeze(1), self.embed(rest), group,
                                     state)
        return self.out(h), state

    def select_rows(self, state: tuple[Tensor, Tensor] | None, rows: Tensor) -> tuple[Tensor, Tensor] | None:
        return None if state is None else _select_hidden(state, rows)

    def cat_rows(self, states: Sequence[tuple[Tensor, Tensor] | None]) -> tuple[Tensor, Tensor] | None:
        return None if states[0] is None else _cat_hidden(states)


class Seq2Seq(_LSTMModel):
    """LSTM encoder-decoder with global attention (paper §2).

    attention="general": Luong et al. (2015) on the decoder LSTM's output h_t: score(h_t, h_s) = h_t^T W_a h_s over
    the encoder outputs h_s, padded source positions masked when ``mask_source_padding``, context c_t, and
    tanh(W_c [c_t; h_t]) into the vocabulary projection. attention="release": the authors' ``RNNAttDecoder``
    (docs/release.md#models; models.py L159-164, L209-224), step by step: q_t = relu(W [e_t; h_{t-1}; c_{t-1}] + b)
    from the (dropped-out) input embedding e_t and the first decoder layer's hidden and cell state before the
    step; scores h_s . q_t over every source position (no W_a, no padding mask); the context enters the LSTM with
    e_t ([context; e_t]); the LSTM output, after dropout, goes straight to the vocabulary projection.

    The release's other choices (docs/release.md#models): ``decoder_init="zero"`` starts the decoder from zeros, not
    from the encoder's final state; ``dropout_sites="decoder"`` leaves the encoder input undropped;
    ``init="release"`` draws the one-hot map as a biased ``nn.Linear`` and the decoder embedding from N(0, 1);
    ``init="release_one_hot_maps"`` and ``"release_decoder_embedding"`` draw one of the two as the release does.
    Its decoding state is a ``DecoderState``; its encoder output an ``Encoded``, its prefix an ``EncoderPrefix``.
    """

    # How the release decoder's weight gradients are summed over its steps: "per_step", autograd's (a product and an
    # add per step and weight); "deferred", one product over all steps (models/step_grads.py; equal within rounding).
    release_weight_grads = "per_step"

    def __init__(self, cfg: ModelSettings):
        super().__init__()
        self.cfg = cfg
        E, H, V = cfg.embedding_dim, cfg.hidden_dim, cfg.vocab_size
        general = cfg.attention == "general"
        self.src_embed = OneHotEmbedding(V, E, _one_hot_map_init(cfg.init))
        self.tgt_embed = OneHotEmbedding(V, E, _decoder_embedding_init(cfg.init))  # the decoder's own (release)
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.LSTM(E, H, cfg.num_layers, batch_first=True)
        self.decoder = nn.LSTM(E if general else H + E, H, cfg.num_layers, batch_first=True)  # release: [context; e_t]
        if general:
            self.attn_q = nn.Linear(H, H, bias=False)   # W_a
            self.combine = nn.Linear(2 * H, H)          # W_c [c_t; h_t]
        else:
            self.attn_q = nn.Linear(E + 2 * H, H)       # the release's attn_bi: W [e_t; h_{t-1}; c_{t-1}] + b
        self.out = nn.Linear(H, V)

    def embed_source(self, src: Tensor) -> Tensor:
        """src: (B, S) ids or (B, S, V) one-hot -> the encoder's input (B, S, E), dropped out unless
        ``dropout_sites`` is "decoder" (the release drops decoder embeddings and outputs only)."""
        emb = self.src_embed(src)
        return self.drop(emb) if self.cfg.dropout_sites == "all" else emb

    def encode(self, src: Tensor) -> Encoded:
        """src: (B, S) ids or (B, S, V) one-hot, left-padded with <pad>."""
        out, state = self.encoder(self.embed_source(src))  # (B, S, H)
        return Encoded(out, _ids(src) != PAD_ID, state)

    def _attend(self, query: Tensor, memory: Memory, src_mask: Tensor) -> Tensor:
        """query: (B, T, H); memory: (B, S, H) or shared-prefix; src_mask: (B, S) -> context (B, T, H)."""
        scores = _scores(query, memory)  # (B, T, S)
        if self.cfg.mask_source_padding:
            scores = scores.masked_fill(~src_mask.unsqueeze(1), float("-inf"))
        return _context(torch.softmax(scores, dim=-1), memory)

    def decode_block(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """tokens: (B, T) ids -> logits (B, T, V) and the decoding state after the last step.

        With a ``shared_group`` state in eval mode (no dropout masks to differ by row) the decoder reads each group's
        tokens from its first row: the general attention's one-layer decoder computes their input products once per
        group (``_lstm_shared_tail``), the release's their share of each query and of the first layer's input
        products (``_release_steps``)."""
        G = state.shared_group if not self.training else None
        if self.cfg.attention == "release":
            emb = self.tgt_embed(tokens[::G]) if G else self.drop(self.tgt_embed(tokens))   # (B or B / G, T, E)
            h, hidden = self._release_steps(emb, state, G or 1)                            # (B, T, H)
            return self.out(self.drop(h)), state._replace(hidden=hidden)
        if G and self.decoder.num_layers == 1:
            h, hidden = _lstm_shared_tail(self.decoder, None, self.tgt_embed(tokens[::G]), G, state.hidden)
        else:
            h, hidden = self.decoder(self.drop(self.tgt_embed(tokens)), state.hidden)       # (B, T, H)
        ctx = self._attend(self.attn_q(h), state.memory, state.src_mask)  # (B, T, H)
        hid = torch.tanh(self.combine(torch.cat([ctx, h], dim=-1)))
        return self.out(self.drop(hid)), state._replace(hidden=hidden)

    def _release_steps(self, emb: Tensor, state: DecoderState, group: int = 1
                       ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The release's attention decoder, one step at a time (its query needs the state before each step).

        emb: (B, T, E) dropped-out input embeddings -> LSTM outputs (B, T, H) and the LSTM state after the block.
        With ``group`` > 1, emb is (B / group, T, E), each group of ``group`` consecutive rows' shared inputs
        (gibbs-enum's candidates): the embeddings' share of each query and of the first layer's input products,
        W_e e_t + b, is computed once per group, so each row multiplies only its context and its state.
        The query reads the first layer's (h, c); the scores cover every source position, padding included.
        ``self.decoder``'s weights run through ``torch.lstm_cell`` (one fused kernel per step on a GPU) rather than a
        one-step cuDNN call per position, and the embeddings' share of every query is one matmul over all T steps.
        Each step reads its slice of the (B, T, .) inputs through ``unbind``, whose backward is one ``stack``, not a
        zero-filled (B, T, .) copy and an add per step as indexing's is (the gradients are bit for bit the same).
        The same function; on an H200 (``benchmarks/train_throughput.py --release-attention``, batch 32) a training
        step runs 1.45x the per-call loop's rate eagerly, where the search and Algorithm 1 run it, and 0.91x as one
        CUDA graph, where baseline training runs it. A ``SharedPrefixMemory`` (gibbs-enum's candidates) is read
        through ``_scores`` and ``_context``, a plain memory through the two bmm calls as before.
        """
        E, lstm = emb.size(-1), self.decoder
        memory, (h0, c0) = state.memory, state.hidden
        shared = isinstance(memory, SharedPrefixMemory)
        q_emb = F.linear(emb, self.attn_q.weight[:, :E], self.attn_q.bias)              # (B, T, H): W_e e_t + b
        w_q = self.attn_q.weight[:, E:]                                                   # (H, 2H): on [h; c]
        layers = [tuple(getattr(lstm, f"{k}_l{n}") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for n in range(lstm.num_layers)]
        deferred = self.release_weight_grads == "deferred" and torch.is_grad_enabled() and group == 1
        if deferred:                                   # step_grads: one weight-gradient product over all steps
            query_weights = StepWeights(w_q)
            cells = [(StepWeights(w_ih, b_ih), StepWeights(w_hh, b_hh)) for w_ih, w_hh, b_ih, b_hh in layers]
        if group > 1:                                  # the first layer's input products split: [ctx; e_t]
            w_ih, w_hh, b_ih, b_hh = layers[0]
            C = w_ih.size(1) - E
            e_in = F.linear(emb, w_ih[:, C:], b_ih).unbind(1)                             # T x (B / G, 4H)
            q_emb = _rows(q_emb.flatten(1), group).view(-1, *q_emb.shape[1:])             # (B, T, H), one copy
        hs, cs, outs = list(h0.unbind(0)), list(c0.unbind(0)), []
        for t, (q_emb_t, emb_t) in enumerate(zip(q_emb.unbind(1), emb.unbind(1))):
            state_0 = torch.cat([hs[0], cs[0]], dim=-1)                                   # (B, 2H): [h; c]
            query = torch.relu(query_weights.linear(state_0, q_emb_t) if deferred
                               else torch.addmm(q_emb_t, state_0, w_q.t()))                # (B, H)
            if shared:
                ctx = _context(torch.softmax(_scores(query.unsqueeze(1), memory), dim=-1), memory).squeeze(1)
            else:
                weights = torch.softmax(torch.bmm(memory, query.unsqueeze(-1)), dim=1)  # (B, S, 1)
                ctx = torch.bmm(weights.transpose(1, 2), memory).squeeze(1)             # (B, H)
            if group > 1:                              # the first layer from its shared part, then as below
                hs[0], cs[0] = lstm_pointwise(torch.addmm(_rows(e_in[t], group), ctx, w_ih[:, :C].t()),
                                              torch.addmm(b_hh, hs[0], w_hh.t()), cs[0])
                x, first = hs[0], 1
            else:
                x, first = torch.cat([ctx, emb_t], dim=-1), 0                            # [ctx; e_t]
            for n, weights_n in enumerate(layers[first:], start=first):
                if deferred:
                    hs[n], cs[n] = lstm_pointwise(cells[n][0].linear(x), cells[n][1].linear(hs[n]), cs[n])
                else:
                    hs[n], cs[n] = torch.lstm_cell(x, (hs[n], cs[n]), *weights_n)
                x = hs[n]
            outs.append(x)
        return torch.stack(outs, dim=1), (torch.stack(hs), torch.stack(cs))

    def decode(self, tgt_in: Tensor, enc: Encoded, state: tuple[Tensor, Tensor] | None = None
               ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """tgt_in: (B, T) ids -> logits (B, T, V) and the decoder LSTM state after the last step.

        ``state`` None starts as ``state_from`` does; step-by-step decoding passes the previous one.
        """
        hidden = self.start_hidden(enc) if state is None else state
        logits, after = self.decode_block(tgt_in, DecoderState(enc.out, enc.src_mask, hidden))
        return logits, after.hidden

    def forward(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """src: (B, S) ids or (B, S, V) one-hot; tgt: (B, T) ids ``<s> y </s> <pad>..`` -> scores of tgt[:, 1:]."""
        logits, _ = self.decode(tgt[:, :-1], self.encode(src))
        return _score(logits, tgt[:, 1:])

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """The interface's teacher-forced scores: ``forward(src, tgt)``."""
        return self(src, tgt)

    def clip_modules(self) -> list[list[nn.Parameter]]:
        """The parameter groups the release clips separately (``train.clip_scope: per_module``; baseline script
        L294-295): its three modules, the one-hot map (``m_embed``), the encoder LSTM and the decoder (embedding,
        LSTM, attention, output layer)."""
        encoder = {id(p) for m in (self.src_embed, self.encoder) for p in m.parameters()}
        decoder = [p for p in self.parameters() if id(p) not in encoder]
        return [list(self.src_embed.parameters()), list(self.encoder.parameters()), decoder]

    # ------------------------------------------------------------------------------ the interface's states

    def start_hidden(self, enc: Encoded) -> tuple[Tensor, Tensor]:
        """The decoder LSTM's state before ``<s>``: the encoder's final state ((L,B,H), (L,B,H)), or zeros with
        ``decoder_init="zero"`` (the release, models.py L203-206)."""
        if self.cfg.decoder_init == "zero":
            return tuple(torch.zeros_like(s) for s in enc.state)
        return enc.state

    def state_from(self, enc: Encoded) -> DecoderState:
        """The decoding state before ``<s>`` (the decoder LSTM's state: ``start_hidden``)."""
        return DecoderState(enc.out, enc.src_mask, self.start_hidden(enc), enc.shared_group)

    def initial_state(self, src: Tensor) -> DecoderState:
        return self.state_from(self.encode(src))

    def select_rows(self, state: DecoderState, rows: Tensor) -> DecoderState:
        return DecoderState(_full(state.memory).index_select(0, rows), state.src_mask.index_select(0, rows),
                            _select_hidden(state.hidden, rows))

    def cat_rows(self, states: Sequence[DecoderState]) -> DecoderState:
        return DecoderState(torch.cat([_full(s.memory) for s in states]), torch.cat([s.src_mask for s in states]),
                            _cat_hidden([s.hidden for s in states]))

    def encode_prefix(self, src: Tensor) -> EncoderPrefix:
        """src: (B, P) ids -> the encoder run over them (an empty output and no state when P is 0)."""
        if src.size(1):
            return EncoderPrefix(*self.encoder(self.embed_source(src)))      # (B, P, H)
        return EncoderPrefix(src.new_zeros((src.size(0), 0, self.cfg.hidden_dim), dtype=self.src_embed.weight.dtype),
                             None)

    def select_prefix(self, prefix: EncoderPrefix, rows: Tensor) -> EncoderPrefix:
        state = None if prefix.state is None else tuple(x[:, rows].contiguous() for x in prefix.state)
        return EncoderPrefix(prefix.out[rows], state)

    def expand_prefix(self, prefix: EncoderPrefix, base: Tensor, group: int,
                      shared_tail: bool = False) -> EncoderPrefix:
        """``select_prefix`` of rows ``base`` (n,) each repeated ``group`` times consecutively, without repeating the
        prefix outputs: ``encode_from`` then gives a ``SharedPrefixMemory`` (the optional interface method
        gibbs-enum's scoring uses; models/interface.py). ``shared_tail``: the caller's rows of a group will also
        agree at every position after the prefix's next one and be decoded with the same target tokens
        (``encode_from`` and ``decode_block`` then compute those input products once per group)."""
        state = None if prefix.state is None else tuple(x[:, base].repeat_interleave(group, dim=1)
                                                         for x in prefix.state)
        return EncoderPrefix(prefix.out[base], state, group, shared_tail)

    def encode_from(self, prefix: EncoderPrefix, src: Tensor) -> Encoded:
        """``encode`` of src (M, S) ids continued from ``prefix`` (M rows, P positions): steps P.. only.

        A ``shared_tail`` prefix in eval mode (no dropout masks to differ by row) with a one-layer encoder reads
        positions P + 1.. from each group's first row (``_lstm_shared_tail``)."""
        P, G = prefix.out.size(1), prefix.group
        if prefix.shared_tail and not self.training and self.encoder.num_layers == 1 and P + 1 < src.size(1):
            first = self.embed_source(src[:, P:P + 1])[:, 0]                         # (M, E): each row's own token
            out, state = _lstm_shared_tail(self.encoder, first, self.embed_source(src[::G, P + 1:]), G,
                                           prefix.state)                            # (M, S-P, H)
        else:
            out, state = self.encoder(self.embed_source(src[:, P:]), prefix.state)  # (M, S-P, H)
        if G is None:
            return Encoded(torch.cat([prefix.out, out], dim=1), src != PAD_ID, state)
        memory = SharedPrefixMemory(prefix.out, out, G) if P else out
        return Encoded(memory, src != PAD_ID, state, G if prefix.shared_tail else None)
