"""Batched decoding for the seq2seq and the LM: greedy, sampling with a temperature, beam search.

Outputs are token ids without ``<s>``: (B, L) for greedy and sampling, (B, n_best, L) for the beam, each row
ending with ``</s>`` then ``<pad>``, L <= ``max_len`` (the longest row; ``</s>`` counts toward ``max_len``, paper
§2 footnote 1). A row that reaches ``max_len`` tokens without ``</s>`` is returned truncated, without ``</s>``.
Any ``SequenceModel`` (models/interface.py) decodes: ``initial_state(src)`` once (the seq2seq encodes ``src``
(B, S); the LM reads nothing but the batch size and device from it), then one ``decode_block`` per step, the
state opaque; beam search reorders it with ``select_rows``. ``<s>`` and ``<pad>`` are never emitted
(they are no training targets; scores stay the model's log-probs, not renormalised). Decoding runs in eval mode without
gradients, restoring the model's mode afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from negtrain_core.models.interface import SequenceModel, State
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID
from negtrain_core.device import capture_graph

if TYPE_CHECKING:
    from negtrain_core.data.vocab import Vocab

NEVER_EMITTED = (BOS_ID, PAD_ID)   # not targets in training; banned so that <pad> only ever follows </s>


class BeamResult(NamedTuple):
    """tokens: (B, n_best, L) ids, best first; scores: (B, n_best) summed log-probs (``</s>`` included), -inf
    where fewer than ``n_best`` hypotheses exist."""

    tokens: Tensor
    scores: Tensor


@contextlib.contextmanager
def _eval_mode(model: SequenceModel) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def start(model: SequenceModel, src: Tensor) -> State:
    """The decoding state before ``<s>`` for the rows of src (the seq2seq encodes it; the LM reads its size)."""
    return model.initial_state(src)


def step(model: SequenceModel, tok: Tensor, state: State) -> tuple[Tensor, State]:
    """tok: (N,) previous tokens -> log-probs of the next token (N, V) and the new state.

    The log-probs are the model's (not renormalised), with ``NEVER_EMITTED`` ids set to -inf.
    """
    logits, state = model.decode_block(tok.unsqueeze(1), state)
    logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
    for banned in NEVER_EMITTED:                   # scalar indices: no host->device copy (CUDA-graph safe)
        logp[:, banned] = float("-inf")
    return logp, state


def _generate(model: SequenceModel, src: Tensor, max_len: int, pick: Callable[[Tensor], Tensor],
              early_stop: bool = True) -> Tensor:
    """Left-to-right decoding with ``pick``: log-probs (B, V) -> next ids (B,). Returns (B, L); L = ``max_len``
    without ``early_stop`` (no host synchronisation: the loop can be captured in a CUDA graph)."""
    with _eval_mode(model):
        state = start(model, src)
        tok = torch.full((src.shape[0],), BOS_ID, dtype=torch.long, device=src.device)
        done = torch.zeros_like(tok, dtype=torch.bool)
        out = []
        for _ in range(max_len):
            logp, state = step(model, tok, state)
            tok = pick(logp).masked_fill(done, PAD_ID)
            out.append(tok)
            done |= tok == EOS_ID
            if early_stop and bool(done.all()):
                break
        return torch.stack(out, dim=1)


def pad_samples(samples: Tensor, length: int) -> Tensor:
    """(B, L) decoded ids -> (B, length), right-padded with ``<pad>`` (L <= length)."""
    return torch.nn.functional.pad(samples, (0, length - samples.shape[1]), value=PAD_ID)


def greedy(model: SequenceModel, src: Tensor, max_len: int = 20, early_stop: bool = True) -> Tensor:
    """src: (B, S) ids (anything with B rows for the LM) -> argmax responses (B, L)."""
    return _generate(model, src, max_len, lambda logp: logp.argmax(-1), early_stop)


class GraphedGreedy:
    """``greedy`` of one fixed batch shape replayed from a CUDA graph: returns (B, max_len) (rows padded after
    ``</s>``, the same ids as ``greedy`` padded to ``max_len``). The graph reads the model's weights in place, so it
    follows the updates of a model being trained. Other shapes, or a CPU model, decode eagerly.

    One decode of 32 rows is ~20 steps of ~20 small kernels; replayed, it costs their GPU time, not their launches.
    """

    def __init__(self, model: SequenceModel, max_len: int):
        self.model, self.max_len = model, max_len
        self.graph: torch.cuda.CUDAGraph | None = None

    def eager(self, src: Tensor) -> Tensor:
        return pad_samples(greedy(self.model, src, self.max_len), self.max_len)

    def __call__(self, src: Tensor) -> Tensor:
        if src.device.type != "cuda":
            return self.eager(src)
        if self.graph is None:
            self._capture(src)
        elif src.shape != self.static_src.shape:
            return self.eager(src)
        self.static_src.copy_(src)
        self.graph.replay()
        return self.static_out.clone()

    def _capture(self, src: Tensor) -> None:
        self.static_src = src.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):                                  # warm-up: workspaces, cuDNN plans
            greedy(self.model, self.static_src, self.max_len, early_stop=False)
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with capture_graph(self.graph, "train.cuda_graph", stream=stream):   # own stream: steps.GRAPH_WARMUP's note
            self.static_out = greedy(self.model, self.static_src, self.max_len, early_stop=False)


@torch.no_grad()
def greedy_ids(model: SequenceModel, src: Tensor, max_len: int = 20, batch_size: int = 256) -> list[Tensor]:
    """Greedy responses (eval mode), one (B, L) tensor per chunk of ``batch_size`` inputs."""
    model.eval()
    return [greedy(model, chunk, max_len=max_len) for chunk in src.split(batch_size)]


def greedy_responses(model: SequenceModel, src: Tensor, vocab: Vocab, max_len: int = 20,
                     batch_size: int = 256) -> list[list[str]]:
    """Greedy responses as word lists (stopped at ``</s>``)."""
    return [vocab.decode(row) for chunk in greedy_ids(model, src, max_len, batch_size) for row in chunk.tolist()]


def sample(model: SequenceModel, src: Tensor, max_len: int = 20, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> Tensor:
    """Ancestral samples (B, L) from softmax(logits / temperature); temperature 0 is greedy.

    ``generator`` must live on ``src``'s device.
    """
    if temperature == 0:
        return greedy(model, src, max_len)

    def pick(logp: Tensor) -> Tensor:
        probs = torch.softmax(logp / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _generate(model, src, max_len, pick)


# ------------------------------------------------------------------------------------------------ beam search


def _expand(model: SequenceModel, state: State, k: int, batch: int, device: torch.device) -> State:
    """Repeat each of the ``batch`` rows of a state ``k`` times: row b -> rows b*k .. b*k + k-1."""
    return model.select_rows(state, torch.arange(batch, device=device).repeat_interleave(k))


def _merge(pool: tuple[Tensor, Tensor, Tensor], cand: tuple[Tensor, Tensor, Tensor], n_best: int, alpha: float
           ) -> tuple[Tensor, Tensor, Tensor]:
    """Keep the ``n_best`` best of pool + candidates by logp / length**alpha.

    Each is (logp (B, N), lengths (B, N), tokens (B, N, max_len)); -inf logp marks an empty slot.
    """
    logp, length, tokens = (torch.cat([p, c], dim=1) for p, c in zip(pool, cand))
    rank = logp / length.clamp(min=1).float() ** alpha
    idx = rank.topk(n_best, dim=1).indices                                    # (B, n_best)
    gather_tokens = idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
    return logp.gather(1, idx), length.gather(1, idx), tokens.gather(1, gather_tokens)


def _pad_to(seqs: Tensor, width: int) -> Tensor:
    """(B, N, t) -> (B, N, width) right-padded with <pad>."""
    return torch.nn.functional.pad(seqs, (0, width - seqs.shape[-1]), value=PAD_ID)


def _expand_beams(scores: Tensor, logp: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """scores (B, k) + logp (B*k, V) -> the top 2k continuations: scores, source beam, word, each (B, 2k)."""
    V = logp.shape[-1]
    cand = (scores.unsqueeze(-1) + logp.view(-1, k, V)).view(-1, k * V)    # (B, k*V)
    top, idx = cand.topk(2 * k, dim=1)
    return top, idx // V, idx % V


class _Beams(NamedTuple):
    """Live hypotheses: scores (B, k) summed log-probs; hist (B, k, t) tokens so far; tok (B*k,) last tokens;
    state: the decoder state of the B*k rows."""

    scores: Tensor
    hist: Tensor
    tok: Tensor
    state: State


def _advance(model: SequenceModel, beams: _Beams, logp: Tensor, state: State, pool: tuple[Tensor, Tensor, Tensor],
             n_best: int, alpha: float) -> tuple[_Beams, tuple[Tensor, Tensor, Tensor]]:
    """One beam step from the next-token log-probs (B*k, V): finished hypotheses to the pool, k live ones kept."""
    (B, k, t), max_len = beams.hist.shape, pool[2].shape[-1]
    top, beam_idx, word = _expand_beams(beams.scores, logp, k)                # (B, 2k) each
    seqs = torch.cat([beams.hist.gather(1, beam_idx.unsqueeze(-1).expand(-1, -1, t)), word.unsqueeze(-1)], dim=2)
    is_eos = word == EOS_ID
    in_top_k = torch.arange(2 * k, device=top.device) < k
    finished = torch.where(is_eos & in_top_k, top, float("-inf"))
    pool = _merge(pool, (finished, torch.full_like(word, t + 1), _pad_to(seqs, max_len)), n_best, alpha)
    scores, keep = torch.where(is_eos, float("-inf"), top).topk(k, dim=1)    # (B, k), never </s>
    rows = (torch.arange(B, device=top.device).unsqueeze(1) * k + beam_idx.gather(1, keep)).view(-1)
    return _Beams(scores, seqs.gather(1, keep.unsqueeze(-1).expand(-1, -1, t + 1)), word.gather(1, keep).view(-1),
                  model.select_rows(state, rows)), pool


def beam(model: SequenceModel, src: Tensor, k: int = 10, n_best: int = 1, max_len: int = 20,
         length_penalty: float = 0.0) -> BeamResult:
    """Beam search with ``k`` beams, returning the ``n_best`` (<= k) best hypotheses per row.

    Each step expands the k live beams, moves the ``</s>`` continuations ranked within the top k into the finished
    pool, and keeps the k best continuations without ``</s>`` alive (the beam stays full). Hypotheses are ranked by
    summed log-prob / length**``length_penalty`` (length counts ``</s>``; 0 = plain sum, the default). With
    ``length_penalty`` 0 a row stops once its pool holds n_best hypotheses none of the live beams can beat
    (scores only fall); otherwise decoding runs to ``max_len``. Beams still alive at ``max_len`` join the pool as
    truncated hypotheses (no ``</s>``). k = 1 is greedy decoding.
    """
    if not 1 <= n_best <= k:
        raise ValueError(f"beam search needs 1 <= n_best <= k, got n_best={n_best}, k={k}")
    with _eval_mode(model):
        B, dev = src.shape[0], src.device
        state = _expand(model, start(model, src), k, B, dev)
        scores = torch.full((B, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0                                                    # one live beam at first
        beams = _Beams(scores, torch.empty((B, k, 0), dtype=torch.long, device=dev),
                       torch.full((B * k,), BOS_ID, dtype=torch.long, device=dev), state)
        pool = (torch.full((B, n_best), float("-inf"), device=dev), torch.zeros((B, n_best), dtype=torch.long,
                device=dev), torch.full((B, n_best, max_len), PAD_ID, dtype=torch.long, device=dev))
        for _ in range(max_len):
            logp, state = step(model, beams.tok, beams.state)
            beams, pool = _advance(model, beams, logp, state, pool, n_best, length_penalty)
            if length_penalty == 0 and bool((beams.scores.max(1).values <= pool[0][:, -1]).all()):
                break
        else:
            lengths = torch.full_like(beams.scores, max_len, dtype=torch.long)
            pool = _merge(pool, (beams.scores, lengths, beams.hist), n_best, length_penalty)
        width = max(int(pool[1].max()), 1)
        return BeamResult(pool[2][:, :, :width], pool[0])
