"""GPU slots: which GPU each job of a one-host run takes, with fake device counts (no GPU needed): spreading and
the per-GPU share, CUDA_VISIBLE_DEVICES, explicit cuda:N and SLURM, several processes at once, a job killed with
SIGKILL, and what ``device.resolve`` and checkpoints make of it."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from negtrain_core import device, gpu_slots, stage
from negtrain_core.models import checkpoint
from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import Vocab
from negtrain_core.models.lstm import LSTMLM
from gpu_slot_jobs import claim_and_count, claim_and_hold, claim_slots_and_count

NO_ENV: dict[str, str] = {}


class Stop(Exception):
    """Raised by an ``on_wait`` to end a claim that would wait."""


def stop(line: str) -> None:
    raise Stop(line)


def held(path: Path) -> bool:
    """Whether some process (this one included, through another descriptor) holds ``path``'s slot."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@pytest.fixture
def claims():
    """Assignments made in this process, released after the test."""
    made: list[gpu_slots.Assignment] = []
    yield made
    for a in made:
        gpu_slots.release(a)


# ------------------------------------------------------------------------------------------------- in one process


def test_jobs_spread_over_the_gpus_before_doubling_up_and_never_exceed_the_share(tmp_path, claims):
    for _ in range(8):
        claims.append(gpu_slots.assign(None, 4, 2, NO_ENV, tmp_path, on_wait=stop))
    assert [a.index for a in claims] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert [a.how for a in claims] == ["slot 1 of 2"] * 4 + ["slot 2 of 2"] * 4
    assert len({a.locks for a in claims}) == 8 and all(len(a.locks) == 1 and held(a.locks[0]) for a in claims)
    with pytest.raises(Stop, match=r"all 8 GPU slots \(4 GPU\(s\) x gpu_jobs_per_device 2\) are held .*"
                                   rf"pid {os.getpid()} on .*gpu_slots=8 at most"):
        gpu_slots.assign(None, 4, 2, NO_ENV, tmp_path, on_wait=stop)
    gpu_slots.release(claims.pop(2))                                   # GPU 2's first job ends
    claims.append(gpu_slots.assign(None, 4, 2, NO_ENV, tmp_path, on_wait=stop))
    assert claims[-1].index == 2 and claims[-1].how == "slot 1 of 2"


def test_indices_are_within_the_visible_gpus_and_locks_named_by_physical_id(tmp_path, claims):
    env = {"CUDA_VISIBLE_DEVICES": "6, GPU-8f3c2a,2"}
    for _ in range(3):
        claims.append(gpu_slots.assign(None, 3, 1, env, tmp_path, on_wait=stop))
    assert [(a.index, a.physical) for a in claims] == [(0, "6"), (1, "GPU-8f3c2a"), (2, "2")]
    assert sorted(p.name for p in tmp_path.glob("gpu-*")) == ["gpu-2.slot0", "gpu-6.slot0", "gpu-GPU-8f3c2a.slot0"]
    # CUDA stops at an entry it cannot use (torch then counts fewer GPUs); unset, the ids are the indices
    assert gpu_slots.visible_gpus(2, {"CUDA_VISIBLE_DEVICES": "3,1,bogus,0"}) == ["3", "1"]
    assert gpu_slots.visible_gpus(3, NO_ENV) == ["0", "1", "2"]


def test_an_explicit_gpu_claims_nothing_and_must_be_visible(tmp_path, claims):
    env = {"CUDA_VISIBLE_DEVICES": "4,5"}
    claims.append(gpu_slots.assign(None, 2, 1, env, tmp_path, on_wait=stop))
    claims.append(gpu_slots.assign(None, 2, 1, env, tmp_path, on_wait=stop))    # every slot now held
    a = gpu_slots.assign(1, 2, 1, env, tmp_path, on_wait=stop)                   # no wait: cuda:1 asked for
    assert (a.index, a.physical, a.how, a.locks, a.fds) == (1, "5", "explicit", (), ())
    with pytest.raises(ValueError, match=r"^config 'device: cuda:2' but torch sees 2 GPU\(s\) "
                                         r"\(CUDA_VISIBLE_DEVICES=4,5\); use 'auto' or cuda:0 .. cuda:1"):
        gpu_slots.assign(2, 2, 1, env, tmp_path)


