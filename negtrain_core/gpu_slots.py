"""Which GPU a job runs on when several GPU jobs share the GPUs of one host.

Snakemake bounds how many GPU jobs run at once (``--resources gpu_slots=N``, profiles/local) but not where: every job
would otherwise take ``cuda``, the first visible GPU. So each job claims a slot: GPU ``g`` has ``jobs_per_device``
slots (config ``gpu_jobs_per_device``), each a lock file ``.negtrain/gpu_slots/gpu-<id>.slot<k>`` in the working
directory, held with ``fcntl.flock`` by the job's process until it ends. The kernel drops the lock when the process
exits however it exits (``kill -9``, the OOM killer included), so no slot outlives its job and nothing needs cleaning
up. A claim takes a free slot of the GPU with the most free slots (the lowest index on a tie): 8 jobs on 4 GPUs with 2
slots each put one job on every GPU before a second on any. Claims are made one at a time (``.claim``, another flock),
so the choice is consistent; two jobs can never hold one slot, so no GPU ever runs more than ``jobs_per_device`` jobs.

When every slot is held (more jobs run than slots: ``gpu_slots`` set above GPUs x ``gpu_jobs_per_device``), the job
waits for a slot, after telling the user once (``on_wait``). It does not squeeze onto the least-loaded GPU: each job
may use 1/``jobs_per_device`` of its GPU's memory, and one job too many on a GPU could leave a neighbour out of memory.

A job that Snakemake counts as k slots (``--set-resources RULE:gpu_slots=k``; ``JOB_SLOTS_ENV`` carries k into the
job) holds k slots of one GPU, at most all of them, so that fewer jobs run beside it there, and may use k of its
GPU's ``jobs_per_device`` shares of memory. Where no GPU has k free (jobs spread over the GPUs), it reserves the GPU
with the most free slots and keeps each slot there as it frees, so that new jobs go elsewhere, until it has k: it
waits only for jobs that run, and two such jobs never wait for one GPU.

GPUs are named by their physical id, the entry of ``CUDA_VISIBLE_DEVICES`` (a number or a ``GPU-``/``MIG-`` UUID;
the visible index itself when it is unset); torch's ``cuda:<index>`` is the index within the visible ones. Not
claimed: an explicit ``cuda:N`` (the user chose), and a SLURM job that SLURM gave one GPU (SLURM_JOB_ID and
CUDA_VISIBLE_DEVICES set: the GPU is the job's alone; SLURM's numbering is per job, so claims by jobs on other GPUs
or nodes would clash). A SLURM allocation of several GPUs, shared by the jobs of a one-host run inside it, claims in
a folder of its own (``slurm-<job id>``).

Under NVIDIA MPS the jobs sharing a GPU also share its SMs, all at one priority by default. ``mps_environment``
gives the variables through which config ``mps`` sets a job's MPS client priority and share of the SMs by its rule,
so that the longest chain of a run (Algorithm 2) need not wait on the others' kernels.

No torch here: the device count is given, so tests run this with any count on a CPU.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

SLOTS_DIR = Path(".negtrain") / "gpu_slots"     # relative to the job's working directory (Snakemake's workdir)
POLL_S = 2.0                                    # how often a waiting job looks for a free slot
# NVIDIA MPS reads these when a process creates its CUDA context (docs.nvidia.com/deploy/mps, "Environment Variables")
MPS_PRIORITY_ENV = "CUDA_MPS_CLIENT_PRIORITY"               # 0 normal, 1 below normal: work scheduled after others'
MPS_SHARE_ENV = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"        # at most this % of the GPU's SMs for the process
JOB_SLOTS_ENV = "NEGTRAIN_GPU_SLOTS"                        # the slots Snakemake counts this job as (stage.main)


class Assignment(NamedTuple):
    """The GPU of one job: torch's ``cuda:<index>``, its physical id, and how it was chosen."""

    index: int                  # among the visible GPUs
    physical: str               # as CUDA_VISIBLE_DEVICES names it (the index when unset)
    how: str                    # "explicit" (device: cuda:N) | "slurm" (SLURM's GPU for the job) | "slot <k> of <n>"
                                # | "slots <k>,<l> of <n>" (a job counted as several)
    locks: tuple[Path, ...] = ()    # the slots' lock files, held by this process (empty: nothing claimed)
    fds: tuple[int, ...] = ()       # their open descriptors, which hold the locks until the process ends


