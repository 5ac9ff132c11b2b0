"""gibbs-enum wall time: the release's loop structure (a) against the batched search (b), in the same run.

Paper settings (Appendix A): 500 targets (the project's training list), T = 5 sweeps, G = 100 candidates, R = 5
restarts, a 15-token trigger (14 free + ``<eou>``), o-mode (lambda_in 0); models of paper size (V = 10k words + 5
specials, embedding 300, hidden 600, dropout 0.3) with RANDOM weights: the timing does not depend on the weights,
but how many sweeps run before the per-row early stop does, so the number of candidates scored is printed too.

(a) the release's structure: per restart, sweep and position one gradient pass over all targets, then one forward
    per candidate rank j (batched over the 500 targets only), whole triggers. It is timed on a subset
    (``--release-positions`` positions of one sweep of one restart) and extrapolated to R x T x 14 positions, i.e.
    to all sweeps running, as the release's batch-level early stop almost always lets them with 500 targets.
    Timed twice: scoring in ``--score-dtype`` (the same precision as (b): the ratio is then the loop structure's
    alone) and in float32 (the release's precision).
(b) ``negtrain_core.search.gibbs_enum.search``: targets x restarts x candidates in chunked batched forwards, shared
    prefixes. Timed with its per-row early stop (random weights make rows stop early, which flatters it) and with
    all T sweeps run (the same work as (a): there the wall-time ratio equals the candidates/s ratio), then all
    sweeps with the LSTM's prefix encoder outputs repeated per candidate instead of kept once per base row, then all
    sweeps with the input products a base row's candidates share computed once per row (``shared_tail``;
    ``--memory-only``: these three runs alone), then all sweeps with the target log-probs from torch's log-softmax
    instead of the fused kernel. ``--io`` adds the io mode (the LM term scored for every candidate too), all sweeps,
    with and without the fused kernel, with the LM-sample start's draws made on the device
    (``search.lm_sample_rng``), and with the shared tail.
A small warm-up search runs first (CUDA context, cuDNN plans). ``--arch transformer`` times the Transformer at its
Switchboard size (config ``model.transformer``: 4 + 4 layers, d_model 320, random weights) instead, ``--arch both``
one after the other; ``--release-model`` the LSTM with the release preset's model options (its step-wise attention
decoder with the zero start, decoder-only dropout, PyTorch 0.4 initialisation). Run from the repository root:
``PYTHONPATH=. python benchmarks/gibbs_enum.py``; figures are printed and, when $OUT is set, written to
$OUT/gibbs_enum.json (one object per arch with ``both``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from negtrain_core.search import gibbs_enum as S
from negtrain_core.config import ModelSettings
from negtrain_core.models.checkpoint import build_model
from negtrain_core.search.targets import read_targets, target_tensor
from negtrain_core.data.vocab import SPECIALS, Vocab

TARGETS = Path(__file__).resolve().parent.parent / "resources" / "targets" / "train_500.txt"


def _vocab(words: int) -> Vocab:
    """The target list's words, then filler words, up to ``words`` ordinary words."""
    listed = sorted({w for line in TARGETS.read_text().split("\n") for w in line.split()})
    return Vocab(SPECIALS + tuple(listed) + tuple(f"w{i}" for i in range(words - len(listed))))


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def release_subset(s2s, sc, tgt, th, cfg, positions: int, generator) -> tuple[float, int]:
    """Seconds and candidates of the release's loop on ``positions`` positions of one sweep, one restart."""
    device = tgt.device
    src = S.layout(S.init_free(tgt.size(0), cfg, s2s.vocab_size, None, generator, device), cfg.src_len)
    banned = S.banned_ids(s2s.vocab_size, cfg.allow_unk, device)
    loss = S.rows_loss(sc, src, tgt, th, cfg)
    _sync()
    t0 = time.perf_counter()
    for pos in list(cfg.free_positions())[:positions]:
        grad = S.trigger_gradient(s2s, None, src, tgt, pos, th, cfg)
        cands, valid = S.propose(grad, src[:, pos], banned, cfg.candidates)
        for j in range(cfg.candidates):                  # one forward per candidate rank, batched over targets
            x = src.clone()
            x[:, pos] = cands[:, j]
            cand_loss = S.rows_loss(sc, x, tgt, th, cfg)
            better = valid[:, j] & (cand_loss < loss)
            src[:, pos] = torch.where(better, cands[:, j], src[:, pos])
            loss = torch.where(better, cand_loss, loss)
    _sync()
    return time.perf_counter() - t0, positions * cfg.candidates * tgt.size(0)