def test_a_slurm_job_uses_the_gpu_slurm_gave_it(tmp_path, claims):
    claims.append(gpu_slots.assign(None, 1, 1, NO_ENV, tmp_path, on_wait=stop))  # slot "0" held on this host
    slurm = {"SLURM_JOB_ID": "77", "CUDA_VISIBLE_DEVICES": "0"}
    assert gpu_slots.assign(None, 1, 1, slurm, tmp_path, on_wait=stop) == (0, "0", "slurm", (), ())
    # an allocation of several GPUs, shared by a one-host run inside it: claims of its own
    shared = {"SLURM_JOB_ID": "78", "CUDA_VISIBLE_DEVICES": "0,1"}
    claims.append(gpu_slots.assign(None, 2, 1, shared, tmp_path, on_wait=stop))
    assert claims[-1].index == 0 and claims[-1].locks[0].parent == tmp_path / "slurm-78"


def test_a_job_counted_as_several_slots_holds_them_on_one_gpu(tmp_path, claims):
    """``--set-resources RULE:gpu_slots=k``: k slots of one GPU, so fewer jobs run beside that job there."""
    claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop))             # 1 slot: GPU 0
    claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop, slots=2))    # GPU 1, 3 free
    assert (claims[-1].index, claims[-1].how) == (1, "slots 1,2 of 3") and all(map(held, claims[-1].locks))
    assert len(claims[-1].locks) == len(claims[-1].fds) == 2
    claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop))             # GPU 0 has 2 free
    assert [a.index for a in claims] == [0, 1, 0]
    gpu_slots.release(claims.pop(1))
    claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop, slots=3))    # a whole GPU
    assert (claims[-1].index, claims[-1].how) == (1, "slots 1,2,3 of 3")
    with pytest.raises(ValueError, match=r"a job takes 1 to gpu_jobs_per_device \(3\) slots of its GPU, not 4"):
        gpu_slots.claim(["0"], 3, tmp_path, slots=4)


def test_a_job_of_several_slots_reserves_a_gpu_and_new_jobs_go_elsewhere(tmp_path, claims):
    """Jobs spread over the GPUs leave none with k free: the job waits for the GPU with most free, holding each of
    its slots as it frees; a second such job reserves another GPU; the first gets its GPU when a job there ends."""
    a, b, c = (gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop) for _ in range(3))
    claims.extend([a, c])
    assert (a.index, b.index, c.index) == (0, 1, 0)                  # 1 slot free on GPU 0, 2 on GPU 1
    said: list[str] = []

    def meanwhile(line: str) -> None:                                 # while the whole-GPU job waits for GPU 1
        said.append(line)
        assert held(tmp_path / "gpu-1.slot1") and held(tmp_path / "gpu-1.slot2") and held(tmp_path / "gpu-1.reserve")
        claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop))         # GPU 1's free slots
        assert claims[-1].index == 0                                                          # are not free
        with pytest.raises(Stop, match=r"waits for GPU 0's, 0 of 2 free so far"):
            gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=stop, slots=2)
        assert not held(tmp_path / "gpu-0.reserve")                  # the stopped claim left no reservation
        gpu_slots.release(b)                                          # GPU 1's one job ends

    claims.append(gpu_slots.assign(None, 2, 3, NO_ENV, tmp_path, on_wait=meanwhile, poll_s=0.01, slots=3))
    assert (claims[-1].index, claims[-1].how) == (1, "slots 1,2,3 of 3")
    assert len(said) == 1 and said[0].startswith(
        "this job takes 3 slots of one GPU (its resource gpu_slots) and waits for GPU 1's, 2 of 3 free so far; new "
        f"jobs go to other GPUs (held now: pid {os.getpid()} on ")
    assert "(waiting for 3 slots)" in said[0] and not held(tmp_path / "gpu-1.reserve")


