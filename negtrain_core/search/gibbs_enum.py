"""gibbs-enum (He & Glass 2020, Appendix A, Algorithm 3), batched over targets x restarts x candidates.

For each target y the search looks for the trigger x minimising eq. (7)
    L(x; y) = -1/m sum_t log p(y_t | y_<t, x)  +  lambda_in * R(x),   R(x) = -1/n sum_t log p_LM(x_t | x_<t)  (eq. 8)
one position at a time: the gradient of -L with respect to the one-hot x_t picks the top-G ids (``propose``), all
of them are scored (``score``) and the best is kept if it lowers L (``accept``); up to T sweeps over the positions,
R restarts, the best restart kept (``search``).

What the paper leaves unsaid follows the authors' release (docs/release.md#gibbs-enum):
- the trigger is ``trigger_len`` free tokens + ``<eou>``, left-padded to ``src_len`` like the data; R(x) scores
  ``<s> x_1 .. x_k </s>`` (n = k + 1 predictions), as the release's LM does for an input ending in ``<eou>``;
- loss reweighting: in min mode each target token already at or above T_out gets weight ``reweight``; a sequence
  whose statistic (mean, or min in min mode) is above T_out gets ``reweight`` on its target term (with
  ``sequence_reweight`` io_only, as the release, only when the LM term is on); the LM term gets ``reweight`` once
  R's log-prob is above T_in. Final losses are reported without reweighting;
- the gradient pass runs in train mode (dropout active) when ``grad_train_mode``, the LM too unless
  ``lm_train_mode`` is off (the release's LM has no dropout there; a model in eval mode takes its gradient on
  torch's own RNN kernels, as cuDNN's RNN backward needs train mode); scoring runs in eval mode;
- special tokens are never candidates (``<unk>`` is when ``allow_unk``); the current token is not re-tried, except
  while a row's best loss is unset (``first_position`` best, below);
- initialisation uniform over non-special ids, or an LM sample (io-hits; ``lm_sample_rng`` says where its random
  draws are made).
A candidate replaces the current token only if it lowers the row's loss (``accept``). With ``first_position`` best
(the release) each restart's best loss starts unset (+inf; the release's -1000 log-likelihood), so the first
position takes the best of its candidates even when it is worse than the initial token.
Early stop (``stop_rule``): per_row, as Algorithm 3 states it for one target, stops a (target, restart) row after a
sweep that did not lower its loss; batch_mean, as the release, stops all rows of a group (one restart over a batch of
``stop_batch`` consecutive targets) once the group's mean loss did not fall during a sweep.

Scoring runs all candidates of all active rows in ``torch.inference_mode``, in chunks of at most ``max_chunk``
rows (halved on CUDA out-of-memory), rows sorted by target length so a chunk carries little padding. The G
candidates of a row differ at one position only, so the encoder and the LM run the shared prefix once per row and
only the remaining steps per candidate (the models' prefix methods, models/interface.py); the decoder is the model's
own ``decode_block``. On CUDA the scoring runs on the models' ``scoring_copy`` in ``score_dtype`` (float16 by
default; the output layer padded to a multiple of 64 rows so the big GEMMs stay on aligned tensor-core kernels);
the target tokens' log-probabilities come from one fused kernel that accumulates the log-normaliser in float32
without writing the log-softmax (models/gold_logp.py; ``fused_logp``); the gradient pass uses TF32 matmuls; the final
``evaluate`` (hit criteria, reported losses) runs the original models in float32. With ``search.cuda_graph``
Algorithm 1's searches run each position over all rows of a batch, stopped rows masked out, as one CUDA graph
(``SearchGraphs``): at its batch of 100 targets the plain search is host-bound.

Shapes: N targets, R restarts, B rows being searched (target x restart), G candidates, S encoder input length,
K = trigger_len free tokens, T target length ``<s> y </s> <pad>..``, T' = T - 1 scored positions, V vocabulary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from negtrain_core.models.gold_logp import gold_logp
from negtrain_core.models.interface import EncoderPrefix, LanguageModel, Seq2SeqModel, SequenceModel, State
from negtrain_core import stage
from negtrain_core.config import SearchSettings
from negtrain_core.device import capture_graph, tf32_matmul
from negtrain_core.models.steps import GRAPH_WARMUP
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, SPECIALS, UNK_ID

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Thresholds:
    """Hit thresholds (paper §3.2): T_out, the seq2seq's, and T_in, the LM's mean per-word test log-likelihood."""

    out: float
    inp: float


class Evaluation(NamedTuple):
    """Unweighted scores of triggers. token_logp, greedy, mask: (B, T'); lm_logp: (B,) or None."""

    token_logp: Tensor
    greedy: Tensor
    mask: Tensor
    lm_logp: Tensor | None


class SearchResult(NamedTuple):
    """Best trigger per target (restart with the lowest search objective), in the targets' order.

    triggers:   (N, S) encoder inputs (free tokens + ``<eou>``).
    losses:     (N,) eq. (7) without reweighting (lambda_in of the search), float32 forward.
    objective:  (N,) the reweighted search objective of the kept restart (scoring precision).
    evaluation: Evaluation of ``triggers`` (float32, eval mode).
    trajectory: (sweeps + 1, N, R) search objective of every row after each sweep (index 0: initial).
    sweeps_run: (N, R) sweeps each row ran before its early stop.
    candidates_scored: how many candidate rows were scored in total.
    """

    triggers: Tensor
    losses: Tensor
    objective: Tensor
    evaluation: Evaluation
    trajectory: Tensor
    sweeps_run: Tensor
    candidates_scored: int


# ---------------------------------------------------------------------------------------------- building blocks


def layout(free: Tensor, src_len: int) -> Tensor:
    """free: (B, K) ids -> encoder input (B, S): ``<pad>`` .. free ``<eou>`` (the data's left-padded layout)."""
    B, K = free.shape
    pad = free.new_full((B, src_len - K - 1), PAD_ID)
    return torch.cat([pad, free, free.new_full((B, 1), EOU_ID)], dim=1)


def banned_ids(vocab_size: int, allow_unk: bool, device: torch.device | str = "cpu") -> Tensor:
    """(V,) True on ids that may never be trigger tokens: the specials, ``<unk>`` too unless ``allow_unk``."""
    banned = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    banned[: len(SPECIALS)] = True
    banned[UNK_ID] = not allow_unk
    return banned


def objective(token_logp: Tensor, mask: Tensor, lm_logp: Tensor | None, th: Thresholds, cfg: SearchSettings,
              reweight: float | None = None) -> Tensor:
    """Per-row loss (B,) to minimise: reweighted target NLL + lambda_in * reweighted R(x).

    token_logp, mask: (B, T'); lm_logp: (B,) mean LM log-prob of the trigger (needed when lambda_in > 0).
    ``reweight`` None uses ``cfg.reweight``; 1.0 gives the plain eq. (7). The sequence-level factor applies in both
    modes, or only with the LM term (``cfg.sequence_reweight`` io_only).
    """
    rw = cfg.reweight if reweight is None else reweight
    maskf = mask.to(token_logp.dtype)
    m = maskf.sum(-1)
    w = maskf
    if cfg.hit_mode == "min":
        w = torch.where(token_logp.detach() >= th.out, rw, 1.0) * maskf
    target_nll = -(token_logp * w).sum(-1) / m
    if cfg.sequence_reweight == "io_only" and cfg.lambda_in <= 0:
        return target_nll                                      # the release's o-mode: no sequence-level factor
    if cfg.hit_mode == "min":
        stat = token_logp.detach().masked_fill(~mask, float("inf")).min(-1).values
    else:
        stat = (token_logp.detach() * maskf).sum(-1) / m
    loss = torch.where(stat > th.out, rw, 1.0) * target_nll
    if cfg.lambda_in > 0:
        loss = loss + cfg.lambda_in * torch.where(lm_logp.detach() > th.inp, rw, 1.0) * -lm_logp
    return loss


def lm_trigger_logp(lm: LanguageModel, free: Tensor, fused: bool = False) -> Tensor:
    """Mean LM log-prob (B,) of ``<s> x_1 .. x_K </s>`` over its K + 1 predictions (R(x) = minus this).

    ``fused``: ids' log-probs by the fused kernel (candidate scoring); off, torch's log-softmax, as the hit test and
    the thresholds score.

    free: (B, K) ids, or (B, K, V) float one-hot rows; then the gradient reaches x_t both as the LM's input and
    as its predicted token (log p_LM(. | x_<t) dotted with the one-hot), as in the release.
    """
    B, V = free.size(0), lm.vocab_size
    if free.dtype in (torch.int64, torch.int32):
        tokens = torch.cat([free.new_full((B, 1), BOS_ID), free, free.new_full((B, 1), EOS_ID)], dim=1)
        logits, _ = lm.decode_block(tokens[:, :-1], lm.initial_state(tokens))         # (B, K+1, V)
        return gold_logp(logits, tokens[:, 1:], fused).mean(-1)
    # scattered one-hot rows: F.one_hot reads the ids' range back to the host on the CPU (tests/host_syncs.py)
    bos = _one_hot(free.new_full((B, 1), BOS_ID, dtype=torch.long), V, free.dtype)
    eos = _one_hot(free.new_full((B, 1), EOS_ID, dtype=torch.long), V, free.dtype)
    inputs = torch.cat([bos, free], dim=1)                                            # (B, K+1, V) one-hot
    logits, _ = lm.decode_block(inputs, lm.initial_state(inputs))                     # (B, K+1, V)
    logp = torch.log_softmax(_upcast(logits), dim=-1)
    return (logp * torch.cat([free, eos], dim=1)).sum(-1).mean(-1)


def _upcast(x: Tensor) -> Tensor:
    """Half-precision tensors to float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _one_hot(ids: Tensor, vocab_size: int, dtype: torch.dtype) -> Tensor:
    """ids: (B, S) -> (B, S, V) float one-hot rows, written once in ``dtype``."""
    return torch.zeros(*ids.shape, vocab_size, dtype=dtype, device=ids.device).scatter_(-1, ids.unsqueeze(-1), 1.0)


def trim(tgt: Tensor) -> Tensor:
    """tgt: (B, T) right-padded -> (B, T_real) without the all-``<pad>`` tail columns. Reads the length back: on a GPU
    a host synchronisation, after which the GPU idles until the host has queued new work."""
    return tgt[:, : int((tgt != PAD_ID).sum(1).max())]


def _chunk_targets(tgt: Tensor, whole: bool, trimmed: bool) -> Tensor:
    """A chunk's targets (b, T) without all-``<pad>`` tail columns: as given when the chunk holds every row of targets
    the caller has trimmed (``trimmed``), so the passes of a sweep make no host synchronisation; else ``trim``."""
    return tgt if whole and trimmed else trim(tgt)


# ------------------------------------------------------------------------------------------------------ chunking


@dataclass
class ChunkSize:
    """Rows per forward; ``run_chunked`` halves it on out-of-memory and later calls keep the smaller size."""

    rows: int


def _capturing() -> bool:
    """Whether the current CUDA stream is capturing a graph."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def chunks(fn: Callable[[int, int], Any], n: int, size: ChunkSize) -> list[Any]:
    """``fn(start, end)`` over [0, n) in chunks of ``size.rows``, halving on out-of-memory (not while a CUDA graph
    is being captured: the out-of-memory error then goes to the caller): the list of results."""
    out, start = [], 0
    while start < n:
        end = min(n, start + size.rows)
        try:
            out.append(fn(start, end))
        except torch.OutOfMemoryError:
            if end - start == 1 or _capturing():          # a graph cannot hold the smaller chunks' host reads
                raise
            size.rows = max(1, (end - start) // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start = end
    return out


def run_chunked(fn: Callable[[int, int], Any], n: int, size: ChunkSize) -> Any:
    """Concatenate ``fn(start, end)`` over [0, n) in chunks of ``size.rows``, halving on out-of-memory.

    ``fn`` returns a tensor, or a tuple of tensors concatenated field by field.
    """
    out = chunks(fn, n, size)
    if isinstance(out[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*out))
    return torch.cat(out)


@contextlib.contextmanager
def _modes(models: list[SequenceModel | None], train: bool) -> Iterator[None]:
    """Put ``models`` in train/eval mode for the block and restore their previous modes."""
    models = [m for m in models if m is not None]
    before = [m.training for m in models]
    for m in models:
        m.train(train)
    try:
        yield
    finally:
        for m, was in zip(models, before):
            m.train(was)


def _differentiable_rnn(model: SequenceModel | None) -> contextlib.AbstractContextManager:
    """Run ``model``'s forward on torch's own RNN kernels if it is in eval mode (cuDNN's RNN backward needs training
    mode; ``lm_train_mode`` or ``grad_train_mode`` off leaves a model in eval mode in the gradient pass). The kernel
    is chosen when the forward runs, so the backward follows it. Eval mode is train mode without dropout, which is
    how the release runs its LM there (rebuilt with dropout 0)."""
    if model is None or model.training:
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=False)


# ------------------------------------------------------------------------------------- gradient, score, accept


def trigger_gradient(seq2seq: Seq2SeqModel, lm: LanguageModel | None, src: Tensor, tgt: Tensor, pos: int,
                     th: Thresholds, cfg: SearchSettings, size: ChunkSize | None = None, trimmed: bool = False
                     ) -> Tensor:
    """d L / d one-hot x_pos: (B, V) for src (B, S), tgt (B, T); one forward/backward per chunk of rows.

    Each row's loss depends on its own trigger only, so the gradient of the summed loss is every row's own.
    ``trimmed``: tgt has no all-``<pad>`` tail column (``trim``), so a chunk of all rows needs no trimming.
    """
    free = cfg.free_positions()
    size = size or ChunkSize(max(1, cfg.max_chunk // 16))
    dtype = next(seq2seq.parameters()).dtype

    def chunk(a: int, b: int) -> Tensor:
        onehot = _one_hot(src[a:b], seq2seq.vocab_size, dtype).requires_grad_()         # (b-a, S, V)
        t = _chunk_targets(tgt[a:b], (a, b) == (0, src.size(0)), trimmed)
        # TF32 matmuls: the gradient only ranks candidates (cuDNN's LSTMs use TF32 by default anyway)
        with torch.enable_grad(), _modes([seq2seq], cfg.grad_train_mode), \
                _modes([lm], cfg.grad_train_mode and cfg.lm_train_mode), tf32_matmul():
            with _differentiable_rnn(seq2seq):
                out = seq2seq.score(onehot, t)
            with _differentiable_rnn(lm):
                lm_logp = lm_trigger_logp(lm, onehot[:, free.start:free.stop]) if cfg.lambda_in > 0 else None
            loss = objective(out.token_logp, out.mask, lm_logp, th, cfg).sum()
            (grad,) = torch.autograd.grad(loss, onehot)
        return grad[:, pos]

    return run_chunked(chunk, src.size(0), size)


def propose(grad: Tensor, current: Tensor, banned: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-k ids by the gradient of -L. grad: (B, V) of L; current: (B,) -> ids (B, k), valid (B, k).

    Banned ids never appear; the current token may be among the top-k but is marked invalid (re-trying it
    cannot lower the loss), as are slots beyond the allowed vocabulary.
    """
    scores = (-_upcast(grad)).masked_fill(banned, float("-inf"))
    vals, ids = scores.topk(min(k, grad.size(-1)), dim=-1)
    return ids, (vals > float("-inf")) & (ids != current.unsqueeze(-1))


class Scorer(NamedTuple):
    """The models candidate scoring runs: eval-mode copies in the scoring dtype (``scorer``) or the models."""

    seq2seq: Seq2SeqModel
    lm: LanguageModel | None


def scorer(seq2seq: Seq2SeqModel, lm: LanguageModel | None, cfg: SearchSettings) -> Scorer:
    """The models' half-precision ``scoring_copy`` on CUDA with ``score_dtype`` float16/bfloat16, else the models."""
    dtype = _DTYPES[cfg.score_dtype]
    if next(seq2seq.parameters()).device.type != "cuda" or dtype == torch.float32:
        return Scorer(seq2seq, lm)
    return Scorer(seq2seq.scoring_copy(dtype), lm.scoring_copy(dtype) if lm is not None and cfg.lambda_in else None)


def rows_loss(sc: Scorer, src: Tensor, tgt: Tensor, th: Thresholds, cfg: SearchSettings) -> Tensor:
    """Reweighted objective (M,) of whole triggers src (M, S) for targets tgt (M, T); no autograd."""
    tgt = trim(tgt)
    with torch.inference_mode():
        logits, _ = sc.seq2seq.decode_block(tgt[:, :-1], sc.seq2seq.initial_state(src))
        token_logp = gold_logp(logits, tgt[:, 1:], cfg.fused_logp)
        free = cfg.free_positions()
        lm_logp = lm_trigger_logp(sc.lm, src[:, free.start:free.stop], cfg.fused_logp) if cfg.lambda_in > 0 else None
        return objective(token_logp, tgt[:, 1:] != PAD_ID, lm_logp, th, cfg)


class Prefix(NamedTuple):
    """What the G candidates of each base row share when only position ``pos`` changes (B base rows).

    enc: the seq2seq's ``encode_prefix`` of the positions before pos; lm_sum: (B,) summed LM log-probs of the free
    tokens before pos; lm_next: (B, V) LM log-probs of the token at pos; lm_state: the LM's decoding state after
    them. The LM fields are None without an LM term. ``enc`` and ``lm_state`` are opaque (the models' own).
    """

    enc: EncoderPrefix
    lm_sum: Tensor | None
    lm_next: Tensor | None
    lm_state: State


def prefix(sc: Scorer, src: Tensor, pos: int, cfg: SearchSettings, size: ChunkSize | None = None) -> Prefix:
    """The shared part of the candidates at ``pos`` for base rows src (B, S): encoder and LM up to pos.

    The LM runs over the base rows in chunks of ``size`` (halved on out-of-memory, as the candidates are): its
    logits are (B, pos + 1, V), gigabytes for the Ubuntu vocabulary and 2,000 base rows. Of them only the free tokens'
    log-probs (``gold_logp``) and the last position's whole log-softmax are kept.
    """
    lm, B = sc.lm, src.size(0)
    with torch.inference_mode():
        enc = sc.seq2seq.encode_prefix(src[:, :pos])
        if cfg.lambda_in <= 0:
            return Prefix(enc, None, None, None)
        j = pos - cfg.free_positions().start                                            # free tokens before pos
        tokens = torch.cat([src.new_full((B, 1), BOS_ID), src[:, pos - j:pos]], dim=1)  # <s> x_1 .. x_j

        def lm_rows(a: int, b: int) -> tuple[Tensor, Tensor, State]:
            logits, state = lm.decode_block(tokens[a:b], lm.initial_state(tokens[a:b]))  # (b - a, j + 1, V)
            lm_sum = gold_logp(logits[:, :-1], tokens[a:b, 1:], cfg.fused_logp).sum(-1)  # x_1 .. x_j
            return lm_sum, torch.log_softmax(_upcast(logits[:, -1]), dim=-1), state     # the whole next position

        parts = chunks(lm_rows, B, size or ChunkSize(cfg.max_chunk))
        lm_sum, lm_next = (torch.cat([p[i] for p in parts]) for i in (0, 1))
        return Prefix(enc, lm_sum, lm_next, lm.cat_rows([p[2] for p in parts]))


def _lm_from(lm: LanguageModel, pre: Prefix, rows: Tensor, pos: int, base: Tensor, cfg: SearchSettings,
             group: int = 1) -> Tensor:
    """Mean LM log-prob (M,) of rows' free tokens, continued from the prefix: the LM runs from pos on only. With
    ``cfg.shared_tail``, an LM with ``decode_shared_tail`` (the LSTM's) reads the tokens after pos once per
    ``group`` consecutive rows (a base row's candidates, which agree there)."""
    free = cfg.free_positions()
    state = lm.select_rows(pre.lm_state, base)
    tokens = torch.cat([rows[:, pos:free.stop], rows.new_full((rows.size(0), 1), EOS_ID)], dim=1)  # cand .. </s>
    shared = getattr(lm, "decode_shared_tail", None) if cfg.shared_tail and group > 1 else None
    if shared is not None:
        logits, _ = shared(tokens[:, 0], tokens[::group, 1:-1], group, state)            # (M, K - j, V)
    else:
        logits, _ = lm.decode_block(tokens[:, :-1], state)                              # (M, K - j, V)
    cand = pre.lm_next[base, rows[:, pos]]                                              # (M,)
    return (pre.lm_sum[base] + cand + gold_logp(logits, tokens[:, 1:], cfg.fused_logp).sum(-1)) / (cfg.trigger_len + 1)


def score(sc: Scorer, src: Tensor, pos: int, cands: Tensor, tgt: Tensor, th: Thresholds, cfg: SearchSettings,
          size: ChunkSize | None = None, trimmed: bool = False) -> Tensor:
    """Objective (B, G) of src (B, S) with position ``pos`` set to each of cands (B, G); tgt (B, T) (``trimmed``: as
    ``trigger_gradient``'s).

    The B x G rows are built chunk by chunk, whole base rows at a time (row r: base r // G, candidate r % G), and
    scored in batched forwards; the encoder and the LM run the shared prefix once per base row and only the rest
    per candidate; a model with ``expand_prefix`` (the LSTM) also keeps the prefix's encoder outputs once per base
    row for the attention to read, and with ``cfg.shared_tail`` computes the input products of the source positions
    after ``pos``, of the target tokens and of the LM's tokens after ``pos`` once per base row too (a row's
    candidates agree there).
    """
    G = cands.size(1)
    size = size or ChunkSize(cfg.max_chunk)
    pre = prefix(sc, src, pos, cfg, size)
    s2s = sc.seq2seq
    expand = getattr(s2s, "expand_prefix", None)
    groups = ChunkSize(max(1, size.rows // G))                  # chunks of whole base rows, G candidate rows each

    def chunk(a: int, b: int) -> Tensor:
        first = torch.arange(a, b, device=src.device)                                   # base rows of the chunk
        base = first.repeat_interleave(G)                                               # (M,): row r, base r // G
        rows = src[base]
        rows[:, pos] = cands[a:b].reshape(-1)
        t = _chunk_targets(tgt[base], (a, b) == (0, src.size(0)), trimmed)
        with torch.inference_mode():
            pre_rows = (expand(pre.enc, first, G, shared_tail=cfg.shared_tail) if expand is not None
                        else s2s.select_prefix(pre.enc, base))
            enc = s2s.encode_from(pre_rows, rows)                                       # encoder from pos on
            # the logits are freed before the LM's continuation allocates its own
            token_logp = gold_logp(s2s.decode_block(t[:, :-1], s2s.state_from(enc))[0], t[:, 1:], cfg.fused_logp)
            lm_logp = _lm_from(sc.lm, pre, rows, pos, base, cfg, G) if cfg.lambda_in > 0 else None
            return objective(token_logp, t[:, 1:] != PAD_ID, lm_logp, th, cfg)

    out = run_chunked(chunk, src.size(0), groups).view(-1, G)
    size.rows = min(size.rows, groups.rows * G)                 # an out-of-memory halving holds for later calls
    return out


def accept(best: Tensor, cand_loss: Tensor, cands: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Keep the best candidate when it lowers the loss. best: (B,); cand_loss, cands, valid: (B, G).

    Returns (chosen id or -1 where nothing improved (B,), new best loss (B,), improved (B,)). Ties go to the
    higher-ranked candidate, as in the release's sequential loop with a strict ``<``.
    """
    masked = cand_loss.masked_fill(~valid, float("inf"))
    low, j = masked.min(-1)
    improved = low < best
    chosen = torch.where(improved, cands.gather(1, j.unsqueeze(1)).squeeze(1), -1)
    return chosen, torch.where(improved, low, best), improved


# ------------------------------------------------------------------------------------------- init, evaluation


def _drawn_on_cpu(draw: Callable[[bool], Tensor], device: torch.device | str) -> Tensor:
    """``draw(pin_memory)``'s CPU tensor (drawn from a CPU generator) on ``device``. For CUDA it is drawn into
    page-locked memory and copied without blocking, so the host goes on queueing work (a copy from ordinary memory
    synchronises with the GPU; torch's caching host allocator keeps the block until the copy has run)."""
    cuda = torch.device(device).type == "cuda"
    return draw(cuda).to(device, non_blocking=cuda)


def lm_sample(lm: LanguageModel, n: int, length: int, banned: Tensor, generator: torch.Generator,
              rng: str = "cpu") -> Tensor:
    """n ancestral samples of ``length`` tokens after ``<s>`` (banned ids never drawn) -> (n, length).

    torch's multinomial draws one sample as argmax(p / q) with q ~ Exp(1) filled in a tensor like p from the
    generator (Gumbel-max); the argmax is taken on the model's device. ``rng`` (config ``search.lm_sample_rng``):
    - cpu: q drawn from ``generator`` on the CPU, so the tokens are ``torch.multinomial(probs.cpu(), 1,
      generator=generator)``'s (tests/test_search.py checks the equality), made without reading the GPU: each step
      only copies q to the device. Filling q is the host's work, one exponential per vocabulary id a step;
    - device: q drawn on the model's device from a generator of that device seeded with one draw from ``generator``
      (the same distribution, other tokens; no host work but the seed).
    """
    device = next(lm.parameters()).device
    tok, out = torch.full((n, 1), BOS_ID, device=device), []
    banned = banned.to(device)
    state = lm.initial_state(tok)
    if rng == "device":
        seed = int(torch.randint(2**63 - 1, (1,), generator=generator))
        on_device = torch.Generator(device=device).manual_seed(seed)

        def exponentials(shape: torch.Size) -> Tensor:
            return torch.empty(shape, dtype=torch.float32, device=device).exponential_(generator=on_device)
    elif rng == "cpu":
        def exponentials(shape: torch.Size) -> Tensor:
            return _drawn_on_cpu(lambda pin: torch.empty(shape, dtype=torch.float32, pin_memory=pin)
                                 .exponential_(generator=generator), device)
    else:
        raise ValueError(f"search.lm_sample_rng: {rng!r} is not cpu or device")
    with torch.inference_mode(), _modes([lm], False):
        for _ in range(length):
            logits, state = lm.decode_block(tok, state)                                 # (n, 1, V)
            probs = torch.softmax(logits[:, -1].float(), dim=-1).masked_fill(banned, 0.0)
            tok = (probs / exponentials(probs.shape)).argmax(-1, keepdim=True)          # (n, 1); q ~ Exp(1)
            out.append(tok)
    return torch.cat(out, dim=1)


def init_free(n: int, cfg: SearchSettings, vocab_size: int, lm: LanguageModel | None, generator: torch.Generator,
              device: torch.device) -> Tensor:
    """Initial free tokens (n, K): uniform over non-special ids, or an LM sample (``cfg.init == "lm"``)."""
    if cfg.init == "lm":
        if lm is None:
            raise ValueError("gibbs-enum: init 'lm' (io-hits) needs the input LM")
        # the mask made where the LM runs: a copy from the CPU would synchronise with the GPU
        lm_device = next(lm.parameters()).device
        return lm_sample(lm, n, cfg.trigger_len, banned_ids(vocab_size, cfg.allow_unk, lm_device), generator,
                         cfg.lm_sample_rng).to(device)
    return _drawn_on_cpu(lambda pin: torch.randint(len(SPECIALS), vocab_size, (n, cfg.trigger_len),
                                                   generator=generator, pin_memory=pin), device)


def evaluate(seq2seq: Seq2SeqModel, lm: LanguageModel | None, src: Tensor, tgt: Tensor, cfg: SearchSettings,
             size: ChunkSize | None = None, train: bool = False) -> Evaluation:
    """float32, eval-mode scores of triggers src (B, S) for targets tgt (B, T) through the seq2seq's ``score``.

    ``train`` runs the seq2seq in train mode (dropout active, torch's global RNG: the release's Algorithm 1 hit
    test, config ``hits.model_mode``); the LM always runs in eval mode.
    """
    size = size or ChunkSize(cfg.max_chunk // 4)
    free = cfg.free_positions()

    def chunk(a: int, b: int) -> tuple[Tensor, ...]:
        out = seq2seq.score(src[a:b], tgt[a:b])
        lm_logp = lm_trigger_logp(lm, src[a:b, free.start:free.stop]) if lm is not None else out.mask[:, 0]
        return out.token_logp, out.greedy, out.mask, lm_logp

    with torch.no_grad(), _modes([lm], False), _modes([seq2seq], train):
        token_logp, greedy, mask, lm_logp = run_chunked(chunk, src.size(0), size)
    return Evaluation(token_logp, greedy, mask, lm_logp if lm is not None else None)


# ------------------------------------------------------------------------------------------------------ search


def stop_groups(order: Tensor, restarts: int, batch: int) -> Tensor:
    """(N * R,) batch_mean group of each searched row; row i * R + r is restart r of target order[i] (order: (N,)
    list positions, sorted by length). A group is one restart over ``batch`` consecutive targets of the list, as the
    release searches its lists in batches, one restart after the other."""
    return ((order // batch * restarts).repeat_interleave(restarts)
            + torch.arange(restarts, device=order.device).repeat(len(order)))


def progressed(loss: Tensor, before: Tensor, groups: Tensor | None) -> Tensor:
    """(B,) rows whose last sweep counts as progress. loss, before: (B,) after and before the sweep.

    groups None (``stop_rule`` per_row): the row's own loss fell. groups (B,) ids (batch_mean): the mean loss of
    the row's group fell, as the release compares the mean best loss of its batch.
    """
    if groups is None:
        return loss < before
    n = int(groups.max()) + 1

    def mean(x: Tensor) -> Tensor:                                                     # (n,) per-group mean
        return x.new_zeros(n).index_add_(0, groups, x) / x.new_zeros(n).index_add_(0, groups, torch.ones_like(x))

    return (mean(loss) < mean(before))[groups]


def position_update(seq2seq: Seq2SeqModel, lm: LanguageModel | None, sc: Scorer, src: Tensor, tgt: Tensor,
                    loss: Tensor, pos: int, th: Thresholds, cfg: SearchSettings, banned: Tensor,
                    sizes: tuple[ChunkSize, ChunkSize]) -> tuple[Tensor, Tensor, Tensor]:
    """One position of Algorithm 3 for rows src (b, S), tgt (b, T) (``trim``-med), loss (b,): the gradient, the
    top-G proposal, scoring and acceptance. -> (the position's ids after it (b,), the rows' losses after it (b,),
    improved (b,)). Makes no host synchronisation when each pass is one chunk."""
    grad = trigger_gradient(seq2seq, lm, src, tgt, pos, th, cfg, sizes[0], trimmed=True)   # (b, V)
    cands, valid = propose(grad, src[:, pos], banned, cfg.candidates)                        # (b, G)
    if cfg.first_position == "best":          # a row whose best is unset (+inf) may keep its current id, as any other
        valid |= loss.isinf().unsqueeze(1) & ~banned[cands]
    cand_loss = score(sc, src, pos, cands, tgt, th, cfg, sizes[1], trimmed=True)
    chosen, new_loss, improved = accept(loss, cand_loss, cands, valid)
    return torch.where(improved, chosen, src[:, pos]), new_loss, improved


def masked_position_update(seq2seq: Seq2SeqModel, lm: LanguageModel | None, sc: Scorer, src: Tensor, tgt: Tensor,
                           loss: Tensor, active: Tensor, pos: int, th: Thresholds, cfg: SearchSettings,
                           banned: Tensor, sizes: tuple[ChunkSize, ChunkSize]) -> None:
    """``position_update`` over every row, kept only where ``active`` (B,): src (B, S) and loss (B,) in place. The
    shapes do not depend on which rows are still searching, so one CUDA graph serves every sweep (``SearchGraphs``)."""
    ids, new_loss, improved = position_update(seq2seq, lm, sc, src, tgt, loss, pos, th, cfg, banned, sizes)
    keep = improved & active
    src[:, pos] = torch.where(keep, ids, src[:, pos])
    loss.copy_(torch.where(keep, new_loss, loss))


def _sweep(seq2seq: Seq2SeqModel, lm: LanguageModel | None, sc: Scorer, src: Tensor, tgt: Tensor, loss: Tensor,
           active: Tensor, th: Thresholds, cfg: SearchSettings, banned: Tensor,
           sizes: tuple[ChunkSize, ChunkSize]) -> int:
    """One sweep over the free positions of the active rows; updates src (B, S) and loss (B,) in place.

    Returns the number of candidate rows scored.
    """
    rows = active.nonzero().squeeze(1)
    t = trim(tgt[rows])                   # once a sweep: a position's passes then make no host synchronisation
    for pos in cfg.free_positions():
        src[rows, pos], loss[rows], _ = position_update(seq2seq, lm, sc, src[rows], t, loss[rows], pos, th, cfg,
                                                        banned, sizes)
    return rows.numel() * min(cfg.candidates, seq2seq.vocab_size) * len(cfg.free_positions())


def _fixed_sweep(seq2seq: Seq2SeqModel, lm: LanguageModel | None, sc: Scorer, graphs: SearchGraphs,
                 fixed: FixedRows, active: Tensor, th: Thresholds, cfg: SearchSettings, banned: Tensor,
                 sizes: tuple[ChunkSize, ChunkSize]) -> int:
    """``_sweep`` on the buffers of ``fixed``: every position over all rows, the inactive ones masked out, each
    position through ``graphs.run``. Returns the number of candidate rows of the active rows."""
    searching = int(active.sum())
    if searching:
        fixed.active.copy_(active)
        for pos in cfg.free_positions():
            graphs.run(fixed, pos, lambda pos=pos: masked_position_update(
                seq2seq, lm, sc, fixed.src, fixed.tgt, fixed.loss, fixed.active, pos, th, cfg, banned, sizes),
                capturable=one_chunk(fixed.src.size(0), cfg, sizes))
    return searching * min(cfg.candidates, seq2seq.vocab_size) * len(cfg.free_positions())


def search(seq2seq: Seq2SeqModel, lm: LanguageModel | None, targets: Tensor, thresholds: Thresholds,
           cfg: SearchSettings, generator: torch.Generator, graphs: SearchGraphs | None = None) -> SearchResult:
    """gibbs-enum for every target row of targets (N, T) ``<s> y </s> <pad>..`` (Algorithm 3).

    The N x R (target, restart) rows are searched together; ``generator`` (a CPU generator) draws the
    initialisations; dropout in the gradient pass uses torch's global RNG (seed it at the entry point).
    ``lm`` may be None for o-mode (lambda_in 0, uniform init); when given, ``evaluation.lm_logp`` is filled.
    ``graphs``: run every position over all rows with the rows that stopped masked out (``masked_position_update``),
    each position one CUDA graph kept across the calls that share it (``SearchGraphs``); the plain path searches the
    active rows only. While every row searches both run the same batches and find the same triggers
    (tests/test_search.py, float64 on the CPU); once rows have stopped, the plain path's smaller batches may round
    otherwise, and on a GPU the graphs' dropout masks in the gradient pass are their own.
    """
    device = next(seq2seq.parameters()).device
    V, (N, R) = seq2seq.vocab_size, (targets.size(0), cfg.restarts)
    order = (targets != PAD_ID).sum(1).argsort(stable=True)                         # short targets first
    tgt = trim(targets[order].to(device)).repeat_interleave(R, dim=0)                 # (B, T), row = n * R + r
    src = layout(init_free(N * R, cfg, V, lm, generator, device), cfg.src_len)        # (B, S)
    banned = banned_ids(V, cfg.allow_unk, device)
    sizes = (ChunkSize(max(1, cfg.max_chunk // 16)), ChunkSize(cfg.max_chunk))
    sc = graphs.scorer(seq2seq, lm, cfg) if graphs is not None else scorer(seq2seq, lm, cfg)
    groups = stop_groups(order, R, cfg.stop_batch).to(device) if cfg.stop_rule == "batch_mean" else None
    with _modes([seq2seq, lm], False):
        loss = run_chunked(lambda a, b: rows_loss(sc, src[a:b], tgt[a:b], thresholds, cfg), N * R, sizes[1])
        fixed = graphs.rows(src, tgt, loss, banned, cfg, sizes) if graphs is not None else None
        if fixed is not None:                         # the group's buffers are the search's tensors from here on
            src, tgt, loss, banned = fixed.src, fixed.tgt, fixed.loss, fixed.banned
        active, sweeps_run = torch.ones_like(loss, dtype=torch.bool), torch.zeros_like(loss, dtype=torch.long)
        trajectory, scored = [loss.clone()], 0
        if cfg.first_position == "best":
            loss.fill_(float("inf"))                      # each restart's best starts unset (release: -1000)
        for _ in range(cfg.sweeps):
            before = loss.clone()
            if fixed is not None:
                scored += _fixed_sweep(seq2seq, lm, sc, graphs, fixed, active, thresholds, cfg, banned, sizes)
            elif active.any():
                scored += _sweep(seq2seq, lm, sc, src, tgt, loss, active, thresholds, cfg, banned, sizes)
            sweeps_run += active
            if cfg.early_stop:
                active &= progressed(loss, before, groups)
            trajectory.append(loss.clone())
    inv = order.argsort().to(device)
    best = loss.view(N, R).argmin(1)[inv]                                               # (N,) kept restart
    rows = inv * R + best
    triggers = src[rows]
    ev = evaluate(seq2seq, lm, triggers, targets.to(device), cfg)
    losses = objective(ev.token_logp, ev.mask, ev.lm_logp, thresholds, cfg, reweight=1.0)
    traj = torch.stack(trajectory).view(-1, N, R)[:, inv]
    return SearchResult(triggers, losses, loss[rows], ev, traj, sweeps_run.view(N, R)[inv], scored)


# ------------------------------------------------------------------------------------------------- CUDA graphs


@dataclass
class FixedRows:
    """The buffers of a search whose rows have one shape (B rows, S source and T target positions, loss dtype): the
    search works on them in place, and each position's CUDA graph reads and writes them. ``banned``: (V,) the ids
    no trigger may hold. ``graphs``: pos -> graph; ``calls``: pos -> runs so far (the first ``GRAPH_WARMUP`` run
    eagerly)."""

    src: Tensor
    tgt: Tensor
    loss: Tensor
    active: Tensor
    banned: Tensor
    graphs: dict[int, Any]
    calls: dict[int, int]


def refresh_copy(copy: nn.Module, model: nn.Module) -> None:
    """Write ``model``'s weights into its ``scoring_copy`` in place (cast to the copy's dtype; a padded output layer
    takes them in its first rows, its padding untouched), so that graphs that read the copy see the new weights."""
    with torch.no_grad():
        weights = model.state_dict()
        for name, dst in copy.state_dict().items():
            w = weights[name]
            (dst if dst.shape == w.shape else dst[: w.size(0)]).copy_(w)


def one_chunk(rows: int, cfg: SearchSettings, sizes: tuple[ChunkSize, ChunkSize]) -> bool:
    """Whether a position's passes over ``rows`` rows (gradient, then rows x G candidates) each take one chunk of
    ``sizes``, so that they make no host synchronisation and a CUDA graph can hold them."""
    return rows <= sizes[0].rows and rows * cfg.candidates <= sizes[1].rows


class SearchGraphs:
    """gibbs-enum's positions as CUDA graphs, kept across the searches of one run: Algorithm 1 searches one batch
    of targets after another, with the same shapes and models that change between the searches (``search.cuda_graph``).

    At Algorithm 1's batch of 100 targets the plain search is host-bound (docs/benchmarks.md, malicious_batch.py):
    each position's passes launch a few hundred small kernels. Here each position over all B rows
    (``masked_position_update``) is, after ``GRAPH_WARMUP`` eager runs on a side stream, one graph replay. The graphs
    read the searched model's own weights, which the training steps update in place, and scoring copies made once
    and refreshed in place at each search (``refresh_copy``). Graphs of every shape share one memory pool: they run
    one after the other, and write only the rows' buffers, which live outside it. Dropout in the gradient pass draws
    from the default CUDA generator, as the eager path's does, but not the same masks.

    ``capture`` False runs the same fixed-row path eagerly (the CPU tests); ``search`` falls back to its plain path
    where a pass would not fit one chunk (the graphs cannot halve a chunk on out-of-memory), and where memory runs
    short the graphs stop for the rest of the run (``stop``).
    """

    def __init__(self, capture: bool = True):
        self.capture = capture and torch.cuda.is_available()
        self.copies: Scorer | None = None
        self.fixed: dict[tuple, FixedRows] = {}
        self.pool: Any = None
        self.stream: torch.cuda.Stream | None = None

    def scorer(self, seq2seq: Seq2SeqModel, lm: LanguageModel | None, cfg: SearchSettings) -> Scorer:
        """``scorer``'s models, made on the first call and refreshed from the models' weights on the next ones."""
        if self.copies is None:
            self.copies = scorer(seq2seq, lm, cfg)
        for copy, model in zip(self.copies, (seq2seq, lm)):
            if copy is not None and copy is not model:
                refresh_copy(copy, model)
        return self.copies

    def rows(self, src: Tensor, tgt: Tensor, loss: Tensor, banned: Tensor, cfg: SearchSettings,
             sizes: tuple[ChunkSize, ChunkSize]) -> FixedRows | None:
        """The buffers for rows src (B, S), tgt (B, T), loss (B,) and the banned ids (V,), filled with them; None
        where a pass over the B rows (their B x G candidates) would take more than one chunk. A graph reads its
        tensors at the addresses it was captured with, so every tensor a position reads is one of these buffers."""
        B = src.size(0)
        if not one_chunk(B, cfg, sizes):
            return None
        key = (tuple(src.shape), tuple(tgt.shape), loss.dtype, src.device)
        if key not in self.fixed:
            self.fixed[key] = FixedRows(src.clone(), tgt.clone(), loss.clone(),
                                        torch.ones(B, dtype=torch.bool, device=src.device), banned.clone(), {}, {})
        fixed = self.fixed[key]
        for buffer, value in ((fixed.src, src), (fixed.tgt, tgt), (fixed.loss, loss), (fixed.banned, banned)):
            buffer.copy_(value)
        return fixed

    def run(self, fixed: FixedRows, pos: int, step: Callable[[], None], capturable: bool = True) -> None:
        """``step`` (one position over the rows of ``fixed``): eagerly on a side stream for its first
        ``GRAPH_WARMUP`` runs, then captured once and replayed. Where memory runs short, ``capturable`` False (an
        out-of-memory error in the eager runs halved the search's chunks, so the pass now reads chunk lengths on the
        host) or a capture that runs out of memory, the graphs stop for the rest of the run (``stop``)."""
        if self.capture:
            fixed.calls[pos] = fixed.calls.get(pos, 0) + 1
            if pos not in fixed.graphs and fixed.calls[pos] > GRAPH_WARMUP:
                if capturable:
                    self._capture(fixed, pos, step)
                else:
                    self.stop("its passes no longer fit one chunk")
        if not self.capture:
            step()
            return
        if pos in fixed.graphs:
            fixed.graphs[pos].replay()
            return
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            step()
        torch.cuda.current_stream().wait_stream(self.stream)

    def _capture(self, fixed: FixedRows, pos: int, step: Callable[[], None]) -> None:
        """Capture ``step`` as the graph of ``pos``; where that runs out of memory, stop the graphs."""
        torch.cuda.synchronize()
        torch.cuda.empty_cache()                      # the eager runs' cached blocks, free for the graphs' own pool
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph, current = torch.cuda.CUDAGraph(), torch.cuda.current_stream()
        try:
            with capture_graph(graph, "search.cuda_graph", pool=self.pool, stream=self.stream):
                step()
        except torch.OutOfMemoryError:
            torch.cuda.set_stream(current)            # where ending the capture failed too, torch left the side stream
            del graph
            self.stop("capturing one ran out of GPU memory")
            return
        fixed.graphs[pos] = graph

    def stop(self, why: str) -> None:
        """Drop every graph and their memory pool, which the eager passes then have for themselves, and run the
        rest of this run's positions eagerly, as ``search.cuda_graph: false`` does; one line says ``why``."""
        for fixed in self.fixed.values():
            fixed.graphs.clear()
        self.pool, self.capture = None, False
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        stage.say(f"search.cuda_graph: the search runs without graphs from here on ({why}); more GPU memory per "
                  f"job (fewer gpu_jobs_per_device) keeps them")
