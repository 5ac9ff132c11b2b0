"""Several Algorithm 2 runs on one GPU: one after another, as separate processes side by side (what
``--resources gpu_slots=N`` gives separate Snakemake jobs), and interleaved in one process on their own CUDA
streams (``frequent.runs_per_job``, ``negtrain_core.negtrain.frequent.FrequentRun``).

    PYTHONPATH=. python benchmarks/gpu_sharing.py [--batches 400] [--r-thres 0.1 0.01] [--csv out.csv]

Each run is the release reading with CUDA graphs (the pipeline's default) for one pass over the same first
``--batches`` mini-batches of 32 (Switchboard's batch size) of a random paper-size seq2seq (V=10,005) on synthetic
pairs, from the same weights, one run per ``--r-thres``. It prints, for each way, the wall seconds of the training
passes (the processes' start-up, data loading and graph capture excluded: they wait at a barrier first), the
aggregate mini-batches/s and the speed-up over one after another, all measured in this one run; and how far each
interleaved run's final weights are from those of the same run alone, beside how far the same run alone is from
itself when repeated (torch documents the CUDA embedding backward as adding in no fixed order). Timing lives here,
never in the tests.

Measured (NVIDIA H100 80GB HBM3, torch 2.11.0+cu130, 2026-11-24 20:29 UTC, GPU otherwise idle; each CUDA graph
captured on its own stream, ``--batches 400``, 2 runs, a model without dropout, as the benchmark then built it):

    way                                      seconds  mini-batches/s  speed-up
    one after another                           6.33           126.3      1.00
    2 streams, one process                      4.44           180.4      1.43
    2 processes side by side                    6.52           122.7      0.97
    largest weight difference, interleaved run vs the run alone: 0.0; run alone vs the same run alone again: 0.0

With 4 runs (``--r-thres 0.1 0.05 0.02 0.01 --batches 300 --ways streams``): 1.40x. The weight difference was 0.0,
and 1.7e-3 with the graphs captured the old way, on torch's one default capture stream, in the same sitting (that
pass did not hang). Graphs captured on one stream share its cuBLAS workspace, and replayed side by side on different
streams they race on it (``negtrain_core.models.steps``, the note at ``GRAPH_WARMUP``).

Dropout (``--dropout``, Switchboard's 0.3 by default since 2026-11-24 21:40 UTC). The model above had none, so the
benchmark never drew random numbers inside a graph. At paper scale, with dropout 0.3, interleaved runs still drew
other dropout masks than alone (Switchboard run 9): every graph read its RNG seed and offset from the one default
CUDA generator state's device tensors, rewritten by each replay on its own stream. Each run now swaps in a generator
state object of its own (``negtrain_core.models.steps.RngSlot``). Measured with it (21:40 UTC, ``--batches 300 --ways
streams``, a seq2seq training job sharing the GPU, so the speed-up is indicative only): 1.41x, weight difference 0.0.
At paper scale (run 10) both runs' curves and test metrics then equalled those of the runs alone exactly, in
60 s per epoch for the two together, against 42.8-49 s each alone.

Before the capture-stream fix, interleaved runs hung twice:
- 4 runs in this benchmark: a CUDA graph replay did not return within 150 s.
- 2 runs at paper scale (Switchboard run 6, 19:46 UTC, beside three GAN jobs): after 800 mini-batches the process
  spun in ``cuGraphLaunch`` (py-spy: the positive step's ``CUDAGraph.replay``) for 9 minutes with the GPU at 100%.

A kernel waiting on a semaphore in a workspace that another stream overwrites would do that; this is not proven. With
the fix, a 4-run and a 2-run process of 2,500 mini-batches each, running at the same time, both finished, each run
equal to itself alone (0.0). The speed-ups of that pair mean nothing: the two processes' phases overlapped. Runs 9 and
10 interleaved 2 runs at paper scale for 6 and 20 epochs (34k and 113k mini-batches each) without a hang. Separate
jobs ran at 89.6 s per epoch each when two shared the H100 at paper scale (42.8 s alone), the 0.97x above.

Why: a CUDA-graphed Algorithm 2 step is ~60 small kernels on 32 rows; the GPU runs them one after another with most
of its multiprocessors idle. Separate processes do not fill them: without MPS a GPU time-slices between processes.
Streams of one process do run side by side.

Under NVIDIA MPS it is the other way round. Start the daemon first (``nvidia-cuda-mps-control -d``; the benchmark
does not); every CUDA process then runs as its client. Measured (same H100, 2026-11-25 01:08-01:10 UTC, one
sitting, ``--batches 400`` for 2 runs and ``--batches 300 --r-thres 0.1 0.05 0.02 0.01`` for 4):

    way                                      no MPS      MPS
    2 processes side by side                  0.98x    1.43x
    2 streams, one process                        -    1.01x   (weight difference 0.0)
    4 processes side by side                      -    1.89x
    4 streams, one process                        -    1.03x   (weight difference 0.0)

So under MPS a dataset's Algorithm 2 runs go in separate jobs (``frequent.runs_per_job: 1``). At paper scale
(Switchboard run 13) they then took 61.6-61.8 s per epoch each, alone on the GPU, every logged number equal to the
runs alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import faulthandler
import logging
import multiprocessing as mp
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frequent_throughput import synthetic  # noqa: E402

from negtrain_core import config as ncfg  # noqa: E402
from negtrain_core.negtrain.frequent import train_frequent  # noqa: E402
from negtrain_core.models.interface import fresh_copy  # noqa: E402


def setup(batches: int, r_thres: list[float], window: int, dropout: float, **model_kw):
    """The model (``model_kw``: ``synthetic``'s sizes, paper size by default), data and one FrequentSettings per
    r_thres (one epoch over ``batches`` mini-batches)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    s = ncfg.settings(ncfg.load(Path(__file__).resolve().parent.parent / "config.yaml"), "switchboard")
    base = s.frequent[0]
    model_kw.setdefault("words", 10_000)
    model, vocab, train = synthetic(n=batches * base.batch_size, device=device, dropout=dropout, **model_kw)
    test = (train[0][:256], train[1][:256])
    cfgs = [dataclasses.replace(base, r_thres=r, window=window, epochs=1, seed=1, ppl_abort=float("inf"))
            for r in r_thres]
    return model, vocab, train, test, cfgs


def sync() -> None:
    """Waits for the GPU's queued work (nothing on a CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """The largest absolute difference between the two models' weights."""
    return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def warm(model, vocab, train, test, cfg) -> None:
    """One short run: CUDA context, cuDNN plans and graph-capture code paths loaded before any timing."""
    short = (train[0][:cfg.batch_size * 8], train[1][:cfg.batch_size * 8])
    train_frequent([fresh_copy(model)], short, test, vocab, [cfg], log_every=10**9)


def worker(i: int, args, barrier, out) -> None:
    """One run alone in this process, started with the others' at the barrier; puts its seconds on ``out``."""
    faulthandler.dump_traceback_later(args.timeout, exit=True)
    logging.basicConfig(level=logging.WARNING)
    model, vocab, train, test, cfgs = setup(args.batches, args.r_thres, args.window, args.dropout)
    warm(model, vocab, train, test, cfgs[i])
    twin = fresh_copy(model)
    barrier.wait()
    torch.manual_seed(1)
    out.put(timed(lambda: train_frequent([twin], train, test, vocab, [cfgs[i]], log_every=10**9)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--r-thres", type=float, nargs="+", default=[0.1, 0.01])
    ap.add_argument("--dropout", type=float, default=0.3, help="Switchboard's; dropout draws random numbers in the "
                    "graphed steps, which interleaved runs must each draw from their own state")
    ap.add_argument("--ways", nargs="+", default=["streams", "processes"], choices=["streams", "processes"])
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--timeout", type=float, default=600, help="print every thread's stack and exit after this")
    args = ap.parse_args()
    faulthandler.dump_traceback_later(args.timeout, exit=True)
    logging.basicConfig(level=logging.WARNING)
    model, vocab, train, test, cfgs = setup(args.batches, args.r_thres, args.window, args.dropout)
    device = train[0].device
    n = len(cfgs)
    print(f"# {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {n} runs (r_thres "
          f"{', '.join(f'{r:g}' for r in args.r_thres)}) of {args.batches} mini-batches of {cfgs[0].batch_size}")
    warm(model, vocab, train, test, cfgs[0])
    print("warmed up", flush=True)

    alone, seconds = [], 0.0
    for cfg in cfgs:
        twin = fresh_copy(model)
        torch.manual_seed(1)
        seconds += timed(lambda: train_frequent([twin], train, test, vocab, [cfg], log_every=10**9))
        alone.append(twin)
    rows = [{"way": "one after another", "seconds": seconds}]

    print(f"one after another: {seconds:.2f} s", flush=True)
    same = spread = None
    if "streams" in args.ways:
        twins = [fresh_copy(model) for _ in cfgs]
        torch.manual_seed(1)
        rows.append({"way": f"{n} streams, one process (frequent.runs_per_job)",
                     "seconds": timed(lambda: train_frequent(twins, train, test, vocab, cfgs, log_every=10**9))})
        same = max(max_diff(a, t) for a, t in zip(alone, twins))
        again = fresh_copy(model)                        # the spread of a run repeated alone, for scale
        torch.manual_seed(1)
        train_frequent([again], train, test, vocab, [cfgs[0]], log_every=10**9)
        spread = max_diff(alone[0], again)
        print(f"streams: {rows[-1]['seconds']:.2f} s", flush=True)
    if "processes" in args.ways:
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(n + 1, timeout=args.timeout), ctx.Queue()
        procs = [ctx.Process(target=worker, args=(i, args, barrier, out)) for i in range(n)]
        for p in procs:
            p.start()
        barrier.wait()                                  # raises BrokenBarrierError if a worker died first
        start = time.perf_counter()
        worker_seconds = [out.get(timeout=args.timeout) for _ in procs]
        rows.append({"way": f"{n} processes side by side (gpu_slots)", "seconds": time.perf_counter() - start,
                     "slowest_process_s": max(worker_seconds)})
        for p in procs:
            p.join()
        print(f"processes: {rows[-1]['seconds']:.2f} s", flush=True)

    table = pd.DataFrame(rows)
    table["mini_batches_per_s"] = n * args.batches / table["seconds"]
    table["speedup"] = table["seconds"].iloc[0] / table["seconds"]
    print(table.to_string(index=False, float_format="%.2f"))
    print(f"largest weight difference, interleaved run vs the run alone: {same}; run alone vs the same run alone "
          f"again: {spread}")
    if args.csv:
        table.assign(max_weight_diff=same, max_weight_diff_repeat=spread).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
