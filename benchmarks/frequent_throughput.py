"""Algorithm 2 throughput: one greedy decode per mini-batch with eager updates (the release's loop) against the
lookahead decoding and the CUDA-graph updates of ``negtrain_core.negtrain.frequent``.

    PYTHONPATH=. python benchmarks/frequent_throughput.py \\
        [--checkpoint results/switchboard/models/seq2seq.pt --pairs results/switchboard/data/train.parquet] \\
        [--dataset switchboard] [--batches 800] [--window 50] [--r-thres 0.1 0.01] [--csv out.csv] \\
        [--arch lstm|transformer] [--release-attention] [--configfile configs/release.yaml ...] [--profile 20] \\
        [--weight-grads per_step deferred] [--matmul-precision ieee tf32]

Each path runs ``train_frequent`` for one pass over the same first ``--batches`` mini-batches (the dataset's
Algorithm 2 batch size, 32 for Switchboard) from the same weights and seed, at each ``--r-thres``:
- release/eager:            ``update_every_batch`` (both steps every mini-batch), eager decode and steps;
- release/graphs:           the same with the decode and both steps each one CUDA graph replay;
- listing/eager:            the paper's Algorithm 2 listing (updates only on batches with negatives), one eager
                            decode per mini-batch;
- listing/lookahead+graphs: the listing with ``frequent.lookahead: 64`` and graphed updates.
Speed-up is against the eager path of the same reading, both measured in the same run. Every path keeps the
frequency window on the device (``frequent.FrequencyWindow``): release/graphs has no host synchronisation per
mini-batch (the eager greedy decode still syncs to stop early), and a pass's seconds end with the read of its
negative counts, which waits for the GPU work queued.
The frequency window is ``--window`` mini-batches (paper: 200) so that negatives start early in a short run. It prints
mini-batches/s of the training loop (the per-epoch test evaluation excluded), greedy decode calls, batches with
negatives, the speed-up over per-batch and, on a GPU, each pass's peak memory and what it leaves allocated once its
model copy is dropped (``kept_mib``, cuBLAS workspaces not counted: not zero where a pass keeps graphs or tensors
alive). Without ``--checkpoint`` it uses a random paper-size seq2seq on synthetic pairs: its greedy responses are all
alike, every batch is negative once the window fills, so that run shows the update path alone. ``--release-attention``
gives the random LSTM the model of configs/paper_levels.yaml (``model.attention: release``, ``model.decoder_init:
zero``): the release's step-wise attention decoder, whose Algorithm 2 rows of Table 4 that preset's Switchboard runs
train. ``--configfile`` reads overlays on config.yaml as Snakemake's ``--configfile`` does: their ``frequent`` settings
(all but the four that each path sets) and, for the random LSTM, their ``model`` block's structure keys (attention,
decoder start, dropout sites, initialisation); ``--configfile configs/release.yaml`` measures the release preset's
Algorithm 2, and one run per overlay compares presets. Timing lives here, never in the tests.

On a GPU it then prints the graphed loop's floor: the decode graph and both update graphs of one mini-batch, each
replayed ``--floor-reps`` times back to back (GPU-bound: no host work between replays), in ms per mini-batch, beside
the release/graphs loop's ms per mini-batch. Their ratio is the most that taking the host out of the loop (the
window, flags and weights between the replays; one graph per mini-batch) could still gain. Where the graphed loop is
at its floor, only less GPU work per call makes it faster: ``--profile REPS`` runs each of the three calls eagerly
REPS times under torch.profiler and prints, per call, the kernels' time and launches and the kernels that take most
(on a CPU the operators' instead), which is what the graphs replay.

``--weight-grads per_step deferred`` runs every path and the floor twice, the release decoder summing its weight
gradients over the steps as autograd does (a product and an add per step and weight) and then as one product over
all steps (``frequent.weight_grads``, negtrain_core/models/step_grads.py); ``--matmul-precision ieee tf32`` runs
them in full float32 and then with TensorFloat-32 matrix products (``frequent.matmul_precision``); the default of
either is the overlays' setting. With several of either, every combination runs (weight gradients outer), and the later
ones' rates and graph times are printed over the first's; ``--profile`` profiles under the last combination.

Measured (NVIDIA H100 80GB HBM3, torch 2.11.0+cu130, 2026-11-24 14:27 UTC, GPU otherwise idle; random seq2seq
V=10,005, 400 mini-batches of 32, ``--batches 400 --r-thres 0.01``), with the frequency window on the device (commit
2bf253c):

    path                      mini-batches/s  decodes  batches with negatives  speed-up
    release/eager                       34.7      400                     351       1.0
    release/graphs                     117.8      400                     351       3.4
    listing/eager                       31.6      400                      12       1.0
    listing/lookahead+graphs           285.7       31                      12       9.0

Just before it, on the same machine, the previous commit (b859f01, the window on the host: each mini-batch read its
samples back) measured 33.2 / 105.0 / 28.7 / 266.8 mini-batches/s (3.2x, 9.3x). In an earlier measurement
(13:05 UTC) graphed and eager greedy decodes of the same batches were equal (3 of 3). All these runs gave each path
a ``copy.deepcopy`` of the model, whose LSTM weights cuDNN then re-packed at every call (torch warned so); each path
now gets ``models.fresh_copy`` (weights re-flattened), not yet re-measured on the GPU. On Switchboard itself the release
reading ran 49-50 s per epoch of 5,657 mini-batches (docs/reproduction/switchboard, run 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import yaml

from negtrain_core.models import checkpoint
from negtrain_core.models.checkpoint import build_model
from negtrain_core import config as ncfg
from negtrain_core.config import ModelSettings
from negtrain_core.data.tensors import load_pairs
from negtrain_core.device import tf32_matmul
from negtrain_core.models import decoding
from negtrain_core.models.steps import GRAPH_WARMUP, with_bos
from negtrain_core.negtrain.frequent import Updates, position_weights, response_rows, train_frequent
from negtrain_core.models.interface import fresh_copy
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, SPECIALS, Vocab

ROOT = Path(__file__).resolve().parent.parent

# the model keys an overlay may set on the random LSTM (the ones that shape it; sizes stay the benchmark's)
STRUCTURE_KEYS = frozenset({"attention", "decoder_init", "dropout_sites", "init", "mask_source_padding"})
# name: (update_every_batch, negative_norm, lookahead, CUDA graphs)
PATHS = {"release/eager": (True, "batch", 1, False), "release/graphs": (True, "batch", 1, True),
         "listing/eager": (False, "negatives", 1, False), "listing/lookahead+graphs": (False, "negatives", 64, True)}


def synthetic(words: int, n: int, device: torch.device, dropout: float = 0.0, arch: str = "lstm", embedding: int = 300,
              hidden: int = 600, **model_kw) -> tuple[torch.nn.Module, Vocab, tuple[torch.Tensor, torch.Tensor]]:
    """A random seq2seq of ``arch`` (the LSTM of ``embedding``/``hidden`` units, paper size by default; the
    Transformer at config.yaml's model.transformer sizes; ``model_kw``: more ``ModelSettings`` fields) over
    ``words`` + specials and ``n`` pairs: src (n, 15), tgt (n, 22)."""
    torch.manual_seed(0)
    vocab = Vocab(SPECIALS + tuple(f"w{i}" for i in range(words)))
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=embedding, hidden_dim=hidden, dropout=dropout, arch=arch,
                       **model_kw)
    model = build_model("seq2seq", ms).to(device)
    src = torch.randint(5, len(vocab), (n, 15), device=device)
    src[:, -1] = EOU_ID
    lengths = torch.randint(1, 20, (n, 1), device=device)
    pos = torch.arange(21, device=device)
    body = torch.randint(5, len(vocab), (n, 21), device=device).masked_fill(pos >= lengths, PAD_ID)
    body = body.masked_fill(pos == lengths, EOS_ID)
    tgt = torch.cat([torch.full((n, 1), BOS_ID, device=device), body], dim=1)
    return model, vocab, (src, tgt)


def algorithm2_calls(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], cfg, use_graph: bool
                     ) -> dict[str, Callable[[], object]]:
    """Algorithm 2's three calls on the first mini-batch of ``train`` with a copy of ``model``: the greedy decode
    (eval mode), the negative step (every sample a negative) and the positive step (train mode), each one CUDA graph
    replay with ``use_graph``, else eager. The graphs are captured (and the decode graph's eval mode fixed) here."""
    model = fresh_copy(model)
    src, tgt = train[0][:cfg.batch_size], train[1][:cfg.batch_size]
    graphed = decoding.GraphedGreedy(model, cfg.max_len)
    decode = graphed if use_graph else graphed.eager
    updates = Updates(model, cfg, cfg.batch_size, use_graph=use_graph)
    model.eval()
    neg_tgt = with_bos(response_rows(decode(src), cfg.max_len))
    weights = position_weights(neg_tgt, cfg.eos_weight)                   # every sample a negative
    norm = (weights > 0).sum()
    real = (tgt[:, 1:] != PAD_ID).float()
    model.train()
    calls = {"decode": lambda: decode(src),
             "negative step": lambda: updates.negative(src, neg_tgt, weights, norm),
             "positive step": lambda: updates.positive(src, tgt, -cfg.lambda_pos * real, real.sum())}
    if not use_graph:                   # eager calls read the module's mode when they run (a graph kept its own)
        calls = {name: _in_mode(model, name != "decode", call) for name, call in calls.items()}
    for _ in range(GRAPH_WARMUP + 2):                                     # warm-up, capture, first replay
        calls["negative step"](), calls["positive step"]()
    return calls


def _in_mode(model: torch.nn.Module, train_mode: bool, call: Callable[[], object]) -> Callable[[], object]:
    def run():
        model.train(train_mode)
        return call()
    return run


def graph_floor(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], cfg, reps: int) -> dict[str, float]:
    """ms per replay of Algorithm 2's three CUDA graphs (greedy decode, negative step, positive step) on the first
    mini-batch of ``train``, each replayed ``reps`` times back to back on a copy of ``model``."""
    out = {}
    for name, call in algorithm2_calls(model, train, cfg, use_graph=True).items():
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            call()
        end.record()
        torch.cuda.synchronize()
        out[name] = start.elapsed_time(end) / reps
    return out


def kernel_breakdown(model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], cfg, reps: int
                     ) -> pd.DataFrame:
    """Where the three calls' time goes: each run eagerly ``reps`` times under torch.profiler; one row per call and
    kernel (on a CPU: operator) with its launches and milliseconds per call. A graph replays the same kernels, so
    on a GPU this is the graphed loop's work kernel by kernel (the profiler does not see into graph replays)."""
    from torch.profiler import ProfilerActivity, profile
    cuda = train[0].device.type == "cuda"
    rows = []
    for name, call in algorithm2_calls(model, train, cfg, use_graph=False).items():
        if cuda:
            torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
            for _ in range(reps):
                call()
            if cuda:
                torch.cuda.synchronize()
        events = prof.key_averages()                  # the time key as benchmarks/train_throughput.py picks it
        key = ("self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total") \
            if cuda else "self_cpu_time_total"
        rows += [{"call": name, "kernel": e.key, "launches": e.count / reps, "ms": getattr(e, key) / reps / 1000}
                 for e in events if getattr(e, key) > 0]
    return pd.DataFrame(rows)


