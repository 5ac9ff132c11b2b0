"""Profiles: profiles/local bounds GPU jobs with gpu_slots; profiles/slurm sends the pipeline through a real cluster.

The SLURM test starts a single-node cluster with two fake GPUs (.ci/slurm_up.sh, which installs Debian's slurm-wlm
and munge when missing), runs a quick-scale pipeline target plus probe jobs (tests/fixtures/profiles/Snakefile)
through `--profile profiles/slurm`, checks SLURM's own records of those jobs, and stops the daemons by PID
(.ci/slurm_down.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from snakemake_cli import ROOT, snakemake

PROBE = ROOT / "tests" / "fixtures" / "profiles" / "Snakefile"
SMALL_JOBS = {"resources": {  # what the 2-core test node can hold side by side
    "gpu": {"partition": "gpu", "gres": "gpu:1", "runtime_min": 10, "mem_mb": 500, "cpus": 1},
    "cpu": {"partition": "debug", "runtime_min": 10, "mem_mb": 500, "cpus": 1},
}}


def probe_record(path: Path) -> tuple[float, float, str, str]:
    """(start, end, CUDA_VISIBLE_DEVICES or '-', SLURM_JOB_ID or '-') written by a probe job."""
    t0, t1, gpu, job = path.read_text().split()
    return float(t0), float(t1), gpu, job


def test_local_profile_runs_gpu_jobs_one_at_a_time(tmp_path: Path) -> None:
    """gpu_slots=1 in profiles/local: two ready GPU jobs on two cores still never overlap."""
    run = snakemake(tmp_path, "--profile", str(ROOT / "profiles" / "local"), "--cores", "2",
                    "probe/gpu1.txt", "probe/gpu2.txt", snakefile=PROBE)
    assert run.returncode == 0, run.stderr
    first, second = sorted(probe_record(tmp_path / f"probe/gpu{i}.txt")[:2] for i in (1, 2))
    assert first[1] <= second[0]


def test_local_profile_shows_a_failed_job_in_its_one_line_not_its_log(tmp_path: Path) -> None:
    """Under profiles/local a job's stderr reaches the terminal: its one line shows there, and the rule log with
    its traceback (and a training job's progress) is not printed after it."""
    bad = tmp_path / "targets.txt"
    bad.write_text("i hate you\n\nyou are bad\n")
    overlay = tmp_path / "targets.yaml"
    overlay.write_text(yaml.safe_dump({"targets": {"train": str(bad)}}))
    run = snakemake(tmp_path, "--profile", str(ROOT / "profiles" / "local"), "--config", "scale=quick", "--",
                    "results/targets/train_0.5k.txt", overlays=[overlay])
    assert run.returncode == 1
    out = run.stdout + run.stderr
    assert f"negtrain: {bad}:2: empty target line" in out and "Traceback" not in out, out[-3000:]


SLURM_COMMANDS = ("sbatch", "sinfo", "squeue", "sacct", "scancel", "scontrol", "srun")


def bin_without_slurm(tmp_path: Path) -> Path:
    """A folder of links to every command on PATH but SLURM's (a machine without SLURM)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        for cmd in sorted(Path(d).iterdir()) if Path(d).is_dir() else ():
            if cmd.name not in SLURM_COMMANDS and not os.path.lexists(folder / cmd.name):
                (folder / cmd.name).symlink_to(cmd)
    return folder


def slurm_profile_run(tmp_path: Path, path: str) -> subprocess.CompletedProcess[str]:
    return snakemake(tmp_path, "--profile", str(ROOT / "profiles" / "slurm"), "--config", "scale=quick", "--",
                     "results/targets/train_0.5k.txt", env={**os.environ, "PATH": path}, timeout=120)


def test_slurm_profile_without_slurm_stops_in_one_line(tmp_path: Path) -> None:
    """Where sbatch is not installed, the slurm profile stops before any submission with one line on where to run it,
    not the plugin's error per job; nothing is written and the lock is released."""
    run = slurm_profile_run(tmp_path, str(bin_without_slurm(tmp_path)))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "negtrain: the slurm executor (profiles/slurm) needs SLURM's commands, and sbatch is not on PATH: run it on "
        "the cluster's login node, or run here with --profile profiles/local")
    assert not (tmp_path / "results").exists() and not any((tmp_path / ".snakemake" / "locks").glob("*"))