def timed(fn):
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - t0, out


def profile_scoring(s2s, tgt, th, cfg, gen, restarts) -> None:
    """Time one gradient pass and one scoring pass at the search's full size; the scoring pass's top kernels."""
    rows = tgt.repeat_interleave(restarts, 0)
    V = s2s.vocab_size
    src = S.layout(S.init_free(rows.size(0), cfg, V, None, gen, rows.device), cfg.src_len)
    cands = torch.randint(5, V, (rows.size(0), cfg.candidates), device=rows.device)
    sc = S.scorer(s2s, None, cfg)
    for label, fn in (("gradient pass", lambda: S.trigger_gradient(s2s, None, src, rows, 5, th, cfg)),
                      ("scoring pass", lambda: S.score(sc, src, 5, cands, rows, th, cfg))):
        fn()
        sec, _ = timed(fn)
        print(f"    one {label} at position 5 over {rows.size(0)} rows"
              f"{f' x {cfg.candidates} candidates' if 'scoring' in label else ''}: {1000 * sec:.1f} ms", flush=True)
    if torch.cuda.is_available():
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            S.score(sc, src, 5, cands, rows, th, cfg)
            _sync()
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=14, max_name_column_width=60),
              flush=True)


def time_release(s2s, tgt, th, cfg, gen, positions: int, out: dict) -> None:
    """(a) in the scoring dtype and in float32, extrapolated to R x T x 14 position passes."""
    full = cfg.restarts * cfg.sweeps * len(cfg.free_positions())
    for label, sc in ((cfg.score_dtype, S.scorer(s2s, None, cfg)), ("float32", S.Scorer(s2s, None))):
        sub_s, sub_c = release_subset(s2s, sc, tgt, th, cfg, positions, gen)
        rel_s, rel_c = sub_s / positions * full, sub_c // positions * full
        print(f"(a) release loop, scoring in {label}: {sub_s:.2f} s for {positions} positions ({sub_c} "
              f"candidates) -> {rel_s:.1f} s extrapolated to {full} position passes ({rel_c} candidates), "
              f"{rel_c / rel_s:,.0f} candidates/s", flush=True)
        out[f"release_{label}_s"], out[f"release_{label}_cps"] = rel_s, rel_c / rel_s
    out["release_candidates"] = rel_c


@contextlib.contextmanager
def without_shared_prefix_memory(model) -> Iterator[None]:
    """Hide the seq2seq's ``expand_prefix`` for the block: gibbs-enum then repeats the prefix's encoder outputs per
    candidate (``select_prefix``), as before the shared-prefix memory."""
    cls = type(model)
    before = cls.__dict__["expand_prefix"]
    cls.expand_prefix = None
    try:
        yield
    finally:
        cls.expand_prefix = before