def print_breakdown(table: pd.DataFrame, launches: str, top: int = 8) -> None:
    """Per call: the kernels' total time and ``launches`` (what a row counts), then its ``top`` kernels by time."""
    for name, part in table.groupby("call", sort=False):
        part = part.sort_values("ms", ascending=False)
        print(f"{name}: {part['ms'].sum():.3f} ms in {part['launches'].sum():.0f} {launches} per call; by time:")
        for r in part.head(top).itertuples():
            print(f"  {r.ms:8.3f} ms {r.launches:6.0f} x  {r.kernel[:90]}")


def _allocated(device: torch.device) -> float:
    """MiB the caching allocator holds for tensors now (after a collection, so that dropped graphs are gone), and
    the peak counter reset; NaN on a CPU. cuBLAS workspaces are released first, as PyTorch's own CUDA leak check
    does (torch.testing's CudaMemoryLeakCheck): PyTorch keeps one per stream until cleared, and every graph warms up
    and is captured on a stream of its own (steps.GRAPH_WARMUP's note), so they would count as kept by each pass."""
    if device.type != "cuda":
        return float("nan")
    gc.collect()
    torch.cuda.synchronize()
    # the public name where a later torch has it; safe here: no earlier pass's graph is replayed again
    clear = getattr(torch.cuda, "clear_cublas_workspaces", None) or torch._C._cuda_clearCublasWorkspaces
    clear()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() / 2**20


