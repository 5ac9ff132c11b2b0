"""The fused gold log-prob kernel (negtrain_core/models/gold_logp.py) against torch's log-softmax + gather.

The kernel is Triton's. On the CPU it runs in Triton's interpreter, which must be switched on before Triton is
imported (TRITON_INTERPRET=1), so those checks run in a fresh Python process. They skip, saying so, where Triton is not
installed (``pip install -e ".[test]"`` installs it); the CUDA check skips without a GPU.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from negtrain_core.models import gold_logp as G
from negtrain_core.models.gold_logp import gold_logp, reference_gold_logp

ROOT = Path(__file__).resolve().parent.parent

CHECKS = textwrap.dedent('''
    import torch
    from dataclasses import replace
    from negtrain_core.models import gold_logp as G
    from negtrain_core.search import gibbs_enum as S
    from negtrain_core.config import ModelSettings
    from negtrain_core.models.lstm import LSTMLM, Seq2Seq

    assert G._kernel_applies(torch.zeros(2, 3)), "the interpreter did not take the kernel path"
    torch.manual_seed(0)

    def check(x, gold, tol):
        # tol, or two float32 ulps of the largest |log p|: the kernel's blocked sums round otherwise than torch's
        # (|log p| near 34 has an ulp of 3.8e-6, and Triton 3.9's interpreter lands one ulp from torch there)
        got, want = G.gold_logp(x, gold), G.reference_gold_logp(x, gold)
        assert got.dtype == torch.float32 and got.shape == gold.shape, (got.dtype, got.shape)
        err = float((got - want).abs().max())
        allowed = max(tol, 2 * torch.finfo(torch.float32).eps * float(want.abs().max()))
        assert err <= allowed, (x.dtype, x.shape, err, allowed)

    # whole rows in one block: small, with the scoring copy's -inf padding, bf16, fp32
    check(torch.randn(3, 5, 37).half() * 4, torch.randint(0, 37, (3, 5)), 2e-6)
    x = (torch.randn(4, 3, 5056) * 5).half()
    x[..., 5000:] = float("-inf")
    check(x, torch.randint(0, 5000, (4, 3)), 2e-6)
    check(torch.randn(2, 4097).bfloat16() * 3, torch.randint(0, 4097, (2,)), 2e-6)
    check(torch.randn(6, 10), torch.randint(0, 10, (6,)), 2e-6)
    # rows longer than ROW_BLOCK_MAX take the blocked loop: a padded block at the end, and a whole block of -inf
    n = G.ROW_BLOCK_MAX + 4096 + 7
    x = (torch.randn(3, n) * 5).half()
    x[:, n - 4100:] = float("-inf")
    check(x, torch.randint(0, n - 4100, (3,)), 2e-6)
    # extreme half logits (exp overflows without the running maximum) and rows read through a stride
    ext = torch.tensor([[60000.0, -60000.0, 0.0, 59000.0]]).half()
    check(ext, torch.tensor([3]), 1e-3)
    wide = torch.randn(5, 300).half()
    check(wide[:, :257], torch.randint(0, 257, (5,)), 2e-6)
    # logits that need a gradient take the autograd path
    g = torch.randn(3, 20, requires_grad=True)
    assert G.gold_logp(g, torch.tensor([1, 2, 3])).grad_fn is not None

    # a whole search: fused and torch's log-softmax find the same triggers
    torch.manual_seed(0)
    s2s = Seq2Seq(ModelSettings(vocab_size=40, embedding_dim=8, hidden_dim=16)).eval()
    tgt = torch.tensor([[2, 8, 10, 0, 3], [2, 6, 5, 9, 0], [2, 30, 31, 0, 3]])
    cfg = S.SearchSettings(trigger_len=3, src_len=5, sweeps=2, candidates=6, restarts=2, lambda_in=0.0,
                           grad_train_mode=False)
    th = S.Thresholds(out=-3.0, inp=-4.0)
    a = S.search(s2s, None, tgt, th, cfg, torch.Generator().manual_seed(0))
    b = S.search(s2s, None, tgt, th, replace(cfg, fused_logp=False), torch.Generator().manual_seed(0))
    assert torch.equal(a.triggers, b.triggers), (a.triggers, b.triggers)
    assert torch.allclose(a.objective, b.objective, atol=1e-5)
    # io mode: the LM term's log-probs too (whole rows, the shared prefix, each candidate's continuation)
    lm = LSTMLM(ModelSettings(vocab_size=40, embedding_dim=8, hidden_dim=16)).eval()
    io = replace(cfg, lambda_in=1.0, init="lm")
    a = S.search(s2s, lm, tgt, th, io, torch.Generator().manual_seed(0))
    b = S.search(s2s, lm, tgt, th, replace(io, fused_logp=False), torch.Generator().manual_seed(0))
    assert torch.equal(a.triggers, b.triggers), (a.triggers, b.triggers)
    assert torch.allclose(a.objective, b.objective, atol=1e-5)
    print("ok")
''')


def test_without_the_kernel_it_is_the_log_softmax_and_keeps_float64_and_gradients():
    x = torch.randn(2, 3, 11, dtype=torch.float64, requires_grad=True)
    gold = torch.randint(0, 11, (2, 3))
    got = gold_logp(x, gold)
    assert got.dtype == torch.float64
    assert torch.equal(got, torch.log_softmax(x, -1).gather(-1, gold[..., None]).squeeze(-1))
    got.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_kernel_that_fails_falls_back_to_torch_once_with_one_warning(monkeypatch, caplog):
    calls = []

    def broken(logits, gold):
        calls.append(1)
        raise RuntimeError("Failed to find C compiler\nmore lines")

    monkeypatch.setattr(G, "triton", object())                 # as if Triton were installed ...
    monkeypatch.setattr(G, "_INTERPRET", True)                 # ... and could run here
    monkeypatch.setattr(G, "_kernel_failed", False)
    monkeypatch.setattr(G, "_triton_gold_logp", broken)
    x, gold = torch.randn(4, 9), torch.randint(0, 9, (4,))
    with caplog.at_level("WARNING", logger=G.__name__):
        first, second = gold_logp(x, gold), gold_logp(x, gold)
    assert torch.equal(first, reference_gold_logp(x, gold)) and torch.equal(second, first)
    assert len(calls) == 1                                     # not tried again
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "RuntimeError: Failed to find C compiler" in warnings[0]
    assert "more lines" not in warnings[0]


def test_out_of_memory_in_the_kernel_reaches_the_caller(monkeypatch):
    def oom(logits, gold):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(G, "triton", object())
    monkeypatch.setattr(G, "_INTERPRET", True)
    monkeypatch.setattr(G, "_kernel_failed", False)
    monkeypatch.setattr(G, "_triton_gold_logp", oom)
    with pytest.raises(torch.OutOfMemoryError):
        gold_logp(torch.randn(2, 5), torch.tensor([0, 1]))
    assert not G._kernel_failed


def test_the_kernel_in_the_triton_interpreter_matches_log_softmax_and_the_search():
    pytest.importorskip("triton", reason="Triton is not installed (pip install -e '.[test]' installs it)")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": path}
    run = subprocess.run([sys.executable, "-c", CHECKS], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout[-2000:] + run.stderr[-4000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the kernel's compiled form)")
def test_the_compiled_kernel_on_cuda_matches_log_softmax():
    torch.manual_seed(0)
    x = (torch.randn(64, 6, 10048, device="cuda") * 4).half()
    x[..., 10005:] = float("-inf")
    gold = torch.randint(0, 10005, (64, 6), device="cuda")
    got = gold_logp(x, gold)
    assert (got - reference_gold_logp(x, gold)).abs().max() <= 2e-6