def test_slurm_profile_without_a_controller_stops_in_one_line(tmp_path: Path) -> None:
    """SLURM's commands installed but no controller configured (sinfo fails): one line with sinfo's reason."""
    fake = tmp_path / "fake_slurm"
    fake.mkdir()
    for cmd in SLURM_COMMANDS:
        (fake / cmd).write_text("#!/bin/sh\necho 'sinfo: error: resolve_ctls_from_dns_srv: res_nsearch error' >&2\n"
                                "echo 'sinfo: fatal: Could not establish a configuration source' >&2\nexit 1\n")
        (fake / cmd).chmod(0o755)
    run = slurm_profile_run(tmp_path, f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "negtrain: the slurm executor (profiles/slurm) cannot reach a SLURM controller from here (sinfo: fatal: Could "
        "not establish a configuration source): run it on the cluster's login node, or run here with --profile "
        "profiles/local")
    assert not (tmp_path / "results").exists()


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        installed = "installed" if shutil.which("slurmctld") else "not installed"
        return (f"needs root: .ci/slurm_up.sh installs slurm-wlm and munge when missing (slurmctld is {installed}) "
                f"and starts munged, slurmctld and slurmd")
    return None


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running single-node cluster (state directory), stopped by PID at the end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    state = Path(tempfile.mkdtemp(prefix="negtrain-slurm-"))  # not under pytest's private tmp: munged must reach it
    try:
        up = subprocess.run([ROOT / ".ci" / "slurm_up.sh", state], capture_output=True, text=True, timeout=600)
        if up.returncode and not shutil.which("slurmctld"):   # .ci/run installs it first and fails if it cannot
            pytest.skip("slurm-wlm could not be installed with apt-get (no package archive reachable?)")
        assert up.returncode == 0, f"slurm_up.sh failed:\n{up.stdout}\n{up.stderr}"
        yield state
    finally:
        subprocess.run([ROOT / ".ci" / "slurm_down.sh", state], capture_output=True, text=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def slurm_jobs(workdir: Path) -> dict[str, dict[str, str]]:
    """SLURM's records (`scontrol show job`, kept MinJobAge=600 s) of the jobs run from ``workdir``, by Comment."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True).stdout
    jobs = [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in out.splitlines() if line.strip()]
    return {job["Comment"]: job for job in jobs if job.get("WorkDir") == str(workdir)}


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_profile_runs_pipeline_through_slurm(tmp_path: Path, slurm_cluster: Path) -> None:
    overlay = tmp_path / "small_jobs.yaml"
    overlay.write_text(yaml.safe_dump(SMALL_JOBS))
    run = snakemake(tmp_path, "--profile", str(ROOT / "profiles" / "slurm"), "--config", "scale=quick",
                    "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
                    "--", "results/chitchat/data/stats.csv", "probes",
                    overlays=[overlay], snakefile=PROBE, timeout=540)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    jobs = slurm_jobs(tmp_path)
    expected = {"rule_preprocess_wildcards_chitchat": "debug", "rule_cpu_probe": "debug",
                "rule_gpu_probe_wildcards_1": "gpu", "rule_gpu_probe_wildcards_2": "gpu"}
    assert {c: (j["Partition"], j["JobState"], j["ExitCode"]) for c, j in jobs.items()} == {
        c: (p, "COMPLETED", "0:0") for c, p in expected.items()}
    assert {c: jobs[c].get("TresPerNode") for c in expected} == {
        c: "gres:gpu:1" if p == "gpu" else None for c, p in expected.items()}

    records = {name: probe_record(tmp_path / f"probe/{name}.txt") for name in ("gpu1", "gpu2", "cpu")}
    assert records["gpu1"][3] == jobs["rule_gpu_probe_wildcards_1"]["JobId"]   # ran inside that SLURM job
    assert records["cpu"][3] == jobs["rule_cpu_probe"]["JobId"]
    assert {records["gpu1"][2], records["gpu2"][2]} <= {"0", "1"} and records["cpu"][2] == "-"

    completed = (slurm_cluster / "jobcomp.log").read_text()    # SLURM's job-completion log, one line per job
    for job in jobs.values():
        assert f"JobId={job['JobId']} " in completed
    stats = pd.read_csv(tmp_path / "results/chitchat/data/stats.csv")
    assert list(stats["split"]) == ["train", "valid", "test"] and set(stats["scale"]) == {"quick"}
