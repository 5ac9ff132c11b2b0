"""log p(gold) from logits in one pass over the vocabulary, without writing the log-softmax.

Candidate scoring (gibbs-enum) needs only each target token's log-probability: its logit minus the row's
log-normaliser. ``torch.log_softmax(logits, dtype=float32)`` followed by a gather reads the half-precision logits
once, writes a float32 copy twice their size and reads it again; on an H200 it was the largest kernel of a scoring
pass (19% of it, ahead of the output layer's GEMM). ``gold_logp`` runs one Triton program per row instead, reading
the logits once: the row's maximum and log-sum-exp in float32, then the gold logit minus it; a row of up to
``ROW_BLOCK_MAX`` columns is held whole in registers, a longer one is read in blocks with a running maximum and sum
per lane (online log-sum-exp). The result equals the two-step form's to float32 rounding (``tests/test_gold_logp.py``).

Where Triton cannot run (no Triton, tensors on the CPU, float64 logits, logits that need a gradient) the two-step
torch form runs; so it does, with one warning in the log, for the rest of the process once the kernel has failed to
compile or launch (a GPU host without a C compiler, an unsupported GPU): the values are the same, only slower.
Setting ``TRITON_INTERPRET=1`` before the import runs the kernel in Triton's CPU interpreter, which the tests use.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import Tensor

try:                                                   # ships with CUDA builds of torch; absent from CPU builds
    import triton
    import triton.language as tl
except ImportError:                                    # pragma: no cover - depends on the install
    triton = None

log = logging.getLogger(__name__)
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
_kernel_failed = False                                 # set once the kernel failed: torch's form from then on
_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
ROW_BLOCK_MAX = 16384                                  # vocabularies up to this size: one block per row


def reference_gold_logp(logits: Tensor, gold: Tensor) -> Tensor:
    """logits (..., V) in any float dtype; gold (...) ids -> log p(gold) (...): log-softmax (in float32 for half
    inputs), then a gather."""
    half = logits.dtype in (torch.float16, torch.bfloat16)
    logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32 if half else None)
    return logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1)


def gold_logp(logits: Tensor, gold: Tensor, fused: bool = True) -> Tensor:
    """logits (..., V) in any float dtype; gold (...) ids -> log p(gold) (...) in float32 (float64 stays float64).

    ``fused`` runs the Triton kernel where it can run (see the module docstring); the values are the same.
    """
    global _kernel_failed
    if fused and _kernel_applies(logits):
        try:
            return _triton_gold_logp(logits, gold)
        except torch.OutOfMemoryError:
            raise                                      # the callers halve their chunks on it
        except Exception as e:                        # compiling or launching: Triton raises many kinds
            _kernel_failed = True
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            log.warning("gold_logp: the Triton kernel failed (%s: %s); torch's log-softmax is used from now on",
                        type(e).__name__, first[:300])
    return reference_gold_logp(logits, gold)


def _kernel_applies(logits: Tensor) -> bool:
    return (triton is not None and not _kernel_failed and (logits.is_cuda or _INTERPRET)
            and logits.dtype in _KERNEL_DTYPES and logits.numel() > 0
            and not (logits.requires_grad and torch.is_grad_enabled()))


if triton is not None:
    @triton.jit
    def _gold_logp_row_kernel(logits_ptr, gold_ptr, out_ptr, n_cols, row_stride, BLOCK: tl.constexpr):
        """One row in one block (BLOCK >= n_cols): out = logits[gold] - logsumexp(logits) in float32."""
        row = tl.program_id(0).to(tl.int64)
        base = logits_ptr + row * row_stride
        cols = tl.arange(0, BLOCK)
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
        m = tl.max(x, 0)
        lse = m + tl.log(tl.sum(tl.exp(x - m), 0))
        gold = tl.load(gold_ptr + row)
        tl.store(out_ptr + row, tl.load(base + gold).to(tl.float32) - lse)

    @triton.jit
    def _gold_logp_kernel(logits_ptr, gold_ptr, out_ptr, n_cols, row_stride, BLOCK: tl.constexpr):
        """One row: out = logits[gold] - logsumexp(logits), accumulated in float32 over blocks of BLOCK columns.

        Each lane keeps a running maximum m and a sum s of exp(x - m); lanes that have seen only -inf (padded
        vocabulary rows) keep s = 0. The lanes are combined at the end.
        """
        row = tl.program_id(0).to(tl.int64)
        base = logits_ptr + row * row_stride
        m = tl.full([BLOCK], float("-inf"), tl.float32)
        s = tl.zeros([BLOCK], tl.float32)
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf")).to(tl.float32)
            m_new = tl.maximum(m, x)
            shift = tl.where(m_new == float("-inf"), 0.0, m_new)      # exp(-inf - shift) = 0, never nan
            s = s * tl.exp(m - shift) + tl.exp(x - shift)
            m = m_new
        m_row = tl.max(m, 0)
        lse = m_row + tl.log(tl.sum(s * tl.exp(m - m_row), 0))
        gold = tl.load(gold_ptr + row)
        tl.store(out_ptr + row, tl.load(base + gold).to(tl.float32) - lse)


def _triton_gold_logp(logits: Tensor, gold: Tensor, blocked: bool | None = None) -> Tensor:
    """The kernel over every row of logits (..., V); rows must have unit column stride (copied if not).

    ``blocked`` None picks the whole-row kernel up to ``ROW_BLOCK_MAX`` columns, the blocked loop beyond
    (benchmarks/gold_logp.py times both).
    """
    V = logits.size(-1)
    rows = logits.reshape(-1, V)
    if rows.stride(-1) != 1:
        rows = rows.contiguous()
    out = torch.empty(rows.size(0), dtype=torch.float32, device=logits.device)
    args = (rows, gold.reshape(-1).contiguous(), out, V, rows.stride(0))
    if not (V > ROW_BLOCK_MAX if blocked is None else blocked):
        # the whole row in registers, 8 warps: on an H200, 2.8 ms for 65,536 x 6 rows of V = 10,048 where torch's
        # log-softmax + gather took 9.7 ms; the blocked loop took 4.8 ms a chunk of a search (docs/benchmarks.md)
        block = triton.next_power_of_2(V)
        _gold_logp_row_kernel[(rows.size(0),)](*args, BLOCK=block, num_warps=8 if block >= 2048 else 4)
    else:
        # 4,096 columns a block: each lane's running state stays in registers for any vocabulary size
        _gold_logp_kernel[(rows.size(0),)](*args, BLOCK=4096, num_warps=8)
    return out.view(gold.shape)
