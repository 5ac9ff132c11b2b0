"""The quick pipeline on a GPU, under the default config, the release preset, the Transformer and configs/fast.yaml.

The rest of the suite runs on the CPU, where cuDNN's RNNs, CUDA graphs, the fused Triton kernel, half-precision
scoring and the GPU slots are never reached. A failure that only the GPU path has (e.g. cuDNN's RNN backward, which
refuses eval mode, in the release preset's search) fails here. Skipped without CUDA; on a GPU host:
    python -m pytest tests/test_gpu_pipeline.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from snakemake_cli import quick_pipeline

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the CPU suite runs the same pipeline on "
                                                          "the CPU)")
@pytest.mark.parametrize("variant", ["default", "release", "transformer", "fast"])
def test_quick_pipeline_on_cuda(tmp_path: Path, variant: str) -> None:
    overlay = {"default": None, "release": ROOT / "configs" / "release.yaml",
               "transformer": tmp_path / "transformer.yaml", "fast": ROOT / "configs" / "fast.yaml"}[variant]
    if variant == "transformer":
        overlay.write_text(yaml.safe_dump({"model": {"arch": "transformer"}}))
    results = quick_pipeline(tmp_path, overlay, device="cuda")
    table3 = pd.read_csv(results / "table3.csv").set_index("training")
    assert table3.loc["+neg-tr(0.5k)", "status"] == "ok"
    assert "GPU job on cuda" in (tmp_path / "logs" / "chitchat" / "train_seq2seq.log").read_text()
