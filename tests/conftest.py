"""Shared test fixtures: one CPU thread per test process, cuDNN's eval-mode rule for LSTMs on any device, the real
corpora at ../shared/data when present, and the quick pipeline run once; the tests that share a run stay on one
pytest-xdist worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from negtrain_core import config as ncfg

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)

@pytest.fixture(params=[{}, {"attention": "release", "decoder_init": "zero"}], ids=["general", "release_attention"])
def attention_kw(request) -> dict:
    """ModelSettings keywords of the seq2seq's two attention forms: the paper's, and the release's with its zero
    decoder start (configs/paper_levels.yaml's model)."""
    return request.param


_lstm_forward = torch.nn.LSTM.forward


def _lstm_forward_under_cudnn_rule(self: torch.nn.LSTM, *args, **kwargs):
    """``nn.LSTM.forward`` with cuDNN's rule on every device: a backward through an LSTM run in eval mode is refused
    unless cuDNN was off for its forward. cuDNN refuses it on a GPU ("cudnn RNN backward can only be called in
    training mode"); the CPU's kernels do not, so without this a search or training step that only fails on a GPU
    would pass the suite."""
    out = _lstm_forward(self, *args, **kwargs)
    if self.training or not torch.is_grad_enabled() or not torch.backends.cudnn.enabled:
        return out

    def refuse(grad: torch.Tensor) -> None:
        raise RuntimeError("cudnn RNN backward can only be called in training mode (cuDNN's rule, applied on the "
                           "CPU by tests/conftest.py)")

    output, (h, c) = out
    for t in (getattr(output, "data", output), h, c):
        if t.requires_grad:
            t.register_hook(refuse)
    return out


torch.nn.LSTM.forward = _lstm_forward_under_cudnn_rule


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real corpora not available: {SHARED_DATA} is absent (see README, 'Data')")
    return SHARED_DATA


QUICK_SMALL = ROOT / "tests" / "quick_small.yaml"   # the quick scale shrunk to a pipeline check
QUICK_SMALL_CONFIG = yaml.safe_load(QUICK_SMALL.read_text())["quick"]
QUICK_TINY = ROOT / "tests" / "quick_tiny.yaml"     # on top of it: smaller still, for runs that check only wiring
QUICK_MPS = ROOT / "tests" / "quick_mps.yaml"       # the golden run's MPS variables for three rules (speed only)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory holding one quick-scale run of the whole pipeline on chitchat (``rule all``: Tables 3, 4,
    8, 9, comparison, curves, rating sheet) with tests/quick_small.yaml and tests/quick_mps.yaml, the hit tests
    counted as two GPU slots, made once per test session and shared by the golden tests; the run's terminal output
    is kept in ``snakemake_output.txt``."""
    work = tmp_path_factory.mktemp("quick_run")
    env = {**os.environ, ncfg.READS_ENV: str(work / "settings_reads")}   # tests/test_caching.py reads them
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--set-resources", "hits:gpu_slots=2", "--configfile", str(QUICK_SMALL), str(QUICK_MPS),
           "--config", "scale=quick", "device=cpu"]
    run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=3600, env=env)
    if run.returncode:
        pytest.fail("quick pipeline failed:\n" + (run.stdout + run.stderr)[-4000:])
    (work / "snakemake_output.txt").write_text(run.stdout + run.stderr)
    return work


# Fixtures that build something once and are read by several tests: under pytest-xdist (the README's test command,
# `-n auto --dist loadgroup`) the tests that read one of them run on one worker, so that it is built once, and two
# SLURM clusters never run side by side on one host.
SHARED_BUILDS = ("quick_run", "small_run", "slurm_cluster")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks each reader of a shared build with its xdist group. First among the hooks: this conftest is loaded
    before xdist's worker plugin, whose hook (which writes the groups into the node ids) would otherwise run first
    and find none."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        for name in SHARED_BUILDS:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
                break
