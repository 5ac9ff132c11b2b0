"""Jobs for tests/test_gpu_slots.py's processes: they import only what a claim needs, so each starts quickly."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

from negtrain_core import gpu_slots

NO_ENV: dict[str, str] = {}


def claim_and_hold(root: str, count: int, per_gpu: int, env: dict[str, str], out: mp.Queue, end: mp.Event) -> None:
    """A job: claim (waiting if need be), report (pid, index, physical), hold until ``end``."""
    a = gpu_slots.assign(None, count, per_gpu, env, Path(root), poll_s=0.05)
    out.put((os.getpid(), a.index, a.physical))
    end.wait()


def claim_and_count(root: str, count: int, per_gpu: int, jobs: int, tally: mp.Array, running: mp.Array,
                     peaks: mp.Array) -> None:
    """A job: arrive, claim, count itself on its GPU and note the peak; the first ``count x per_gpu`` claimants hold
    their slots until every job has arrived (so the others claim while the slots are full), then all leave."""
    with tally.get_lock():
        tally[0] += 1                                                  # arrived
    a = gpu_slots.assign(None, count, per_gpu, NO_ENV, Path(root), poll_s=0.01)
    with tally.get_lock():
        tally[1] += 1                                                  # claimed
        running[a.index] += 1
        peaks[a.index] = max(peaks[a.index], running[a.index])
    while tally[0] < jobs or tally[1] < count * per_gpu:
        time.sleep(0.01)
    with running.get_lock():
        running[a.index] -= 1


def claim_slots_and_count(root: str, count: int, per_gpu: int, slots: int, running: mp.Array, peaks: mp.Array
                          ) -> None:
    """A job of ``slots`` slots: claim, add them to its GPU's count and note the peak, hold a moment, leave."""
    a = gpu_slots.assign(None, count, per_gpu, NO_ENV, Path(root), poll_s=0.01, slots=slots)
    with running.get_lock():
        running[a.index] += slots
        peaks[a.index] = max(peaks[a.index], running[a.index])
    time.sleep(0.2)
    with running.get_lock():
        running[a.index] -= slots
    gpu_slots.release(a)
