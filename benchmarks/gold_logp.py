"""log p(gold) of one scoring chunk: torch's log-softmax + gather against the fused kernel (models/gold_logp.py).

One chunk of gibbs-enum's candidate scoring at the paper's settings: 65,536 candidate rows x 6 target positions over
V = 10,005 words, the half-precision logits padded to 10,048 columns with -inf as the scoring copy pads them. Timed:
- torch: ``log_softmax(dtype=float32)`` then a gather (the reference, and the search's form without the kernel);
- cross_entropy in half precision (log-probs rounded to float16: shown for its speed, not used);
- the kernel, whole row in one block (the search's form for V <= 16,384) and as a blocked loop (longer rows).
Each line gives milliseconds per chunk, the speed-up over torch and the largest difference from torch's values. On a
machine without CUDA or Triton only torch's forms run. ``PYTHONPATH=. python benchmarks/gold_logp.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from negtrain_core.models import gold_logp as G


def timed_ms(fn, repeats: int) -> float:
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=65536)
    p.add_argument("--positions", type=int, default=6)
    p.add_argument("--vocab", type=int, default=10005)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    V = a.vocab + (-a.vocab % 64)
    logits = (torch.randn(a.rows, a.positions, V, device=device) * 3).half()
    logits[..., a.vocab:] = float("-inf")
    gold = torch.randint(5, a.vocab, (a.rows, a.positions), device=device)
    ref = G.reference_gold_logp(logits, gold)
    forms = {"torch log-softmax + gather": lambda: G.reference_gold_logp(logits, gold),
             "cross_entropy in float16": lambda: -F.cross_entropy(logits.view(-1, V), gold.view(-1),
                                                                  reduction="none").view(gold.shape)}
    if G._kernel_applies(logits):
        forms["kernel, whole row"] = lambda: G._triton_gold_logp(logits, gold, blocked=False)
        forms["kernel, blocked loop"] = lambda: G._triton_gold_logp(logits, gold, blocked=True)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}; logits {tuple(logits.shape)} float16", flush=True)
    base = None
    for label, fn in forms.items():
        ms = timed_ms(fn, a.repeats)
        base = base or ms
        err = float((fn().float() - ref).abs().max())
        print(f"{label:28s} {ms:8.2f} ms  {base / ms:5.2f}x  max |diff| {err:.2e}", flush=True)


if __name__ == "__main__":
    main()
