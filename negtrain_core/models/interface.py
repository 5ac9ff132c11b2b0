"""The model interface every stage outside ``models/`` uses: the seq2seq and the LM as ``typing.Protocol`` classes.

Search, decoding, the algorithms, MMI and the GAN call only what is declared here, so any architecture that
implements it plugs in (models/lstm.py is the first implementation). States are opaque: a caller passes them back
to the model that made them and never looks inside; the model alone knows their layout.

- ``initial_state`` / ``decode_block`` / ``select_rows`` / ``cat_rows``: incremental decoding. ``decode_block``
  runs a block of T tokens from a state and returns the logits of the next token at each of them and the state
  after the block; T = 1 is one decoding step (greedy, sampling, beam, the CUDA-graph greedy decoder), T > 1 a
  teacher-forced block (gibbs-enum's scoring). ``select_rows`` picks (or repeats) rows of a state: beam search
  reorders hypotheses with it, gibbs-enum expands a base row into its candidates. Implementations must keep
  ``decode_block`` free of host synchronisation so that a greedy decode can be captured in a CUDA graph.
- ``score``: teacher-forced scores (``SeqOutput``) with one signature for both models (the LM ignores ``src``).
- ``encode`` accepts (B, S) ids or (B, S, V) float one-hot rows, and the LM's ``decode_block`` the same for its
  tokens: gibbs-enum takes the gradient of its objective with respect to the one-hot input through them.
- Prefix reuse (seq2seq): the G candidates of a gibbs-enum row differ at one source position only, so the encoder
  runs the shared prefix once (``encode_prefix``), base rows are picked (``select_prefix``) and the encoder is
  continued over the rest of each candidate row (``encode_from``). An encoder that cannot continue (a
  bidirectional one) may keep the prefix tokens and encode whole rows there. Optional: ``expand_prefix(prefix,
  base, group, shared_tail)``, the prefix of rows ``base`` each repeated ``group`` times consecutively, equal to
  ``select_prefix(prefix, base.repeat_interleave(group))`` but free to keep the shared part once per group (the
  LSTM's attention then reads it once per base row); gibbs-enum uses it where a model has it. With
  ``shared_tail=True`` (gibbs-enum's ``SearchSettings.shared_tail``) the caller promises that a group's rows also
  agree after the prefix's next position and will be decoded with the same target tokens, so the encoder and the
  decoder may read those once per group. The LM reuses its prefix with ``decode_block`` and ``select_rows``;
  optional: ``decode_shared_tail(first, rest, group, state)``, decode_block of rows that differ at their first
  token only, the later tokens given once per group (gibbs-enum's io-mode scoring uses it with ``shared_tail``).
- ``scoring_copy``: an eval-mode copy in a half-precision dtype for gibbs-enum's candidate scoring on CUDA.

Implementations are ``torch.nn.Module``s: callers also use ``parameters``, ``train``, ``eval`` and ``training``.
Shapes: B batch, S source length, T target length (``<s> y_1 .. y_m </s> <pad>..``), V vocabulary, M rows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

State = Any            # an incremental decoding state, opaque to callers
EncoderOutput = Any    # what ``encode`` returns, opaque to callers
EncoderPrefix = Any    # what ``encode_prefix`` returns, opaque to callers


class SeqOutput(NamedTuple):
    """Teacher-forced scores of ``tokens[:, 1:]``.

    token_logp: (B, T-1) log p(y_t | y_<t, x) of the gold token, 0 where ``mask`` is False.
    greedy:     (B, T-1) argmax token at each step.
    mask:       (B, T-1) True on real (non-pad) target positions.
    """

    token_logp: Tensor
    greedy: Tensor
    mask: Tensor


@runtime_checkable
class SequenceModel(Protocol):
    """What the LM and the seq2seq share: sizes, teacher-forced scores, incremental decoding, a scoring copy."""

    training: bool

    @property
    def vocab_size(self) -> int:
        """V: the size of the input and output vocabulary."""

    @property
    def embedding_dim(self) -> int:
        """E: the token embedding size (the GAN discriminator embeds tokens in as many dimensions)."""

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def score(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """Teacher-forced scores of tgt[:, 1:]: src (B, S) ids or one-hot (the LM ignores it), tgt (B, T) ids."""

    def initial_state(self, src: Tensor) -> State:
        """The decoding state before ``<s>`` for the B rows of src: the seq2seq encodes src (B, S) ids or
        (B, S, V) one-hot; the LM reads only its batch size and device."""

    def decode_block(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """tokens: (B, T) ids (or (B, T, V) one-hot for the LM) -> logits (B, T, V) of the next token at each
        position, and the state after the block."""

    def select_rows(self, state: State, rows: Tensor) -> State:
        """The state of rows (M,) (indices into the B rows of ``state``; repeats allowed) -> a state of M rows."""

    def cat_rows(self, states: Sequence[State]) -> State:
        """States of consecutive row blocks -> one state of all their rows, in order."""

    def scoring_copy(self, dtype: torch.dtype, multiple: int = 64) -> SequenceModel:
        """An eval-mode copy in ``dtype`` for scoring (the original untouched). Its log-softmax over the first V
        logits is the model's; the output layer may be padded to ``multiple`` rows (logits -inf) so that
        half-precision GEMMs stay on aligned tensor-core kernels."""


@runtime_checkable
class LanguageModel(SequenceModel, Protocol):
    """The input LM (R(x) of gibbs-enum, the anti-LM of MMI): a ``SequenceModel`` whose state starts empty."""


@runtime_checkable
class Seq2SeqModel(SequenceModel, Protocol):
    """The response model: an encoder over the source and a decoder over the response."""

    def __call__(self, src: Tensor, tgt: Tensor) -> SeqOutput:
        """The same as ``score`` (the training steps call the module)."""

    def encode(self, src: Tensor) -> EncoderOutput:
        """src: (B, S) ids or (B, S, V) float one-hot rows, left-padded with ``<pad>`` -> the encoder's output."""

    def state_from(self, enc: EncoderOutput) -> State:
        """The decoding state before ``<s>`` of an encoder output (``initial_state`` = state_from(encode(src)))."""

    def encode_prefix(self, src: Tensor) -> EncoderPrefix:
        """The encoder over the first P positions of B rows, src (B, P) ids (P may be 0)."""

    def select_prefix(self, prefix: EncoderPrefix, rows: Tensor) -> EncoderPrefix:
        """The prefix of rows (M,) (indices into its B rows; repeats allowed) -> a prefix of M rows."""

    def encode_from(self, prefix: EncoderPrefix, src: Tensor) -> EncoderOutput:
        """``encode(src)`` of rows src (M, S) (ids) whose first P positions are those ``prefix`` (M rows) encoded."""


def fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with its LSTM weights in one contiguous cuDNN buffer again (``copy.deepcopy`` splits
    them, and cuDNN would then re-pack them on every call); a no-op beyond the copy on CPU."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()
    return twin