def time_batched(s2s, lm, tgt, th, cfg, gen, io: bool, out: dict, memory_only: bool = False) -> None:
    """(b) with early stop and with all sweeps (o-mode), all sweeps without the shared-prefix memory (a model with
    ``expand_prefix``), all sweeps with torch's log-softmax, then io-mode when asked. ``memory_only``: the two runs
    the shared-prefix memory's ratio needs, nothing else."""
    cuda = tgt.device.type == "cuda"
    shares = hasattr(s2s, "expand_prefix")
    plain = without_shared_prefix_memory(s2s) if shares else contextlib.nullcontext()
    runs = [("early stop", cfg, contextlib.nullcontext(), "batched"),
            ("all sweeps", replace(cfg, early_stop=False), contextlib.nullcontext(), "batched_all_sweeps"),
            ("all sweeps, prefix outputs repeated per candidate", replace(cfg, early_stop=False), plain,
             "batched_all_sweeps_plain_memory"),
            ("all sweeps, shared tail", replace(cfg, early_stop=False, shared_tail=True), contextlib.nullcontext(),
             "batched_all_sweeps_shared_tail"),
            ("all sweeps, torch log-softmax", replace(cfg, early_stop=False, fused_logp=False),
             contextlib.nullcontext(), "batched_all_sweeps_torch_logp")]
    keep = ({"batched_all_sweeps", "batched_all_sweeps_plain_memory", "batched_all_sweeps_shared_tail"}
            if memory_only else {key for *_, key in runs})
    if not shares:
        keep -= {"batched_all_sweeps_plain_memory", "batched_all_sweeps_shared_tail"}
    for label, c, ctx, key in runs:
        if key not in keep:
            continue
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with ctx:
            sec, res = timed(lambda: S.search(s2s, None, tgt, th, c, gen))
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        sweeps, cps = res.sweeps_run.float().mean().item(), res.candidates_scored / sec
        print(f"(b) batched search ({label}): {sec:.2f} s, {res.candidates_scored} candidates ({sweeps:.2f} sweeps "
              f"per row), {cps:,.0f} candidates/s, peak GPU memory {peak:.1f} GiB; mean loss "
              f"{res.trajectory[0].mean().item():.4f} -> {res.losses.mean().item():.4f}", flush=True)
        for ref in (cfg.score_dtype, "float32"):
            if f"release_{ref}_s" in out:
                print(f"    vs (a) scoring in {ref}: wall time {out[f'release_{ref}_s'] / sec:.1f}x, "
                      f"candidates/s {cps / out[f'release_{ref}_cps']:.1f}x", flush=True)
        out.update({f"{key}_s": sec, f"{key}_candidates": res.candidates_scored, f"{key}_mean_sweeps": sweeps,
                    f"{key}_peak_gib": peak})
    if "batched_all_sweeps_plain_memory_s" in out:
        print(f"    shared-prefix memory (the prefix's encoder outputs once per base row) against repeating them per "
              f"candidate, all sweeps: {out['batched_all_sweeps_plain_memory_s'] / out['batched_all_sweeps_s']:.2f}x",
              flush=True)
    if "batched_all_sweeps_shared_tail_s" in out:
        print(f"    shared tail (the input products a base row's candidates share, once per row) against once per "
              f"candidate, all sweeps: "
              f"{out['batched_all_sweeps_s'] / out['batched_all_sweeps_shared_tail_s']:.2f}x", flush=True)
    if memory_only:
        return
    print(f"    fused log p(gold) (models/gold_logp.py) against torch's log-softmax, all sweeps: "
          f"{out['batched_all_sweeps_torch_logp_s'] / out['batched_all_sweeps_s']:.2f}x", flush=True)
    if not io:
        return
    io_cfg = replace(cfg, lambda_in=1.0, init="lm", early_stop=False)
    for label, c, key in (("fused log p(gold)", io_cfg, "batched_io"),
                          ("torch log-softmax", replace(io_cfg, fused_logp=False), "batched_io_torch_logp"),
                          ("search.lm_sample_rng device", replace(io_cfg, lm_sample_rng="device"),
                           "batched_io_device_rng"),
                          ("shared tail", replace(io_cfg, shared_tail=True), "batched_io_shared_tail")):
        sec, rio = timed(lambda: S.search(s2s, lm, tgt, th, c, torch.Generator().manual_seed(1)))
        print(f"(b) io mode (LM term scored too, LM-sample init, all sweeps), {label}: {sec:.2f} s, "
              f"{rio.candidates_scored} candidates, {rio.candidates_scored / sec:,.0f} candidates/s", flush=True)
        out.update({f"{key}_s": sec, f"{key}_candidates": rio.candidates_scored})
    print(f"    fused log p(gold) against torch's log-softmax, io mode: "
          f"{out['batched_io_torch_logp_s'] / out['batched_io_s']:.2f}x; the LM-sample start's draws on the device "
          f"against the host's: {out['batched_io_s'] / out['batched_io_device_rng_s']:.2f}x; the shared tail: "
          f"{out['batched_io_s'] / out['batched_io_shared_tail_s']:.2f}x", flush=True)


