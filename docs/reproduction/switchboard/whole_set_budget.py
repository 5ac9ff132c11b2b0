"""The whole Switchboard set against a 25-minute run on one GPU, by arithmetic on measured stage times (no run).

  PYTHONPATH=. python docs/reproduction/switchboard/whole_set_budget.py

Reads wall_times.csv (each committed run's stage times from Snakemake's ``benchmark:`` files) and prints two sums:
the critical path (preprocessing, the seq2seq beside the LM, Algorithm 2's two r_thres, their evaluation) and the
job-minutes of every other job that can only start once the baseline is trained (Algorithm 1 on the 0.5k, 1k and 2.5k
lists in both modes, their and the baseline's hit tests, the GAN's three generator lrs, unlikelihood, MMI and the beam
overlap). Each stage is taken from the run that timed it on the coherent base (the authors' lists) or in the whole
set, alone on the GPU or beside a few others; the run and GPU of each figure are printed beside it. Algorithm 2's time
on an H200 scales its H100 time by the two GPUs' rates in benchmarks/frequent_throughput.py. Then: how many jobs' work
the GPU would have to do at once to fit the budget, against what MPS gave four jobs at once (benchmarks/gpu_sharing.py),
and the same work spread over four GPUs (Algorithm 2 on one, the rest on three).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
BUDGET_S = 25 * 60

# (run, stage, GPU) of every job the whole set runs after the baseline, Algorithm 2 aside
OTHER_JOBS = [
    ("run32", "negtr-o-0.5k", "H200"), ("run32", "negtr-io-0.5k", "H200"),
    ("run31", "negtr-o-1k", "H200"), ("run31", "negtr-io-1k", "H200"),
    ("run41", "negtr-o-2.5k", "H100"), ("run43", "negtr-io-2.5k", "H200"),
    ("run20", "hits_baseline_train", "H200"), ("run20", "hits_baseline_test", "H200"),
    *[("run32", f"hits_negtr-{m}-0.5k_{s}", "H200") for m in ("o", "io") for s in ("train", "test")],
    *[("run31", f"hits_negtr-{m}-1k_{s}", "H200") for m in ("o", "io") for s in ("train", "test")],
    *[("run41", f"hits_negtr-o-2.5k_{s}", "H100") for s in ("train", "test")],
    *[("run43", f"hits_negtr-io-2.5k_{s}", "H200") for s in ("train", "test")],
    *[("run13", f"gan_g_lr-{lr}", "H100") for lr in ("0.01", "0.001", "0.0001")],
    ("run13", "ul", "H100"), ("run13", "evaluate_mmi", "H100"), ("run13", "beam_overlap", "H100"),
]
# Algorithm 2, both r_thres interleaved in one job (run 10, H100); on an H200 its graphed loop runs 133.6 mini-batches
# a second against 117.8 on an H100 (docs/benchmarks.md, release reading)
FREQUENT = ("run10", "freq-0.1_0.01", "H100")
H200_OVER_H100 = 133.6 / 117.8
TF32 = 1.17                # frequent.matmul_precision: tf32 (configs/fast.yaml), the graphed loop 1.15-1.19x (H100)
MPS_FOUR_JOBS = 1.89       # four Algorithm 2 jobs at once under MPS: 1.89x one job's throughput (gpu_sharing.py)
EVALUATION_S = 60          # both Algorithm 2 models' evaluation, then Tables 4 and 9 (about a minute in run 6)


def main() -> None:
    times = pd.read_csv(HERE / "wall_times.csv").set_index(["run", "stage"])["seconds"]

    def seconds(run: str, stage: str) -> float:
        return float(times.loc[(run, stage)])

    start = seconds("run20", "preprocess") + seconds("run20", "train_seq2seq")
    frequent_h100 = seconds(*FREQUENT[:2])
    frequent_h200 = frequent_h100 / H200_OVER_H100
    path = start + frequent_h200 + EVALUATION_S
    print(f"preprocessing + seq2seq (beside the LM), run20, H200: {start:7.0f} s")
    print(f"Algorithm 2, both r_thres in one job, run10, H100:     {frequent_h100:7.0f} s "
          f"(on an H200 at {H200_OVER_H100:.2f}x: {frequent_h200:.0f} s)")
    print(f"evaluation and Tables 4, 9 (about):                   {EVALUATION_S:7.0f} s")
    print(f"critical path on an H200, the GPU to itself:          {path:7.0f} s = {path / 60:.1f} min "
          f"(budget {BUDGET_S / 60:.0f} min)")
    fast = start + frequent_h200 / TF32 + EVALUATION_S
    print(f"  with Algorithm 2 in TF32 ({TF32}x):                    {fast:7.0f} s = {fast / 60:.1f} min")
    print()
    total = 0.0
    for run, stage, gpu in OTHER_JOBS:
        s = seconds(run, stage)
        total += s
        print(f"  {stage:28s} {s:7.0f} s  {run}, {gpu}")
    print(f"every other job after the baseline: {total:.0f} s = {total / 60:.0f} job-minutes, "
          f"{len(OTHER_JOBS)} jobs")
    window = BUDGET_S - start
    work = total + frequent_h200 / TF32 + EVALUATION_S
    print(f"after the baseline the GPU has {window / 60:.1f} min for {work / 60:.0f} job-minutes (Algorithm 2 in TF32 "
          f"included): {work / window:.1f} jobs' work at once, each at its speed alone; measured under MPS, four "
          f"jobs at once give {MPS_FOUR_JOBS}x one job's")
    print(f"on one GPU at {MPS_FOUR_JOBS}x: {work / MPS_FOUR_JOBS / 60 + start / 60:.0f} min in all; the other jobs "
          f"on three more GPUs at that rate: {total / (3 * MPS_FOUR_JOBS) / 60:.0f} min, beside Algorithm 2's "
          f"{frequent_h200 / TF32 / 60:.0f} on a GPU of its own")


if __name__ == "__main__":
    main()
