"""Shared test fixtures: one CPU thread per test process, and the workplace's real corpora when present."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real corpora not available: {SHARED_DATA} is absent (see README, 'Data')")
    return SHARED_DATA