def test_jobs_of_one_and_of_several_slots_all_run_and_never_overfill_a_gpu(tmp_path):
    """More slots asked for than there are, at once, from separate processes: every job runs in the end (no job of
    several slots waits forever, none waits on another's reservation), and no GPU ever holds more than its slots."""
    ctx = mp.get_context("spawn")
    running, peaks = ctx.Array("i", 2), ctx.Array("i", 2)
    asks = [1, 2, 1, 1, 2, 1, 1, 2, 1, 1]
    jobs = [ctx.Process(target=claim_slots_and_count, args=(str(tmp_path), 2, 2, k, running, peaks)) for k in asks]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(120)
    assert [j.exitcode for j in jobs] == [0] * len(jobs)
    assert max(peaks[:]) == 2 and list(running[:]) == [0, 0]


@pytest.mark.parametrize("value, per_gpu, slots", [(None, 4, 1), ("2", 4, 2), ("6", 4, 4), ("3", 1, 1)])
def test_a_jobs_slots_are_its_resource_at_most_its_whole_gpu(value, per_gpu, slots):
    env = {} if value is None else {gpu_slots.JOB_SLOTS_ENV: value}
    assert gpu_slots.job_slots(per_gpu, env) == slots


@pytest.mark.parametrize("value, message", [("0", "is 0: a GPU job takes at least one slot"),
                                            ("two", "is 'two', not a whole number of GPU slots")])
def test_a_bad_slot_count_is_one_line(value, message):
    with pytest.raises(ValueError, match=f"^resource gpu_slots of this job {message}$"):
        gpu_slots.job_slots(4, {gpu_slots.JOB_SLOTS_ENV: value})


def test_a_job_passes_its_gpu_slots_resource_to_the_claim(monkeypatch):
    monkeypatch.setenv(gpu_slots.JOB_SLOTS_ENV, "stale")
    stage.set_slots(SimpleNamespace(rule="preprocess", resources=SimpleNamespace(threads=1)))    # a CPU rule
    assert gpu_slots.JOB_SLOTS_ENV not in os.environ
    stage.set_slots(SimpleNamespace(rule="hits", resources=SimpleNamespace(gpu_slots=3)))
    assert os.environ[gpu_slots.JOB_SLOTS_ENV] == "3"


# ----------------------------------------------------------------------------------------------- across processes


def test_a_claim_waits_while_another_job_holds_the_claim_lock(tmp_path, claims):
    """Claims are made one at a time: while the folder's ``.claim`` is held, a claim does not even look."""
    fd = os.open(tmp_path / ".claim", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    got: list[gpu_slots.Assignment] = []
    job = threading.Thread(target=lambda: got.append(gpu_slots.claim(["0"], 1, tmp_path, on_wait=stop)), daemon=True)
    try:
        job.start()
        job.join(0.5)
        assert job.is_alive() and not got
    finally:
        os.close(fd)                                               # the other job's claim is made
    job.join(30)
    claims.extend(got)
    assert not job.is_alive() and [a.physical for a in got] == ["0"]


def test_simultaneous_jobs_fill_every_gpu_to_its_share_and_no_further(tmp_path):
    ctx = mp.get_context("spawn")
    out, end = ctx.Queue(), ctx.Event()
    env = {"CUDA_VISIBLE_DEVICES": "1,3,5"}
    jobs = [ctx.Process(target=claim_and_hold, args=(str(tmp_path), 3, 2, env, out, end)) for _ in range(6)]
    for j in jobs:
        j.start()
    got = sorted(out.get(timeout=60)[1:] for _ in jobs)
    end.set()
    for j in jobs:
        j.join(60)
    assert got == [(0, "1"), (0, "1"), (1, "3"), (1, "3"), (2, "5"), (2, "5")]


def test_more_jobs_than_slots_never_put_more_than_the_share_on_a_gpu(tmp_path):
    ctx = mp.get_context("spawn")
    tally, running, peaks = ctx.Array("i", 2), ctx.Array("i", 2), ctx.Array("i", 2)
    jobs = [ctx.Process(target=claim_and_count, args=(str(tmp_path), 2, 2, 10, tally, running, peaks))
            for _ in range(10)]
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(120)
    assert [j.exitcode for j in jobs] == [0] * 10 and list(tally[:]) == [10, 10]
    assert list(peaks[:]) == [2, 2] and list(running[:]) == [0, 0]


def test_a_job_killed_with_sigkill_frees_its_slot_for_the_waiting_one(tmp_path, claims):
    ctx = mp.get_context("spawn")
    out, end = ctx.Queue(), ctx.Event()
    holder = ctx.Process(target=claim_and_hold, args=(str(tmp_path), 1, 1, NO_ENV, out, end))
    holder.start()
    pid, index, _ = out.get(timeout=60)
    told: list[str] = []

    def kill_holder(line: str) -> None:                                 # the waiting job's message, then the kill
        told.append(line)
        os.kill(pid, signal.SIGKILL)

    claims.append(gpu_slots.assign(None, 1, 1, NO_ENV, tmp_path, on_wait=kill_holder, poll_s=0.05))
    holder.join(60)
    assert holder.exitcode == -signal.SIGKILL and index == 0
    assert len(told) == 1 and f"pid {pid} on" in told[0] and claims[-1].index == 0
    assert (tmp_path / "gpu-0.slot0").read_text().startswith(f"pid {os.getpid()} on")


# ------------------------------------------------------------------------------------ device.resolve with fake GPUs


@pytest.fixture
def fake_gpus(monkeypatch, tmp_path):
    """torch sees 4 GPUs (CUDA_VISIBLE_DEVICES=4,5,6,7); what ``resolve`` asks of torch.cuda is recorded."""
    calls: list[tuple] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", torch.device(d).index)))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction",
                        lambda f, d=None: calls.append(("fraction", f, torch.device(d).index)))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: type("P", (), {"name": "Fake H200",
                                                                                    "uuid": f"GPU-fake-{i}"}))
    monkeypatch.setattr(device, "_assigned", None)
    yield calls
    if device._assigned is not None:
        gpu_slots.release(device._assigned)