def run(arch: str, a: argparse.Namespace, vocab: Vocab, tgt: torch.Tensor, device: torch.device) -> dict:
    """The whole benchmark on random models of ``arch``: the figures printed, and as a dict."""
    torch.manual_seed(0)
    release = dict(attention="release", decoder_init="zero", dropout_sites="decoder", init="release")
    mcfg = ModelSettings(vocab_size=len(vocab), embedding_dim=a.embedding, hidden_dim=a.hidden, dropout=0.3,
                         arch=arch, **(release if a.release_model and arch == "lstm" else {}))
    s2s, lm = build_model("seq2seq", mcfg).to(device).eval(), build_model("lm", mcfg).to(device).eval()
    # Switchboard's thresholds (docs/release.md#hit-criteria); random weights miss them
    th = S.Thresholds(out=-3.7569, inp=-3.7927)
    cfg = S.SearchSettings(trigger_len=14, src_len=15, sweeps=a.sweeps, candidates=a.candidates,
                           restarts=a.restarts, lambda_in=0.0, hit_mode="avg", max_chunk=a.max_chunk,
                           score_dtype=a.score_dtype)
    gen = torch.Generator().manual_seed(0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    sizes = (f"E={a.embedding} H={a.hidden} attention {mcfg.attention}" if arch == "lstm"
             else f"{mcfg.transformer}")
    print(f"device {name}; torch {torch.__version__}; {arch} V={len(vocab)} {sizes}, "
          f"{sum(p.numel() for p in s2s.parameters()):,} seq2seq parameters; {tgt.size(0)} targets (mean length "
          f"{float((tgt != 3).sum(1).float().mean() - 2):.2f} words); T={a.sweeps} G={a.candidates} "
          f"R={a.restarts}; scoring {a.score_dtype}", flush=True)
    out = {"arch": arch, "device": name, "torch": torch.__version__, "targets": tgt.size(0), "vocab": len(vocab),
           "score_dtype": a.score_dtype}
    S.search(s2s, None, tgt[:20], th, replace(cfg, sweeps=1, restarts=1), gen)           # warm-up
    if not a.memory_only:
        profile_scoring(s2s, tgt, th, cfg, gen, a.restarts)
        time_release(s2s, tgt, th, cfg, gen, a.release_positions, out)
    time_batched(s2s, lm, tgt, th, cfg, gen, a.io, out, a.memory_only)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", type=int, default=500)
    p.add_argument("--words", type=int, default=10000)
    p.add_argument("--embedding", type=int, default=300)
    p.add_argument("--hidden", type=int, default=600)
    p.add_argument("--sweeps", type=int, default=5)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--release-positions", type=int, default=2)
    p.add_argument("--score-dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--io", action="store_true",
                   help="time (b) in io mode too (lambda_in 1, LM init, all sweeps), with and without the fused "
                        "kernel, and with search.lm_sample_rng device")
    p.add_argument("--max-chunk", type=int, default=65536)
    p.add_argument("--arch", choices=["lstm", "transformer", "both"], default="lstm",
                   help="the models searched (both: the LSTM's run, then the Transformer's)")
    p.add_argument("--memory-only", action="store_true",
                   help="only (b) all sweeps with and without the LSTM's shared-prefix memory, and with its "
                        "shared tail (a short run)")
    p.add_argument("--release-model", action="store_true",
                   help="the LSTM with the release's model options (model.attention: release and the rest)")
    a = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    vocab = _vocab(a.words)
    tgt = target_tensor(read_targets(TARGETS, vocab).ids[: a.targets]).to(device)
    archs = ["lstm", "transformer"] if a.arch == "both" else [a.arch]
    results = {arch: run(arch, a, vocab, tgt, device) for arch in archs}
    if os.environ.get("OUT"):
        out = results[a.arch] if a.arch != "both" else results
        Path(os.environ["OUT"], "gibbs_enum.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