def visible_gpus(count: int, env: Mapping[str, str] = os.environ) -> list[str]:
    """The physical ids of ``cuda:0 .. cuda:count-1``: the first ``count`` entries of CUDA_VISIBLE_DEVICES (CUDA
    drops an entry it cannot use and every one after it, so ``count`` may be shorter), or ``0 .. count-1``."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    ids = [p.strip() for p in listed.split(",")] if listed is not None else []
    return [ids[i] if i < len(ids) and ids[i] else str(i) for i in range(count)]


def slurm_job_gpu(count: int, env: Mapping[str, str] = os.environ) -> bool:
    """True inside a SLURM job that SLURM gave exactly one visible GPU."""
    return bool(env.get("SLURM_JOB_ID")) and env.get("CUDA_VISIBLE_DEVICES") is not None and count == 1


def slots_dir(root: Path = SLOTS_DIR, env: Mapping[str, str] = os.environ) -> Path:
    """Where this job's claims live: ``root``, or ``root/slurm-<id>`` inside a SLURM allocation."""
    job = env.get("SLURM_JOB_ID")
    return root / f"slurm-{_safe(job)}" if job and env.get("CUDA_VISIBLE_DEVICES") is not None else root


def assign(index: int | None, count: int, jobs_per_device: int, env: Mapping[str, str] = os.environ,
           root: Path = SLOTS_DIR, on_wait: Callable[[str], None] | None = None,
           poll_s: float = POLL_S, slots: int = 1) -> Assignment:
    """The GPU for this job among ``count`` visible ones. ``index``: the N of ``device: cuda:N`` (None for ``auto``
    or ``cuda``: claim ``slots`` slots of one GPU (``job_slots``), waiting while no GPU has them free; ``on_wait``
    gets one line the first time)."""
    gpus = visible_gpus(count, env)
    if index is not None:
        if not 0 <= index < count:
            shown = env.get("CUDA_VISIBLE_DEVICES")
            raise ValueError(f"config 'device: cuda:{index}' but torch sees {count} GPU(s)"
                             f"{'' if shown is None else f' (CUDA_VISIBLE_DEVICES={shown})'}; use 'auto' or "
                             f"cuda:0 .. cuda:{count - 1} (the index among the visible GPUs)")
        return Assignment(index, gpus[index], "explicit")
    if slurm_job_gpu(count, env):
        return Assignment(0, gpus[0], "slurm")
    return claim(gpus, jobs_per_device, slots_dir(root, env), on_wait, poll_s, slots)


def claim(gpus: Sequence[str], jobs_per_device: int, folder: Path,
          on_wait: Callable[[str], None] | None = None, poll_s: float = POLL_S, slots: int = 1) -> Assignment:
    """Hold ``slots`` free slots of the least-loaded GPU of ``gpus`` (physical ids by visible index) that has them
    until this process ends (or ``release``); while none has, say so once through ``on_wait`` and look again every
    ``poll_s``. A job of several slots that finds no GPU with them free reserves one (``_Reservation``)."""
    if not 1 <= slots <= jobs_per_device:
        raise ValueError(f"a job takes 1 to gpu_jobs_per_device ({jobs_per_device}) slots of its GPU, not {slots}")
    folder.mkdir(parents=True, exist_ok=True)
    told = False
    reservation: _Reservation | None = None
    while True:
        try:
            with _locked(folder / ".claim"):
                if reservation is None:
                    got, reservation = _try_claim(gpus, jobs_per_device, folder, slots)
                else:
                    got = reservation.fill(folder, jobs_per_device)
            if got is not None:
                return got
            if on_wait is not None and not told:
                told = True
                _say_wait(on_wait, gpus, jobs_per_device, folder, slots, reservation)
            time.sleep(poll_s)
        except BaseException:                           # Ctrl-C, an on_wait that raises: no reservation left behind
            if reservation is not None:
                reservation.drop()
            raise


