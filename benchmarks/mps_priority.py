"""Algorithm 2 beside other GPU jobs under NVIDIA MPS, and what config ``mps`` changes (docs/running.md).

    PYTHONPATH=. python benchmarks/mps_priority.py [--loads 4] [--batches 2000] [--share 50]
        [--ways alone default below_normal share] [--csv out.csv]

Start the MPS daemon first (``nvidia-cuda-mps-control -d``): without it the variables do nothing and the figures show
the GPU's time-slicing between processes. One Algorithm 2 run (the release reading with CUDA graphs, the pipeline's
default, r_thres 0.01, one pass over ``--batches`` mini-batches of 32 of a random paper-size seq2seq, as
benchmarks/gpu_sharing.py) is timed alone, then beside ``--loads`` processes, each training a paper-size seq2seq in
a loop (one CUDA graph a step at batch 64, the paper's: baseline training, the kind of job that shared the GPU with
Algorithm 2 in Switchboard run 60, where it ran four to ten times slower than alone):

- default: the loads at MPS's default priority, as in run 60;
- below_normal: the loads with CUDA_MPS_CLIENT_PRIORITY=1 (config ``mps.below_normal``);
- share: the loads with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=``--share`` (config ``mps.active_thread_percentage``).

Every process builds its model and warms up (graph capture included) before a barrier; the clock starts there and
the loads stop when Algorithm 2's pass ends. Printed per way, all measured in this one run: Algorithm 2's seconds, its
mini-batches/s and its slowdown against alone, and the loads' training steps/s together (what they give up). Timing
lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frequent_throughput import synthetic  # noqa: E402
from gpu_sharing import setup, sync, timed, warm  # noqa: E402
from train_throughput import ours, synthetic_batches  # noqa: E402

from negtrain_core import config as ncfg  # noqa: E402
from negtrain_core import gpu_slots  # noqa: E402
from negtrain_core.negtrain.frequent import train_frequent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WAYS = ("alone", "default", "below_normal", "share")
LOAD_BATCH = 64
SYNC_EVERY = 20                  # a load reads the GPU back this often, as a training job logging its loss does


def load_env(way: str, share: int) -> dict[str, str] | None:
    """The loads' MPS variables in ``way`` (None: no loads)."""
    return {"alone": None, "default": {}, "below_normal": {gpu_slots.MPS_PRIORITY_ENV: "1"},
            "share": {gpu_slots.MPS_SHARE_ENV: str(share)}}[way]


def algorithm2(args, barrier, stop, out) -> None:
    """One Algorithm 2 pass (r_thres 0.01), timed from the barrier; sets ``stop`` when it ends."""
    model, vocab, train, test, cfgs = setup(args.batches, [0.01], 50, 0.3, words=args.words,
                                            embedding=args.embedding, hidden=args.hidden)
    warm(model, vocab, train, test, cfgs[0])
    sync()
    barrier.wait()
    seconds = timed(lambda: train_frequent([model], train, test, vocab, cfgs, log_every=10**9))
    stop.set()
    out.put(("algorithm2", seconds))


def load(env: dict[str, str], args, barrier, stop, out) -> None:
    """A seq2seq trained in a loop from the barrier until ``stop``; its MPS variables set before CUDA starts."""
    os.environ.update(env)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml"), "switchboard")
    model, _, _ = synthetic(args.words, 1, dev, 0.3, embedding=args.embedding, hidden=args.hidden)
    batches = synthetic_batches(args.words, LOAD_BATCH, 8, seed=2, device=dev)
    run = ours(model.train(), s.train, LOAD_BATCH, use_graph=dev.type == "cuda")
    for i in range(5):                                                                   # warm-up and capture
        run(*batches[i % len(batches)])
    sync()
    barrier.wait()
    start, steps = time.perf_counter(), 0
    while not stop.is_set():
        run(*batches[steps % len(batches)])
        steps += 1
        if steps % SYNC_EVERY == 0:
            sync()
    sync()
    out.put(("load", steps / (time.perf_counter() - start)))


def measure(way: str, args) -> dict:
    env = load_env(way, args.share)
    loads = 0 if env is None else args.loads
    ctx = mp.get_context("spawn")
    barrier, stop, out = ctx.Barrier(loads + 2, timeout=args.timeout), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=algorithm2, args=(args, barrier, stop, out))]
    procs += [ctx.Process(target=load, args=(env, args, barrier, stop, out)) for _ in range(loads)]
    for p in procs:
        p.start()
    barrier.wait()                                          # raises BrokenBarrierError if a process died first
    got = [out.get(timeout=args.timeout) for _ in procs]
    for p in procs:
        p.join()
    seconds = next(v for k, v in got if k == "algorithm2")
    rates = [v for k, v in got if k == "load"]
    return {"way": way, "loads": loads, "mps_env": " ".join(f"{k}={v}" for k, v in (env or {}).items()),
            "algorithm2_s": seconds, "algorithm2_mini_batches_per_s": args.batches / seconds,
            "loads_steps_per_s": sum(rates) if rates else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", type=int, default=4, help="processes training beside Algorithm 2")
    ap.add_argument("--batches", type=int, default=2000, help="Algorithm 2's mini-batches of 32")
    ap.add_argument("--share", type=int, default=50, help="the loads' %% of the SMs in the 'share' way")
    ap.add_argument("--ways", nargs="+", default=list(WAYS), choices=WAYS)
    ap.add_argument("--words", type=int, default=10_000)
    ap.add_argument("--embedding", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=600)
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    pipe = Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps")) / "control"
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"# {name}, torch {torch.__version__}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"MPS control pipe {pipe}: {'found' if pipe.exists() else 'not found (the MPS variables do nothing)'}; "
          f"Algorithm 2: {args.batches} mini-batches, loads: {args.loads} x seq2seq training at batch {LOAD_BATCH}",
          flush=True)
    rows = []
    for way in args.ways:
        rows.append(measure(way, args))
        print(f"{way}: Algorithm 2 {rows[-1]['algorithm2_s']:.2f} s", flush=True)
    table = pd.DataFrame(rows)
    if "alone" in args.ways:
        table["slowdown"] = table["algorithm2_s"] / table.loc[table["way"] == "alone", "algorithm2_s"].iloc[0]
    print(table.to_string(index=False, float_format="%.2f"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
