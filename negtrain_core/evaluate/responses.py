"""A model's greedy test responses and their metrics (rule evaluate_model; paper §4.3, Tables 4 and 9).

``evaluate_model`` decodes the test inputs greedily and writes ``greedy.parquet`` (the test pairs with a
``response`` column) and ``metrics.json``: ``ppl`` (teacher-forced test perplexity, ``</s>`` counted),
``max_ratio``, ``ent2``, ``ent3``, ``distinct1``, ``distinct2``, ``bleu4`` (sacrebleu corpus BLEU-4 against the full
test references, on the paper's 0-1 scale: sacrebleu's score / 100), ``n``, ``mean_len``, ``top_response``.
MMI-antiLM (``comparisons.mmi``) writes the same two files for its own decoding through ``evaluation_frame``,
``summarize`` and ``write_evaluation``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from negtrain_core.config import Settings
from negtrain_core.data.tensors import load_pairs
from negtrain_core.device import resolve
from negtrain_core.evaluate import metrics
from negtrain_core.io import atomic_write_text, write_parquet
from negtrain_core.models import checkpoint
from negtrain_core.models.decoding import greedy_responses
from negtrain_core.models.scoring import corpus_perplexity

log = logging.getLogger(__name__)


def evaluation_frame(test: pd.DataFrame, responses: Sequence[Sequence[str]]) -> pd.DataFrame:
    """The test pairs with their response column (space-joined words)."""
    out = test[["dialogue_id", "turn", "source", "target"]].reset_index(drop=True).copy()
    out["response"] = [" ".join(r) for r in responses]
    return out


def summarize(responses: Sequence[Sequence[str]], test: pd.DataFrame, ppl: float | None, name: str,
              s: Settings) -> dict[str, Any]:
    """metrics.json contents for ``responses`` to the inputs of ``test``."""
    refs = [t.split() for t in test["target"]]
    out = metrics.response_metrics(responses, refs, s.metrics)
    return {"model": name, "dataset": s.data.name, "scale": s.scale, "ppl": ppl, **out}


def write_evaluation(frame: pd.DataFrame, summary: dict[str, Any], responses_out: str | Path,
                     metrics_out: str | Path) -> None:
    write_parquet(frame, responses_out)
    atomic_write_text(metrics_out, json.dumps(summary, indent=2) + "\n")


def evaluate_model(ckpt_path: str | Path, test_path: str | Path, responses_out: str | Path, metrics_out: str | Path,
                   s: Settings, name: str) -> dict[str, Any]:
    """Rule evaluate_model: test PPL and the greedy test responses of one seq2seq checkpoint, with their metrics."""
    torch.manual_seed(s.seed)
    dev = resolve(s.device, s.gpu_jobs_per_device)
    ck = checkpoint.load(ckpt_path, device=dev, arch=s.model.arch, kind="seq2seq")
    test = pd.read_parquet(test_path)
    pairs = load_pairs(test_path, ck.vocab, s.data, dev)
    ppl = corpus_perplexity(ck.model, pairs.src, pairs.tgt)
    responses = greedy_responses(ck.model, pairs.src, ck.vocab, s.data.max_target_len)
    summary = summarize(responses, test, ppl, name, s)
    write_evaluation(evaluation_frame(test, responses), summary, responses_out, metrics_out)
    log.info("%s: PPL %.2f, max-ratio %.4f ('%s'), Ent-2 %.3f, Ent-3 %.3f, BLEU-4 %.4f on %d test pairs", name, ppl,
             summary["max_ratio"], summary["top_response"], summary["ent2"], summary["ent3"], summary["bleu4"],
             summary["n"])
    return summary