def _say_wait(on_wait: Callable[[str], None], gpus: Sequence[str], jobs_per_device: int, folder: Path, slots: int,
              reservation: _Reservation | None) -> None:
    """The one line a waiting job says: whose jobs hold the slots, and what it waits for."""
    holders = ", ".join(sorted({h for h in map(_holder, _slot_paths(gpus, jobs_per_device, folder)) if h}))
    total = len(gpus) * jobs_per_device
    if slots == 1:
        on_wait(f"all {total} GPU slots ({len(gpus)} GPU(s) x gpu_jobs_per_device {jobs_per_device}) are held by "
                f"other jobs ({holders or 'unknown'}; {folder}), so this job waits for one -- more GPU jobs run than "
                f"slots: give --resources gpu_slots={total} at most (profiles/local)")
    elif reservation is not None:                       # the jobs on that GPU end in time: nothing to change
        on_wait(f"this job takes {slots} slots of one GPU (its resource gpu_slots) and waits for GPU "
                f"{reservation.gpu}'s, {len(reservation.held)} of {slots} free so far; new jobs go to other GPUs "
                f"(held now: {holders or 'unknown'}; {folder})")
    else:
        on_wait(f"this job takes {slots} slots of one GPU (its resource gpu_slots) and waits until a GPU has them "
                f"free, each GPU being reserved by another such job (held now: {holders or 'unknown'}; {folder})")


def job_slots(jobs_per_device: int, env: Mapping[str, str] = os.environ) -> int:
    """How many slots of its GPU this job takes: the ``gpu_slots`` Snakemake counts it as (``JOB_SLOTS_ENV``, set by
    ``stage.main``; 1 when unset), at most ``jobs_per_device`` (the whole GPU)."""
    raw = env.get(JOB_SLOTS_ENV, "1")
    try:
        asked = int(raw)
    except ValueError:
        raise ValueError(f"resource gpu_slots of this job is '{raw}', not a whole number of GPU slots") from None
    if asked < 1:
        raise ValueError(f"resource gpu_slots of this job is {asked}: a GPU job takes at least one slot")
    return min(asked, jobs_per_device)


def release(a: Assignment) -> None:
    """Give the slots back before the process ends (tests; a job simply exits)."""
    for fd in a.fds:
        os.close(fd)


def _try_claim(gpus: Sequence[str], jobs_per_device: int, folder: Path, slots: int = 1
               ) -> tuple[Assignment | None, _Reservation | None]:
    """One look, under the folder's claim lock: lock every free slot, keep ``slots`` of the GPU with most (among
    those with that many), free the rest. A job of several slots that none has room for reserves the GPU with the
    most free slots that no other job has reserved and keeps its free slots."""
    free: dict[int, list[tuple[int, int]]] = {}             # visible index -> [(slot, fd)] locked just now
    for i, gpu in enumerate(gpus):
        for k in range(jobs_per_device):
            fd = _try_lock(_slot_path(folder, gpu, k))
            if fd is not None:
                free.setdefault(i, []).append((k, fd))
    fits = [i for i in free if len(free[i]) >= slots]
    got, reservation, kept = None, None, []
    if fits:
        best = max(fits, key=lambda i: (len(free[i]), -i))
        kept = free[best][:slots]
        got = _assignment(best, gpus[best], kept, jobs_per_device, folder)
    elif slots > 1:
        for i in sorted(range(len(gpus)), key=lambda i: (-len(free.get(i, [])), i)):
            fd = _try_lock(_reserve_path(folder, gpus[i]))
            if fd is not None:
                kept = free.get(i, [])
                reservation = _Reservation(i, gpus[i], slots, fd, list(kept))
                _mark(kept, f"waiting for {slots} slots")
                break
    for _, fd in [pair for i in free for pair in free[i] if pair not in kept]:
        os.close(fd)
    return got, reservation