def test_resolve_claims_one_gpu_per_process_and_records_it(fake_gpus, tmp_path, caplog):
    other = gpu_slots.assign(None, 4, 2, os.environ, tmp_path / gpu_slots.SLOTS_DIR)  # another job holds GPU 4
    try:
        with caplog.at_level("INFO", logger="negtrain_core.device"):
            assert device.resolve("auto", 2) == torch.device("cuda", 1)
        assert device.resolve("cuda", 2) == torch.device("cuda", 1)            # the same GPU for the whole job
        assert fake_gpus == [("set_device", 1), ("fraction", 0.5, 1)] * 2
        assert held(tmp_path / ".negtrain/gpu_slots/gpu-5.slot0")
        assert "GPU job on cuda:1: GPU 5 (Fake H200, GPU-fake-1), slot 1 of 2" in caplog.text
        assert device.describe(torch.device("cuda", 1)) == {"type": "cuda", "index": 1, "physical": "5",
                                                           "assigned": "slot 1 of 2", "name": "Fake H200",
                                                           "uuid": "GPU-fake-1"}
    finally:
        gpu_slots.release(other)


def test_resolve_takes_the_jobs_slots_and_their_share_of_memory(fake_gpus, tmp_path, monkeypatch, caplog):
    other = gpu_slots.assign(None, 4, 4, os.environ, tmp_path / gpu_slots.SLOTS_DIR)  # another job holds GPU 4
    monkeypatch.setenv(gpu_slots.JOB_SLOTS_ENV, "2")
    try:
        with caplog.at_level("INFO", logger="negtrain_core.device"):
            assert device.resolve("auto", 4) == torch.device("cuda", 1)
        assert fake_gpus == [("set_device", 1), ("fraction", 0.5, 1)]
        assert held(tmp_path / ".negtrain/gpu_slots/gpu-5.slot0") and held(tmp_path / ".negtrain/gpu_slots/gpu-5.slot1")
        assert "GPU job on cuda:1: GPU 5 (Fake H200, GPU-fake-1), slots 1,2 of 4" in caplog.text
    finally:
        gpu_slots.release(other)


def test_a_job_counted_as_a_whole_gpu_may_use_all_its_memory(fake_gpus, monkeypatch):
    monkeypatch.setenv(gpu_slots.JOB_SLOTS_ENV, "5")
    assert device.resolve("auto", 2) == torch.device("cuda", 0)
    assert fake_gpus == [("set_device", 0)] and device._assigned.how == "slots 1,2 of 2"