def run_paths(model, train, test, vocab, base_cfg, args, device, variant: str) -> list[dict]:
    """One pass of ``train_frequent`` per path and r_thres (module docstring): a row each, labelled ``variant``."""
    rows = []
    for r_thres in args.r_thres:
        for name, (every_batch, norm, lookahead, graph) in PATHS.items():
            if graph and device.type != "cuda":
                continue
            cfg = dataclasses.replace(base_cfg, r_thres=r_thres, window=args.window, epochs=1, lookahead=lookahead,
                                      update_every_batch=every_batch, negative_norm=norm,
                                      cuda_graph=graph, seed=1, ppl_abort=float("inf"))
            torch.manual_seed(1)
            before = _allocated(device)
            copy = fresh_copy(model)
            (curve,) = train_frequent([copy], train, test, vocab, [cfg], log_every=10**9)
            peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
            del copy                                                  # what the pass leaves allocated without it
            last = curve.iloc[-1]
            rows.append({"variant": variant, "r_thres": r_thres, "path": name,
                         "batches": int(last["steps"]), "batches_per_s": last["steps"] / last["seconds"],
                         "decodes": int(last["decodes"]), "negative_batches": int(last["negative_steps"]),
                         "seconds": last["seconds"], "test_max_ratio_after": last["test_max_ratio"],
                         "peak_mib": peak, "kept_mib": _allocated(device) - before})
            ref = next(r for r in rows if r["r_thres"] == r_thres and r["path"] == name.split("/")[0] + "/eager")
            rows[-1]["speedup"] = rows[-1]["batches_per_s"] / ref["batches_per_s"]
            print(f"{variant} r_thres {r_thres:g} {name}: {rows[-1]['batches_per_s']:.1f} mini-batches/s",
                  flush=True)
    return rows


