"""Tables 4, 9 and the samples of Tables 5, 11-13, from each model's ``metrics.json`` and ``greedy.parquet``
(written by ``evaluate.responses.evaluate_model``, rule evaluate_model).

``write_tables`` (rule table4_table9) assembles:
- ``table4.csv``: rows Test-set, Baseline, +GAN, +MMI, +UL, +neg-train at each r_thres; columns r_thres, PPL,
  M-ratio, E-2, E-3 (M-ratio and r_thres as fractions; the paper prints percentages), the paper's values where the
  paper has the row, and the scale. The Test-set row measures the test references as the model is trained on them:
  the first ``max_target_len - 1`` words (``data.encode_target``), ``</s>`` counted by Ent-n like any response.
- ``table9.csv``: PPL, two BLEU-4 (0-1 scale, as the paper's Table 9), M-ratio for the baseline and each neg-train.
  ``BLEU-4 corpus`` is metrics.json's ``bleu4`` (sacrebleu corpus BLEU-4 / 100); ``BLEU-4 sent-avg`` is
  ``metrics.bleu4_sentence_avg`` of greedy.parquet: NLTK 3.2.5's unsmoothed sentence BLEU-4 averaged over the test
  pairs, ``</s>`` kept, the release's way (docs/release.md#metrics) and the one compared with the paper's number.
  Both score the greedy responses against the full test references.
- ``samples_frequent.txt``: consecutive test inputs of one dialogue (the input of each sample is the reference
  response of the previous one) with the Baseline / GAN / Neg-train greedy responses, the layout of Tables 5, 11-13.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from negtrain_core.evaluate import metrics
from negtrain_core.config import Settings
from negtrain_core.io import atomic_write_text, write_csv

log = logging.getLogger(__name__)

NA = math.nan
# Table 4 of the paper: (r_thres, PPL, M-ratio, E-2, E-3) per row label; fractions where the paper prints %.
PAPER_TABLE4: dict[str, dict[str, tuple[float, float, float, float, float]]] = {
    "ubuntu": {"Test-set": (NA, NA, 0.011, 10.09, 11.32), "Baseline": (NA, 59.49, 0.044, 5.33, 5.92),
               "+GAN": (NA, 59.43, 0.047, 5.30, 5.87), "+MMI": (NA, NA, 0.045, 5.34, 5.93),
               "+neg-train 0.01": (0.01, 59.76, 0.012, 5.74, 6.52),
               "+neg-train 0.001": (0.001, 60.06, 0.013, 6.44, 7.55)},
    "switchboard": {"Test-set": (NA, NA, 0.10, 8.61, 9.65), "Baseline": (NA, 42.81, 0.374, 2.71, 2.42),
                    "+GAN": (NA, 42.69, 0.49, 2.66, 2.35), "+MMI": (NA, NA, 0.23, 5.48, 6.23),
                    "+neg-train 0.1": (0.1, 42.84, 0.124, 3.86, 4.00),
                    "+neg-train 0.01": (0.01, 44.32, 0.098, 5.48, 6.03)},
    "opensubtitles": {"Test-set": (NA, NA, 0.0047, 9.66, 10.98), "Baseline": (NA, 70.81, 0.20, 4.22, 4.59),
                      "+GAN": (NA, 72.00, 0.188, 4.08, 4.43), "+MMI": (NA, NA, 0.036, 7.63, 9.08),
                      "+neg-train 0.01": (0.01, 72.37, 0.031, 5.68, 6.60),
                      "+neg-train 0.001": (0.001, 75.71, 0.006, 6.90, 8.13)},
}
# Table 9 of the paper: (PPL, BLEU-4, M-ratio); "Neg-train" is the smaller r_thres of Table 4.
PAPER_TABLE9: dict[str, dict[str, tuple[float, float, float]]] = {
    "ubuntu": {"Baseline": (59.49, 0.443, 0.044), "Neg-train 0.001": (60.06, 0.464, 0.013)},
    "switchboard": {"Baseline": (42.81, 0.476, 0.374), "Neg-train 0.01": (44.32, 0.475, 0.098)},
    "opensubtitles": {"Baseline": (70.81, 0.502, 0.20), "Neg-train 0.001": (75.71, 0.526, 0.006)},
}
# Table 9's two BLEU-4 columns, each named by its definition (module docstring).
BLEU_CORPUS, BLEU_SENT = "BLEU-4 corpus", "BLEU-4 sent-avg"


def freq_name(r_thres: float) -> str:
    """The model name of Algorithm 2 at ``r_thres`` (rules/common.smk ``frequent_models``)."""
    return f"freq-{r_thres:g}"


# ------------------------------------------------------------------------------------------------ the tables


def reference_responses(test: pd.DataFrame, max_target_len: int) -> list[list[str]]:
    """Test references as the model is trained on them: the first ``max_target_len - 1`` words."""
    return [t.split()[: max_target_len - 1] for t in test["target"]]


def _row(label: str, r_thres: float, m: Mapping[str, Any], paper: Mapping[str, tuple], scale: str
         ) -> dict[str, Any]:
    p = paper.get(label, (NA,) * 5)
    ppl = m.get("ppl")
    return {"row": label, "r_thres": r_thres, "PPL": NA if ppl is None else ppl, "M-ratio": m["max_ratio"],
            "E-2": m["ent2"], "E-3": m["ent3"], "paper_PPL": p[1], "paper_M-ratio": p[2], "paper_E-2": p[3],
            "paper_E-3": p[4], "scale": scale}


def table4(test_metrics: Mapping[str, Any], model_metrics: Mapping[str, Mapping[str, Any]],
           r_thres: Sequence[float], dataset: str, scale: str) -> pd.DataFrame:
    """Rows Test-set, Baseline, +GAN, +MMI, +UL, +neg-train <r> (one per r_thres), in that order."""
    paper = PAPER_TABLE4.get(dataset, {})
    rows = [_row("Test-set", NA, {**test_metrics, "ppl": None}, paper, scale)]
    for label, name in (("Baseline", "baseline"), ("+GAN", "gan"), ("+MMI", "mmi"), ("+UL", "ul")):
        rows.append(_row(label, NA, model_metrics[name], paper, scale))
    for r in r_thres:
        rows.append(_row(f"+neg-train {r:g}", r, model_metrics[freq_name(r)], paper, scale))
    return pd.DataFrame(rows)


def sentence_bleu(responses_paths: Sequence[str | Path]) -> dict[str, float]:
    """Model name (the folder of its greedy.parquet) -> ``metrics.bleu4_sentence_avg`` of its responses."""
    frames = {Path(p).parent.name: pd.read_parquet(p, columns=["target", "response"]) for p in responses_paths}
    return {name: metrics.bleu4_sentence_avg([r.split() for r in f["response"]], [t.split() for t in f["target"]])
            for name, f in frames.items()}


def table9(model_metrics: Mapping[str, Mapping[str, Any]], r_thres: Sequence[float], dataset: str, scale: str,
           bleu_settings: str, sent_bleu: Mapping[str, float]) -> pd.DataFrame:
    """Rows Baseline and Neg-train <r>: PPL, both BLEU-4 (0-1 scale; ``sent_bleu``: model name -> sentence-average
    BLEU-4), M-ratio, beside the paper's (its BLEU-4 is the sentence average's definition)."""
    paper = PAPER_TABLE9.get(dataset, {})
    rows = []
    for label, name in [("Baseline", "baseline")] + [(f"Neg-train {r:g}", freq_name(r)) for r in r_thres]:
        m, p = model_metrics[name], paper.get(label, (NA, NA, NA))
        rows.append({"row": label, "PPL": m["ppl"], BLEU_CORPUS: m["bleu4"], BLEU_SENT: sent_bleu[name],
                     "M-ratio": m["max_ratio"],
                     "paper_PPL": p[0], "paper_BLEU-4": p[1], "paper_M-ratio": p[2], "bleu": bleu_settings,
                     "scale": scale})
    return pd.DataFrame(rows)


def consecutive_run(test: pd.DataFrame, n: int) -> pd.Index:
    """Row labels of ``n`` consecutive turns of the first test dialogue that has ``n`` (else the longest one)."""
    sizes = test.groupby("dialogue_id", sort=False).size()
    enough = sizes[sizes >= n]
    dialogue = enough.index[0] if len(enough) else sizes.idxmax()
    rows = test[test["dialogue_id"] == dialogue].sort_values("turn")
    return rows.index[:n]


def shown_input(source: str, keep: int) -> str:
    """The words of ``source`` the model reads (the last ``keep``), ``...`` marking a cut."""
    words = source.split()
    return " ".join(words[-keep:]) if len(words) <= keep else "... " + " ".join(words[-keep:])


def samples_text(test: pd.DataFrame, responses: Mapping[str, pd.DataFrame], title: str, n: int = 14,
                 keep: int = 14) -> str:
    """Tables 5 / 11-13 layout: ``Input:`` (the last ``keep`` words, what the model reads) then one line per system
    (``responses``: label -> greedy.parquet frame); an empty response is shown as ``(empty)``."""
    for label, frame in responses.items():
        if not frame[["dialogue_id", "turn"]].reset_index(drop=True).equals(
                test[["dialogue_id", "turn"]].reset_index(drop=True)):
            raise ValueError(f"samples: the responses of '{label}' are not aligned with the test pairs")
    lines = [title, ""]
    for i in consecutive_run(test.reset_index(drop=True), n):
        lines.append(f"Input: {shown_input(test['source'].iloc[i], keep)}")
        lines += [f"{label}: {frame['response'].iloc[i] or '(empty)'}" for label, frame in responses.items()]
        lines.append("")
    return "\n".join(lines)


def write_tables(test_path: str | Path, metrics_paths: Sequence[str | Path], responses_paths: Sequence[str | Path],
                 table4_out: str | Path, table9_out: str | Path, samples_out: str | Path, s: Settings) -> pd.DataFrame:
    """Rule table4_table9. Each input path is ``.../eval/<model>/<file>``: the folder names the model."""
    test = pd.read_parquet(test_path)
    mset = s.metrics
    model_metrics = {Path(p).parent.name: json.loads(Path(p).read_text()) for p in metrics_paths}
    test_metrics = metrics.response_metrics(reference_responses(test, s.data.max_target_len), None, mset)
    r_thres = [f.r_thres for f in s.frequent]
    t4 = table4(test_metrics, model_metrics, r_thres, s.data.name, s.scale)
    bleu = (f"{BLEU_CORPUS}: sacrebleu corpus BLEU-4 / 100 (tokenize={mset.bleu_tokenize}, smooth="
            f"{mset.bleu_smooth_method}); {BLEU_SENT}: mean NLTK 3.2.5 sentence_bleu, no smoothing, </s> kept")
    write_csv(t4, table4_out)
    write_csv(table9(model_metrics, r_thres, s.data.name, s.scale, bleu, sentence_bleu(responses_paths)), table9_out)
    frames = {Path(p).parent.name: pd.read_parquet(p) for p in responses_paths}
    labels = {"baseline": "Baseline", "gan": "GAN", **{freq_name(r): f"Neg-train (r_thres {r:g})" for r in r_thres}}
    shown = {labels[k]: frames[k] for k in labels if k in frames}
    keep = s.data.max_source_len - int(s.data.source_eou)
    title = f"{s.data.name} ({s.scale} scale), greedy decoding; consecutive test turns"
    atomic_write_text(samples_out, samples_text(test, shown, title, keep=keep) + "\n")
    log.info("Table 4 (%s, %s scale):\n%s", s.data.name, s.scale, t4.to_string(index=False))
    return t4