def test_resolve_takes_an_explicit_gpu_and_cpu_without_a_claim(fake_gpus, tmp_path):
    assert device.resolve("cuda:3", 4) == torch.device("cuda", 3)
    assert device.resolve("cpu", 4) == torch.device("cpu")
    assert fake_gpus == [("set_device", 3), ("fraction", 0.25, 3)]
    assert not (tmp_path / ".negtrain").exists()
    assert device.describe(torch.device("cuda", 3))["physical"] == "7"


def test_a_cpu_only_torch_needs_no_slot(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve("auto", 2) == torch.device("cpu") and not (tmp_path / ".negtrain").exists()
    with pytest.raises(RuntimeError, match="asks for a GPU but torch sees none"):
        device.resolve("cuda", 1)


def test_a_checkpoint_records_its_device_and_old_files_still_load(tmp_path):
    vocab = Vocab.build([["a", "b", "c"]], 3)
    model = LSTMLM(ModelSettings(vocab_size=len(vocab), embedding_dim=4, hidden_dim=6, attention="release"))
    checkpoint.save(tmp_path / "lm.pt", model, kind="lm", vocab=vocab)
    payload = checkpoint.read(tmp_path / "lm.pt")
    assert payload["device"] == {"type": "cpu"}
    del payload["device"]                                               # a file written before the field
    (tmp_path / "old.pt").write_bytes(checkpoint.serialise(payload))
    assert "device" not in checkpoint.load(tmp_path / "old.pt", vocab).meta


MPS = {"below_normal": ["hits", "train_gan_lr"],
       "active_thread_percentage": {"hits": 50, "negtrain_frequent": 80, "negtrain_frequent_switchboard_1": 90}}


@pytest.mark.parametrize("rule, env", [
    ("hits", {gpu_slots.MPS_PRIORITY_ENV: "1", gpu_slots.MPS_SHARE_ENV: "50"}),
    ("train_gan_lr", {gpu_slots.MPS_PRIORITY_ENV: "1"}),
    ("negtrain_frequent_switchboard_1", {gpu_slots.MPS_SHARE_ENV: "90"}),              # its own name before the base
    ("negtrain_frequent_switchboard_0", {gpu_slots.MPS_SHARE_ENV: "80"}),              # the base name
    ("evaluate_model", {}),                                                            # named nowhere: MPS's defaults
])
def test_mps_settings_follow_the_rule_by_its_own_or_its_base_name(rule, env):
    assert gpu_slots.mps_environment(rule, MPS) == env
    assert gpu_slots.mps_environment(rule, {"below_normal": [], "active_thread_percentage": {}}) == {}


def test_the_quick_runs_hit_tests_took_the_gpu_slots_snakemake_counted_them_as(quick_run):
    """``--set-resources hits:gpu_slots=2`` (tests/conftest.py) reaches the jobs through ``snakemake.resources``;
    the other rules' jobs keep one slot and say nothing."""
    logs = {p.name: p.read_text() for p in (quick_run / "logs" / "chitchat").glob("*.log")}
    said = {name for name, text in logs.items() if "counts as 2 GPU slots" in text}
    assert said and said == {name for name in logs if name.startswith("hits_")}, sorted(said)
    assert not any("GPU slots:" in text for name, text in logs.items() if name not in said)


def test_the_quick_runs_jobs_took_the_mps_variables_of_their_rule(quick_run):
    """tests/quick_mps.yaml reaches real Snakemake jobs through ``snakemake.config`` and ``snakemake.rule``: the
    baselines and hit tests below normal, Algorithm 2 (per-dataset rules, named by their base) at 60% of the SMs,
    every other job as MPS leaves it."""
    logs = {p.name: p.read_text() for p in (quick_run / "logs" / "chitchat").glob("*.log")}
    said = {name for name, text in logs.items() if "under NVIDIA MPS" in text}
    frequent = {name for name in logs if name.startswith("freq-")}
    hits = {name for name in logs if name.startswith("hits_")}
    assert frequent and hits
    assert said == {"train_lm.log", "train_seq2seq.log"} | frequent | hits, sorted(said)
    for name in frequent:
        assert "under NVIDIA MPS: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=60\n" in logs[name]
    for name in {"train_lm.log", "train_seq2seq.log"} | hits:
        assert "under NVIDIA MPS: CUDA_MPS_CLIENT_PRIORITY=1\n" in logs[name]