def print_floor(model, train, base_cfg, args, rows: list[dict], variant: str) -> dict[str, float]:
    """The three graphs' GPU time back to back (``graph_floor``, captured under ``base_cfg.matmul_precision``)
    beside the release/graphs loop's, printed."""
    with tf32_matmul(base_cfg.matmul_precision == "tf32"):
        floor = graph_floor(model, train, dataclasses.replace(base_cfg, r_thres=args.r_thres[-1]), args.floor_reps)
    total = sum(floor.values())
    loop = [1000 / r["batches_per_s"] for r in rows if r["path"] == "release/graphs" and r["variant"] == variant][-1]
    print(f"{variant}: graphs replayed back to back, ms per mini-batch: "
          + ", ".join(f"{k} {v:.3f}" for k, v in floor.items())
          + f"; together {total:.3f} against {loop:.3f} per mini-batch in the release/graphs loop "
          f"(r_thres {args.r_thres[-1]:g}): the loop is at most {loop / total:.2f}x above its graphs' GPU time")
    return floor


def compare_variants(table: pd.DataFrame, floors: dict[str, dict[str, float]], modes: list[str]) -> None:
    """Each later ``modes`` entry's rate (and graph times) over the first's, path by path, from this one run."""
    rate = table.pivot_table(index=["r_thres", "path"], columns="variant", values="batches_per_s", sort=False)
    for mode in modes[1:]:
        print(f"{mode} / {modes[0]}, mini-batches/s:")
        print((rate[mode] / rate[modes[0]]).to_string(float_format="%.3f"))
        if floors:
            print(f"{mode} / {modes[0]}, GPU time of each graph: " + ", ".join(
                f"{k} {floors[mode][k] / floors[modes[0]][k]:.3f}" for k in floors[modes[0]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--pairs", type=Path)
    ap.add_argument("--dataset", default="switchboard")
    ap.add_argument("--batches", type=int, default=800)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--r-thres", type=float, nargs="+", default=[0.1, 0.01])
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--floor-reps", type=int, default=200, help="replays per graph for the GPU floor (0: skip it)")
    ap.add_argument("--profile", type=int, default=0, metavar="REPS",
                    help="then profile the three calls eagerly REPS times each: kernel time and launches per call")
    ap.add_argument("--arch", choices=["lstm", "transformer"], default="lstm",
                    help="the random model's architecture (without --checkpoint)")
    ap.add_argument("--words", type=int, default=10000, help="the random model's vocabulary, specials aside")
    ap.add_argument("--embedding", type=int, default=300, help="the random LSTM's embedding size")
    ap.add_argument("--hidden", type=int, default=600, help="the random LSTM's hidden size")
    ap.add_argument("--release-attention", action="store_true",
                    help="the random LSTM with configs/paper_levels.yaml's model (the release's attention, zero start)")
    ap.add_argument("--configfile", type=Path, nargs="+", default=[],
                    help="overlays on config.yaml (e.g. configs/release.yaml): Algorithm 2's settings, and the random "
                         "LSTM's model structure keys")
    ap.add_argument("--weight-grads", nargs="+", choices=["per_step", "deferred"],
                    help="how the release decoder sums its weight gradients over the steps (frequent.weight_grads; "
                         "default: the overlays'); several: every path and the floor under each, with their ratios")
    ap.add_argument("--matmul-precision", nargs="+", choices=["ieee", "tf32"],
                    help="float32 matrix products in full float32 or TF32 (frequent.matmul_precision; default: the "
                         "overlays'); several: every path and the floor under each, with their ratios")
    args = ap.parse_args()
    if (args.release_attention or args.configfile) and args.arch != "lstm":
        ap.error("--release-attention and --configfile shape the random LSTM: use them with --arch lstm")
    logging.basicConfig(level=logging.WARNING)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # --release-attention is configs/paper_levels.yaml as the first overlay: that preset's model keys
    overlays = (ROOT / "configs" / "paper_levels.yaml",) * args.release_attention + tuple(args.configfile)
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", overlays), args.dataset)
    base_cfg = dataclasses.replace(s.frequent[0], r_thres=0.0)
    variants = [(w, m) for w in args.weight_grads or [base_cfg.weight_grads]
                for m in args.matmul_precision or [base_cfg.matmul_precision]]
    labels = [f"{w}+{m}" for w, m in variants]
    n = args.batches * base_cfg.batch_size
    if args.checkpoint:
        loaded = checkpoint.load(args.checkpoint, device=device)
        model, vocab = loaded.model, loaded.vocab
        pairs = load_pairs(args.pairs, vocab, s.data, device)
        train = (pairs.src[:n], pairs.tgt[:n])
        source = f"{args.checkpoint} on the first {len(train[0]):,} pairs of {args.pairs}"
    else:
        overlaid = {}                                                     # the overlays alone, merged as in load
        for overlay in overlays:
            ncfg.deep_update(overlaid, yaml.safe_load(overlay.read_text()) or {})
        structure = {k: v for k, v in (overlaid.get("model") or {}).items() if k in STRUCTURE_KEYS}
        model, vocab, train = synthetic(args.words, n, device, arch=args.arch, embedding=args.embedding,
                                        hidden=args.hidden, **structure)
        source = (f"random {args.arch} seq2seq{f' ({structure})' if structure else ''} "
                  f"(V={len(vocab):,}) on {n:,} synthetic pairs")
    test = (train[0][:256], train[1][:256])
    print(f"# {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {source}; batch "
          f"{base_cfg.batch_size}, window {args.window} mini-batches; overlays: "
          f"{' '.join(map(str, overlays)) or 'none'}")
    print(f"# Algorithm 2 (each path sets update_every_batch, negative_norm, lookahead, cuda_graph): {base_cfg}; "
          f"variants (weight gradients over the decoder's steps / float32 matmuls): {' then '.join(labels)}")
    rows, floors = [], {}
    for (weight_grads, precision), label in zip(variants, labels):
        Seq2Seq.release_weight_grads = weight_grads                   # the floor's and the profile's graphs too
        cfg = dataclasses.replace(base_cfg, matmul_precision=precision, weight_grads=weight_grads)
        rows += run_paths(model, train, test, vocab, cfg, args, device, label)
        if device.type == "cuda" and args.floor_reps:
            floors[label] = print_floor(model, train, cfg, args, rows, label)
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))
    if len(variants) > 1:
        compare_variants(pd.DataFrame(rows), floors, labels)
    if args.profile:
        cuda = device.type == "cuda"
        print(f"where each call's time goes (eager, torch.profiler; {'GPU kernels' if cuda else 'CPU operators'}; "
              f"{labels[-1]}):")
        with tf32_matmul(cfg.matmul_precision == "tf32"):
            table = kernel_breakdown(model, train, dataclasses.replace(cfg, r_thres=args.r_thres[-1]), args.profile)
        print_breakdown(table, "launches" if cuda else "operator calls")
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
