"""Algorithm 1's time per batch of targets: gibbs-enum's search and the rounds, host time against GPU time.

    PYTHONPATH=. python benchmarks/malicious_batch.py [--arch lstm|transformer] [--batch 100] [--io-only]

Algorithm 1 (negtrain_core.negtrain.malicious) searches one trigger per target for a batch of ``batch_targets``
(100) targets with one restart, then runs up to 20 rounds of hit test + negative step + positive step on that batch;
the batches follow each other, since each search needs the model the previous rounds left. At paper scale the
search dominates: on the authors' 2.5k list an io-mode epoch took 68-75 s alone on an H200 (23 batches; run 11),
about 3 s a batch, where the search benchmark's throughput (benchmarks/gibbs_enum.py, 2,500 rows a call) would take
well under one. This benchmark shows where a batch's time goes, on paper-size models with random weights (V =
10,005; the timing does not depend on the weights once every sweep runs) and the dataset's Algorithm 1 settings
(T = 5 sweeps, all run, G = 100, R = 1, 14 free tokens), o- and io-mode:

- the search of one batch (``--batch`` targets), and of five batches' targets in one call (the rows a hit test's
  search scores at once): wall seconds, seconds per position, and on a GPU the time its kernels ran (torch.profiler,
  summed over kernels): wall over kernel time is what a host-free search could gain at most;
- on a GPU, the batch's search with ``search.cuda_graph`` (``SearchGraphs``: each position over all rows one CUDA
  graph, captured in a first search and replayed in the timed one), against the plain search of the same run;
- the batch's search with ``search.shared_tail`` (the LSTM's input products a row's candidates share, once per row),
  plain and on a GPU with ``search.cuda_graph``, against the same search without it;
- io-mode's LM-sample start alone, and the io-mode search, with ``search.lm_sample_rng`` device (the start's
  exponentials drawn on the GPU, not the host) against the default cpu, plain and on a GPU with ``search.cuda_graph``;
- on a GPU, the host synchronisations of one sweep (torch.cuda.set_sync_debug_mode), by the line that made them:
  each one lets the GPU run dry until the host has queued the next work;
- one round: the hit test (a forward in eval mode), the negative and the positive step (``pos_batch`` 100), and on
  a GPU both steps with ``malicious.cuda_graph`` (``GraphedSteps``: each one CUDA graph); then whole rounds as
  ``batch_rounds`` runs them (one read-back a round, so the host queues a round's work while the GPU runs the last),
  eager and graphed.

Figures are printed and, when $OUT is set, written to $OUT/malicious_batch.json. Timing lives here, never in the
tests.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch

from gibbs_enum import TARGETS, _sync, _vocab     # the search benchmark's target list and vocabulary (same folder)
from negtrain_core.config import ModelSettings, NegTrainSettings
from negtrain_core.models.checkpoint import build_model
from negtrain_core.models.steps import GRAPH_WARMUP, PositiveBatches
from negtrain_core.negtrain import malicious as M
from negtrain_core.search import gibbs_enum as S
from negtrain_core.search.targets import read_targets, target_tensor


def timed(fn) -> tuple[float, float | None]:
    """Wall seconds of fn(), and on a GPU the seconds its CUDA kernels ran (None on the CPU)."""
    fn()                                                                 # warm-up: cuDNN plans, allocator
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    wall = time.perf_counter() - t0
    if not torch.cuda.is_available():
        return wall, None
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        _sync()
    events = prof.key_averages()                      # as benchmarks/train_throughput.py sums a step's kernels
    if not events:                                    # a profiler that does not see into graph replays
        return wall, None
    key = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
    return wall, sum(getattr(e, key) for e in events) / 1e6


def host_syncs(fn) -> Counter | None:
    """Host synchronisations fn() makes on the GPU, counted by the Python line that made each (None on the CPU)."""
    if not torch.cuda.is_available():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return Counter(f"{w.filename.replace(root, '')}:{w.lineno}" for w in caught if "synchroniz" in str(w.message))


def line(label: str, wall: float, kernels: float | None, positions: int) -> str:
    gpu = (f", kernels {kernels:.3f} s ({100 * kernels / wall:.0f}% of wall; a host-free path at most "
           f"{wall / kernels:.1f}x)" if kernels else "")
    return f"  {label}: {wall:.3f} s, {1000 * wall / positions:.1f} ms per position{gpu}"


def lm_start(rows: int, lm: torch.nn.Module, length: int, banned: torch.Tensor, gen: torch.Generator,
             out: dict) -> None:
    """io-mode's LM-sample start of ``rows`` triggers alone, its exponentials drawn on the CPU and on the device
    (``search.lm_sample_rng``)."""
    for rng in ("cpu", "device"):
        wall, kernels = timed(lambda: S.lm_sample(lm, rows, length, banned, gen, rng))
        gpu = f", kernels {1000 * kernels:.2f} ms" if kernels else ""
        print(f"  the LM-sample start of {rows} triggers, search.lm_sample_rng {rng}: {1000 * wall:.1f} ms{gpu}",
              flush=True)
        out[f"io_lm_start_{rng}_s"] = wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", choices=("lstm", "transformer"), default="lstm")
    p.add_argument("--batch", type=int, default=100, help="targets per batch (malicious.batch_targets)")
    p.add_argument("--words", type=int, default=10000)
    p.add_argument("--embedding", type=int, default=300)
    p.add_argument("--hidden", type=int, default=600)
    p.add_argument("--sweeps", type=int, default=5)
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--io-only", action="store_true",
                   help="io-mode's searches of one batch only: no o-mode, no 5-batch call, no rounds")
    a = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    vocab = _vocab(a.words)
    targets = read_targets(TARGETS, vocab, "skip", max_len=20)
    tgt_all = target_tensor(targets.ids).to(device)
    mcfg = ModelSettings(vocab_size=len(vocab), embedding_dim=a.embedding, hidden_dim=a.hidden, dropout=0.3,
                         arch=a.arch)
    s2s, lm = build_model("seq2seq", mcfg).to(device), build_model("lm", mcfg).to(device).eval()
    th = S.Thresholds(out=-3.7569, inp=-3.7927)        # Switchboard's (docs/release.md#hit-criteria)
    base = S.SearchSettings(trigger_len=14, src_len=15, sweeps=a.sweeps, candidates=a.candidates, restarts=1,
                            hit_mode="avg", early_stop=False)
    modes = {"o": replace(base, lambda_in=0.0), "io": replace(base, lambda_in=1.0, init="lm")}
    if a.io_only:
        del modes["o"]
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}; {a.arch} V={len(vocab)}, "
          f"{sum(p.numel() for p in s2s.parameters()):,} seq2seq parameters; T={a.sweeps} G={a.candidates} R=1, "
          f"all sweeps", flush=True)
    out: dict = {"arch": a.arch, "device": name, "torch": torch.__version__, "batch": a.batch}
    positions = a.sweeps * base.trigger_len
    gen = torch.Generator().manual_seed(0)
    for mode, cfg in modes.items():
        use_lm = lm if mode == "io" else None
        print(f"{mode}-mode search", flush=True)
        for rows in (a.batch,) if a.io_only else (a.batch, 5 * a.batch):
            tgt = tgt_all[:rows]
            wall, kernels = timed(lambda: S.search(s2s, use_lm, tgt, th, cfg, gen))
            print(line(f"{rows} targets in one call", wall, kernels, positions), flush=True)
            out[f"{mode}_search_{rows}_s"], out[f"{mode}_search_{rows}_kernels_s"] = wall, kernels
        if device.type == "cuda":
            graphs = S.SearchGraphs()
            tgt = tgt_all[:a.batch]
            wall, kernels = timed(lambda: S.search(s2s, use_lm, tgt, th, cfg, gen, graphs))
            plain = out[f"{mode}_search_{a.batch}_s"]
            print(line(f"{a.batch} targets, search.cuda_graph", wall, kernels, positions)
                  + f"; {plain / wall:.2f}x the plain search", flush=True)
            out[f"{mode}_search_graphs_s"], out[f"{mode}_search_graphs_kernels_s"] = wall, kernels
        shared = {"search.shared_tail": None} | (
            {"search.shared_tail and search.cuda_graph": S.SearchGraphs()} if device.type == "cuda" else {})
        for label, graphs in shared.items():           # against the same search without it, in the same run
            tgt = tgt_all[:a.batch]
            wall, kernels = timed(lambda: S.search(s2s, use_lm, tgt, th, replace(cfg, shared_tail=True), gen, graphs))
            without = out[f"{mode}_search_graphs_s" if graphs is not None else f"{mode}_search_{a.batch}_s"]
            print(line(f"{a.batch} targets, {label}", wall, kernels, positions)
                  + f"; {without / wall:.2f}x the same search without it", flush=True)
            key = f"{mode}_search_shared_tail" + ("_graphs" if graphs is not None else "")
            out[f"{key}_s"], out[f"{key}_kernels_s"] = wall, kernels
        if mode == "io":
            lm_start(a.batch, lm, base.trigger_len, S.banned_ids(len(vocab), True, device), gen, out)
            fast, tgt, plain = replace(cfg, lm_sample_rng="device"), tgt_all[:a.batch], out[f"io_search_{a.batch}_s"]
            runs = {"search.lm_sample_rng device": None}
            if device.type == "cuda":
                runs["search.lm_sample_rng device and search.cuda_graph"] = S.SearchGraphs()
            for label, graphs in runs.items():
                wall, kernels = timed(lambda: S.search(s2s, lm, tgt, th, fast, gen, graphs))
                print(line(f"{a.batch} targets, {label}", wall, kernels, positions)
                      + f"; {plain / wall:.2f}x the plain search", flush=True)
                key = "io_search_device_rng" + ("_graphs" if graphs is not None else "")
                out[f"{key}_s"], out[f"{key}_kernels_s"] = wall, kernels
        syncs = host_syncs(lambda: S.search(s2s, use_lm, tgt_all[:a.batch], th, replace(cfg, sweeps=1), gen))
        if syncs is not None:
            print(f"  host synchronisations in a one-sweep search of {a.batch} targets ({base.trigger_len} "
                  f"positions, initialisation and final evaluation included): {sum(syncs.values())}; by line: "
                  + ", ".join(f"{site} x{n}" for site, n in syncs.most_common()), flush=True)
            out[f"{mode}_syncs_one_sweep"] = dict(syncs)

    if a.io_only:
        write(out)
        return
    s = NegTrainSettings(hit_type="avg")
    opts = M.optimisers(s2s, s)
    tgt = tgt_all[:a.batch]
    trig = S.layout(S.init_free(a.batch, base, len(vocab), None, gen, device), base.src_len)
    pos_src = S.layout(S.init_free(s.pos_batch, base, len(vocab), None, gen, device), base.src_len)
    pos_tgt = tgt_all[a.batch:a.batch + s.pos_batch]
    lm_ok = torch.ones(a.batch, dtype=torch.bool, device=device)
    is_hit = M.hit_test("avg", th)
    avoid = M.avoid_ids(s.avoid_words, vocab).to(device)
    hit = torch.zeros(a.batch, dtype=torch.bool, device=device)
    hit[::3] = True
    parts = {"hit test": lambda: M.current_hits(s2s, trig, tgt, lm_ok, is_hit),
             "negative step": lambda: M.negative_step(s2s, opts[0], trig, tgt, hit, avoid, s),
             "positive step": lambda: M.positive_step(s2s, opts[1], pos_src, pos_tgt, s.lambda_pos)}
    print(f"one round ({a.batch} targets, positive batch {s.pos_batch})", flush=True)
    for label, fn in parts.items():
        wall, kernels = timed(fn)
        gpu = f", kernels {1000 * kernels:.2f} ms" if kernels else ""
        print(f"  {label}: {1000 * wall:.2f} ms{gpu}", flush=True)
        out[f"round_{label.replace(' ', '_')}_s"], out[f"round_{label.replace(' ', '_')}_kernels_s"] = wall, kernels
    if device.type == "cuda":
        steps = M.GraphedSteps(s2s, replace(s, cuda_graph=True), use_graph=True)

        def graphed() -> None:
            steps(trig, tgt, hit, avoid, pos_src, pos_tgt)

        for _ in range(GRAPH_WARMUP + 1):                # eager warm-up runs, then the capture
            graphed()
        wall, kernels = timed(graphed)
        gpu = f", kernels {1000 * kernels:.2f} ms" if kernels else ""
        eager = out["round_negative_step_s"] + out["round_positive_step_s"]
        print(f"  both steps, malicious.cuda_graph: {1000 * wall:.2f} ms{gpu}; {eager / wall:.2f}x the eager "
              f"steps", flush=True)
        out["round_graphed_steps_s"], out["round_graphed_steps_kernels_s"] = wall, kernels
    # whole rounds as Algorithm 1 runs them (batch_rounds: one read-back a round, the losses read at the batch's end),
    # every target hit so that all max_rounds rounds run
    always = M.SampleHit("avg", float("-inf"))
    rounds = replace(s, round_order="step_then_test")
    variants = {"eager": lambda: M.optimisers(s2s, s)}
    if device.type == "cuda":
        variants["malicious.cuda_graph"] = lambda: M.GraphedSteps(s2s, replace(s, cuda_graph=True), use_graph=True)
    for label, make in variants.items():
        opts_r, pairs = make(), PositiveBatches(pos_src, pos_tgt, s.pos_batch, torch.Generator().manual_seed(0))
        wall, kernels = timed(lambda: M.batch_rounds(s2s, opts_r, trig, tgt, lm_ok, pairs, avoid, rounds, always))
        gpu = f", kernels {1000 * kernels / s.max_rounds:.2f} ms" if kernels else ""
        print(f"  a round inside batch_rounds ({s.max_rounds} rounds), {label}: "
              f"{1000 * wall / s.max_rounds:.2f} ms{gpu}", flush=True)
        out[f"round_in_batch_{label}_s"] = wall / s.max_rounds
    write(out)


def write(out: dict) -> None:
    """The figures as $OUT/malicious_batch.json, when $OUT is set."""
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "malicious_batch.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
