"""The benchmarks run: each CPU-capable script of benchmarks/ at toy sizes ends without error and prints its figures.
No timing is asserted (timing lives in the benchmarks); a benchmark that crashes would otherwise be found only on the
GPU machine it was meant for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TOY_LSTM = ["--words", "300", "--embedding", "16", "--hidden", "16", "--sweeps", "1", "--candidates", "4"]


@pytest.mark.parametrize("script, args, expected", [
    ("gibbs_enum.py", ["--targets", "6", "--restarts", "2", "--release-positions", "1", *TOY_LSTM],
     ["(b) batched search (all sweeps", "shared-prefix memory", "fused log p(gold)"]),
    ("gibbs_enum.py", ["--io", "--targets", "6", "--restarts", "2", "--release-positions", "1", *TOY_LSTM],
     ["(b) batched search (all sweeps"]),
    ("malicious_batch.py", ["--batch", "8", *TOY_LSTM],
     ["o-mode search", "io-mode search", "search.shared_tail:", "x the same search without it",
      "search.lm_sample_rng device:", "hit test:",
      "a round inside batch_rounds (20 rounds), eager:"]),
    ("frequent_throughput.py", ["--batches", "4", "--window", "2", "--r-thres", "0.5", "--floor-reps", "0",
                                "--words", "300", "--embedding", "16", "--hidden", "16"],
     ["release/eager", "listing/eager"]),
    ("frequent_throughput.py", ["--release-attention", "--batches", "4", "--window", "2", "--r-thres", "0.5",
                                "--floor-reps", "0", "--words", "300", "--embedding", "16", "--hidden", "16",
                                "--profile", "1", "--weight-grads", "per_step", "deferred", "--matmul-precision",
                                "ieee", "tf32"],
     ["'attention': 'release'", "'decoder_init': 'zero'", "release/eager", "where each call's time goes",
      "decode: ", "negative step: ", "positive step: ", "operator calls per call; by time:",
      "float32 matmuls): per_step+ieee then per_step+tf32 then deferred+ieee then deferred+tf32",
      "deferred+tf32 r_thres 0.5 release/eager", "deferred+ieee / per_step+ieee, mini-batches/s:",
      "deferred+tf32 / per_step+ieee, mini-batches/s:"]),
    ("frequent_throughput.py", ["--configfile", str(ROOT / "configs" / "release.yaml"), "--batches", "4", "--window",
                                "2", "--r-thres", "0.5", "--floor-reps", "0", "--words", "300", "--embedding", "16",
                                "--hidden", "16"],
     ["'init': 'release'", "'dropout_sites': 'decoder'", "clip_scope='per_module'", "positive_batch='same'",
      "release/eager"]),
    ("gold_logp.py", ["--rows", "64", "--positions", "2", "--vocab", "300", "--repeats", "1"],
     ["torch log-softmax + gather"]),
    ("mps_priority.py", ["--loads", "1", "--batches", "4", "--words", "300", "--embedding", "16", "--hidden", "16",
                         "--ways", "alone", "below_normal"],
     ["MPS control pipe", "below_normal: Algorithm 2", "CUDA_MPS_CLIENT_PRIORITY=1", "slowdown"]),
], ids=["gibbs_enum", "gibbs_enum_io", "malicious_batch", "frequent_throughput", "frequent_throughput_release",
        "frequent_throughput_preset", "gold_logp", "mps_priority"])
def test_a_benchmark_runs_at_toy_size_on_the_cpu(tmp_path, script, args, expected):
    path = filter(None, [str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")])  # the caller's kept
    # one thread, as the suite's own processes (conftest): toy sizes gain nothing from more, and with torch's default
    # of a thread per core a 10 s run took 170 s beside another pytest-xdist worker's jobs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)                                   # no JSON written into a caller's folder
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    for line in expected:
        assert line in run.stdout, f"{script}: no '{line}' in\n{run.stdout[-2000:]}"
