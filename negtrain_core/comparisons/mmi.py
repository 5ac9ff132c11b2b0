"""MMI-antiLM decoding (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models").

Greedy decoding of  log p(T|S) - lambda * log U(T),  U(T) = prod_k p_LM(t_k | t_<k) g(k),  g(k) = 1 for k <= gamma
and 0 after: at step k (1-based) the next token maximises  log p(t|S, t_<k) - lambda [k <= gamma] log p_LM(t|t_<k).
U is the dataset's LSTM LM (trained on responses as independent sentences, paper footnote 6); ``</s>`` is a token
like any other. With lambda = 0 this is plain greedy decoding (tests/test_mmi.py checks it against
``decoding.greedy``). The paper (§4.3) reports MMI for greedy decoding, so no beam variant is built here.

Selection of (lambda, gamma) on the validation set (config ``mmi.lambdas`` x ``mmi.gammas``, plus lambda = 0):
the setting with the LOWEST max-ratio among the non-degenerate ones, ties broken by the higher Ent-2. Max-ratio is
the paper's measure of the frequent response problem, the one Table 4 compares MMI on ("the max-ratio is not as
low as the negative training result"); a setting is degenerate when its share of degenerate responses (empty, no
``</s>`` within the length limit, or the same word twice in a row, the failures the paper and Li et al. describe as
"ungrammatical") exceeds plain greedy decoding's share by more than ``mmi.max_degenerate_increase``. Lambda = 0 is
always a candidate, so a sweep where every setting degenerates returns plain greedy decoding and says so.

Shapes: B batch, S source length, L decoded length, V vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from negtrain_core.models import checkpoint, decoding
from negtrain_core.evaluate import metrics
from negtrain_core.config import MMISettings, Settings
from negtrain_core.data.tensors import load_pairs
from negtrain_core.device import resolve
from negtrain_core.io import write_csv
from negtrain_core.models.interface import LanguageModel, Seq2SeqModel
from negtrain_core.evaluate.responses import evaluation_frame, summarize, write_evaluation
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab

log = logging.getLogger(__name__)


@torch.no_grad()
def mmi_greedy(model: Seq2SeqModel, lm: LanguageModel, src: Tensor, lam: float, gamma: int,
               max_len: int = 20) -> Tensor:
    """src: (B, S) ids -> (B, L) MMI-antiLM greedy responses: no ``<s>``, ``</s>`` then ``<pad>``, L <= max_len.

    Steps the models with ``decoding.start``/``decoding.step`` (the decoder the greedy and beam searches use).
    Both models are left in eval mode.
    """
    model.eval()
    lm.eval()
    state = decoding.start(model, src)
    lm_state = decoding.start(lm, src)
    tok = torch.full((src.size(0),), BOS_ID, dtype=torch.long, device=src.device)       # (B,)
    done = torch.zeros_like(tok, dtype=torch.bool)
    out = []
    for k in range(1, max_len + 1):
        score, new_state = decoding.step(model, tok, state)                              # (B, V)
        if lam > 0 and k <= gamma:
            lm_logp, lm_state = decoding.step(lm, tok, lm_state)
            score = score - lam * lm_logp.masked_fill(score.isinf(), 0.0)          # banned ids stay -inf
        state = new_state
        tok = score.argmax(-1).masked_fill(done, PAD_ID)                                 # (B,)
        out.append(tok)
        done |= tok == EOS_ID
        if bool(done.all()):
            break
    return torch.stack(out, dim=1)


def decode_all(model: Seq2SeqModel, lm: LanguageModel, src: Tensor, lam: float, gamma: int, max_len: int = 20,
               batch_size: int = 256) -> list[list[int]]:
    """MMI responses for every row of src (N, S), as id lists up to and including ``</s>`` (when reached)."""
    rows = []
    for chunk in src.split(batch_size):
        for row in mmi_greedy(model, lm, chunk, lam, gamma, max_len).tolist():
            rows.append(row[: row.index(EOS_ID) + 1] if EOS_ID in row else [i for i in row if i != PAD_ID])
    return rows


def is_degenerate(ids: Sequence[int]) -> bool:
    """Empty (``</s>`` first: the anti-LM rewards it, an LM rarely starts with it), no ``</s>`` within the length
    limit, or the same token twice in a row."""
    return len(ids) <= 1 or EOS_ID not in ids or any(a == b for a, b in zip(ids, ids[1:]))


def setting_row(ids: list[list[int]], vocab: Vocab, lam: float, gamma: int) -> dict[str, float]:
    """Validation metrics of one (lambda, gamma) setting."""
    responses = [vocab.decode(r) for r in ids]
    return {"lambda": lam, "gamma": gamma, "max_ratio": metrics.max_ratio(responses),
            "ent2": metrics.entropy(responses, 2), "ent3": metrics.entropy(responses, 3),
            "distinct2": metrics.distinct(responses, 2),
            "mean_len": sum(map(len, responses)) / max(len(responses), 1),
            "degenerate": sum(map(is_degenerate, ids)) / max(len(ids), 1),
            "top_response": metrics.most_frequent(responses)[0]}


def select(sweep: pd.DataFrame, max_degenerate_increase: float) -> pd.Series:
    """The chosen setting: lowest max-ratio among non-degenerate rows, then highest Ent-2 (module docstring)."""
    base = sweep.loc[sweep["lambda"] == 0, "degenerate"].iloc[0]
    ok = sweep[(sweep["degenerate"] <= base + max_degenerate_increase) | (sweep["lambda"] == 0)]
    return ok.sort_values(["max_ratio", "ent2"], ascending=[True, False], kind="stable").iloc[0]


def sweep(model: Seq2SeqModel, lm: LanguageModel, src: Tensor, vocab: Vocab, cfg: MMISettings) -> pd.DataFrame:
    """The validation sweep: lambda = 0 (plain greedy) then every (lambda, gamma); column ``selected`` marks the
    pick."""
    grid = [(0.0, 0)] + [(lam, g) for lam in cfg.lambdas for g in cfg.gammas if lam > 0]
    rows = [setting_row(decode_all(model, lm, src, lam, g, cfg.max_len, cfg.batch_size), vocab, lam, g)
            for lam, g in grid]
    df = pd.DataFrame(rows)
    best = select(df, cfg.max_degenerate_increase)
    df["selected"] = (df["lambda"] == best["lambda"]) & (df["gamma"] == best["gamma"])
    return df


def run(seq2seq_path: str | Path, lm_path: str | Path, valid_path: str | Path, test_path: str | Path,
        responses_out: str | Path, metrics_out: str | Path, sweep_out: str | Path, s: Settings) -> dict[str, Any]:
    """Rule evaluate_mmi: sweep (lambda, gamma) on validation, decode the test inputs with the chosen setting."""
    dev = resolve(s.device, s.gpu_jobs_per_device)
    s2s = checkpoint.load(seq2seq_path, device=dev, arch=s.model.arch, kind="seq2seq")
    lm = checkpoint.load(lm_path, vocab=s2s.vocab, device=dev, arch=s.model.arch, kind="lm")
    cfg = s.mmi
    table = sweep(s2s.model, lm.model, load_pairs(valid_path, s2s.vocab, s.data, dev).src, s2s.vocab, cfg)
    write_csv(table.assign(dataset=s.data.name, scale=s.scale), sweep_out)
    best = table[table["selected"]].iloc[0]
    log.info("MMI validation sweep:\n%s\nselected lambda=%g gamma=%d", table.to_string(index=False),
             best["lambda"], best["gamma"])
    test = pd.read_parquet(test_path)
    ids = decode_all(s2s.model, lm.model, load_pairs(test_path, s2s.vocab, s.data, dev).src, float(best["lambda"]),
                     int(best["gamma"]), cfg.max_len, cfg.batch_size)
    responses = [s2s.vocab.decode(r) for r in ids]
    summary = {**summarize(responses, test, None, "mmi", s), "lambda": float(best["lambda"]),
               "gamma": int(best["gamma"])}
    write_evaluation(evaluation_frame(test, responses), summary, responses_out, metrics_out)
    return summary
