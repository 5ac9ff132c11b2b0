"""The baselines' test perplexity and NLL (Table 8) and the hit thresholds (paper App. C).

Perplexity and NLL are per word with ``</s>`` counted (paper §2 footnote 1), pooled over all test tokens (the
teacher-forced scoring of models.scoring). The hit thresholds are the models' mean per-word log-likelihood on the
test references, i.e. ``-NLL``
(docs/release.md#hit-criteria: Switchboard -3.7569 / LM -3.7927, the NLLs of Table 8).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from negtrain_core.models import checkpoint, scoring
from negtrain_core.config import Settings
from negtrain_core.data.tensors import tensorize
from negtrain_core.device import resolve
from negtrain_core.io import atomic_write_text, write_csv
from negtrain_core.data.vocab import Vocab

log = logging.getLogger(__name__)

# Table 8 of the paper: test PPL (NLL) of the baselines.
PAPER_TABLE8: dict[str, dict[str, tuple[float, float]]] = {
    "ubuntu": {"LM": (66.29, 4.19), "Seq2seq": (59.49, 4.08)},
    "switchboard": {"LM": (44.37, 3.79), "Seq2seq": (42.81, 3.75)},
    "opensubtitles": {"LM": (74.74, 4.31), "Seq2seq": (70.81, 4.26)},
}


def table8(nll: dict[str, float], dataset: str, scale: str) -> pd.DataFrame:
    """Rows LM, Seq2seq: test_ppl, test_nll beside the paper's (NaN where the paper has no such dataset)."""
    paper = PAPER_TABLE8.get(dataset, {})
    rows = [{"model": m, "test_ppl": math.exp(v), "test_nll": v,
             "paper_ppl": paper.get(m, (math.nan, math.nan))[0], "paper_nll": paper.get(m, (math.nan, math.nan))[1],
             "dataset": dataset, "scale": scale} for m, v in nll.items()]
    return pd.DataFrame(rows)


def thresholds(nll: dict[str, float], dataset: str, scale: str) -> dict[str, object]:
    """The hit thresholds: mean per-word log-likelihood of the test references (negative floats)."""
    return {"seq2seq": -nll["Seq2seq"], "lm": -nll["LM"], "dataset": dataset, "scale": scale,
            "definition": "mean per-word log-likelihood (nats, </s> counted) of the test references"}


def evaluate_baselines(test_path: str | Path, vocab_path: str | Path, seq2seq_path: str | Path, lm_path: str | Path,
                       table_out: str | Path, thresholds_out: str | Path, s: Settings,
                       batch_size: int = 256) -> pd.DataFrame:
    """Rule evaluate_baselines: score the test references under both baselines; write Table 8 and the hit
    thresholds."""
    vocab, device = Vocab.load(vocab_path), resolve(s.device, s.gpu_jobs_per_device)
    tensors = tensorize(pd.read_parquet(test_path), vocab, s.data)
    nll = {}
    for name, path, kind in (("LM", lm_path, "lm"), ("Seq2seq", seq2seq_path, "seq2seq")):
        model = checkpoint.load(path, vocab, device, arch=s.model.arch, kind=kind).model
        nll[name] = scoring.nll(*scoring.logp_total(scoring.score_dataset(model, tensors, batch_size, device)))
        log.info("%s: test PPL %.2f, NLL %.4f on %d pairs", name, math.exp(nll[name]), nll[name], len(tensors))
    table = table8(nll, s.data.name, s.scale)
    write_csv(table, table_out)
    atomic_write_text(thresholds_out, json.dumps(thresholds(nll, s.data.name, s.scale), indent=2) + "\n")
    return table