class _Reservation:
    """A job of ``slots`` slots waiting for GPU ``index``: it holds the GPU's reserve lock, so that no other such
    job waits for the same GPU, and every slot of it that frees, so that no new job takes them (they go to other
    GPUs, which Snakemake's gpu_slots bound leaves room on) until it has ``slots``. It waits only for jobs that run."""

    def __init__(self, index: int, gpu: str, slots: int, fd: int, held: list[tuple[int, int]]):
        self.index, self.gpu, self.slots, self.fd, self.held = index, gpu, slots, fd, held

    def fill(self, folder: Path, jobs_per_device: int) -> Assignment | None:
        """Under the claim lock: lock the GPU's slots freed since; with ``slots`` of them, the job's assignment."""
        have = {k for k, _ in self.held}
        for k in range(jobs_per_device):
            if k not in have:
                fd = _try_lock(_slot_path(folder, self.gpu, k))
                if fd is not None:
                    self.held.append((k, fd))
                    _mark([(k, fd)], f"waiting for {self.slots} slots")
        if len(self.held) < self.slots:
            return None
        kept = sorted(self.held)[: self.slots]
        self.held = [pair for pair in self.held if pair not in kept]
        self.drop()
        return _assignment(self.index, self.gpu, kept, jobs_per_device, folder)

    def drop(self) -> None:
        """Free the reserve lock and the slots held beyond the job's own (once: later calls do nothing)."""
        for _, fd in self.held:
            os.close(fd)
        if self.fd >= 0:
            os.close(self.fd)
        self.held, self.fd = [], -1


def _assignment(index: int, gpu: str, kept: list[tuple[int, int]], jobs_per_device: int, folder: Path) -> Assignment:
    """The job's assignment to the slots ``kept`` ((slot, fd) pairs it holds) of GPU ``index``, their files marked."""
    kept = sorted(kept)
    _mark(kept)
    numbers = ",".join(str(k + 1) for k, _ in kept)
    how = f"slot{'s' if len(kept) > 1 else ''} {numbers} of {jobs_per_device}"
    return Assignment(index, gpu, how, tuple(_slot_path(folder, gpu, k) for k, _ in kept), tuple(fd for _, fd in kept))


def _mark(held: list[tuple[int, int]], note: str = "") -> None:
    """Write the holder ("pid N on host", and a note) into each held slot's file, for a waiting job to name."""
    text = f"pid {os.getpid()} on {socket.gethostname()}{f' ({note})' if note else ''}\n".encode()
    for _, fd in held:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding ``path``'s exclusive flock, or None when another holds it. Opened afresh, so a
    slot held by this same process through another descriptor counts as held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)            # not inherited by programs the job starts
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _slot_path(folder: Path, gpu: str, k: int) -> Path:
    return folder / f"gpu-{_safe(gpu)}.slot{k}"


def _reserve_path(folder: Path, gpu: str) -> Path:
    return folder / f"gpu-{_safe(gpu)}.reserve"


def _slot_paths(gpus: Sequence[str], jobs_per_device: int, folder: Path) -> list[Path]:
    return [_slot_path(folder, g, k) for g in gpus for k in range(jobs_per_device)]


def _holder(path: Path) -> str:
    """What the holder of ``path`` wrote into it ("pid N on host"), '' when unreadable."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _safe(name: str) -> str:
    """``name`` as one file-name component (an old-style MIG id holds slashes)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def rule_base(rule: str) -> str:
    """A rule's name as config ``mps`` names it: Algorithm 2's rules, one per dataset and job
    (``negtrain_frequent_<dataset>[_<i>]``), also answer to ``negtrain_frequent``."""
    return "negtrain_frequent" if rule.startswith("negtrain_frequent_") else rule


def mps_environment(rule: str, mps: Mapping[str, object]) -> dict[str, str]:
    """The MPS variables for a job of ``rule`` from config ``mps`` (``below_normal``: rules whose kernels MPS runs
    after the other jobs'; ``active_thread_percentage``: rule -> the % of the SMs its jobs may use), each rule named
    as Snakemake names it or by ``rule_base``. Empty for a rule named in neither. Without MPS they do nothing."""
    names = (rule, rule_base(rule))                         # its own name first
    env: dict[str, str] = {}
    if set(names) & set(mps.get("below_normal") or ()):
        env[MPS_PRIORITY_ENV] = "1"
    shares = mps.get("active_thread_percentage") or {}
    share = next((shares[n] for n in names if n in shares), None)
    if share is not None:
        env[MPS_SHARE_ENV] = str(int(share))
    return env
