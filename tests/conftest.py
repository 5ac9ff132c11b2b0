"""Shared test fixtures: one CPU thread per test process, and the workplace's real corpora when present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real corpora not available: {SHARED_DATA} is absent (see README, 'Data')")
    return SHARED_DATA


QUICK_SMALL = ROOT / "tests" / "quick_small.yaml"   # the quick scale shrunk to a pipeline check
QUICK_SMALL_CONFIG = yaml.safe_load(QUICK_SMALL.read_text())["quick"]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory holding one quick-scale run of the whole pipeline on chitchat (``rule all``: Tables 3, 4,
    8, 9, comparison, curves, rating sheet) with tests/quick_small.yaml, made once per test session and shared by
    the golden tests; the run's terminal output is kept in ``snakemake_output.txt``."""
    work = tmp_path_factory.mktemp("quick_run")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--configfile", str(QUICK_SMALL), "--config", "scale=quick", "device=cpu"]
    run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=3600)
    if run.returncode:
        pytest.fail("quick pipeline failed:\n" + (run.stdout + run.stderr)[-4000:])
    (work / "snakemake_output.txt").write_text(run.stdout + run.stderr)
    return work
