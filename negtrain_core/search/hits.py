"""Hit criteria (He & Glass 2020, §3.2) and the hits table of one model on one target list.

Criteria on the teacher-forced scores of a target y (``<s> y </s>``: its m = len(y) + 1 predictions, ``</s>``
included, as eq. 7 and the release count them):
- o-greedy:      the argmax at every step equals the target token, and no target token is ``<unk>`` (release);
- o-sample-min:  every token log-prob >= T_out;          o-sample-avg: their mean >= T_out;
- io-sample-min/avg: the o- criterion and the LM's mean log-prob of the trigger >= T_in.
T_out and T_in come from ``results/{dataset}/thresholds.json`` (keys ``seq2seq`` and ``lm``). Config ``hits``
(docs/release.md#hit-criteria) can test as the release's Algorithm 1 script does: strict ``>`` (``strict``), no LM
threshold for io triggers (``lm_check`` false), scores with the seq2seq's dropout active (``model_mode`` train), and
the baseline searched with ``baseline_restarts``.

The hits table has one row per (target, search mode): mode "o" is the search with lambda_in 0 from a uniform
start, mode "io" the search with lambda_in (config) from an LM sample. Every row's five boolean columns are the
five criteria evaluated on THAT row's trigger, so they are always consistent with its log-probs; the hit rate of
an ``o_*`` type counts the o-mode rows, of an ``io_*`` type the io-mode rows (``hit_rates``, Table 3). Targets the
list reader skipped (out of vocabulary) have rows too, with ``skipped`` True, empty trigger, NaN scores and False
criteria; they are excluded from rates and counted beside them.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from negtrain_core import device
from negtrain_core.config import HitSettings, SearchBlock, SearchSettings, Settings
from negtrain_core.io import write_csv, write_parquet
from negtrain_core.models import checkpoint
from negtrain_core.models.interface import LanguageModel, Seq2SeqModel
from negtrain_core.search.gibbs_enum import Evaluation, SearchResult, Thresholds, evaluate, search
from negtrain_core.search.targets import TargetList, read_targets, target_tensor
from negtrain_core.data.vocab import UNK_ID, Vocab

log = logging.getLogger(__name__)

HIT_TYPES = ("o_greedy", "o_sample_min", "o_sample_avg", "io_sample_min", "io_sample_avg")
MODES = ("o", "io")
COLUMNS = ["target", "mode", "skipped", "oov", "trigger", "loss", "token_logp", "min_logp", "avg_logp", "lm_logp",
           *HIT_TYPES]


class ThresholdsError(ValueError):
    """An unusable thresholds file, stated in one line naming the file and key."""


def load_thresholds(path: str | Path) -> Thresholds:
    """T_out (key ``seq2seq``) and T_in (key ``lm``) from the baselines stage's thresholds.json."""
    data = json.loads(Path(path).read_text())
    values = []
    for key in ("seq2seq", "lm"):
        v = data.get(key)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v >= 0:
            raise ThresholdsError(f"{path}: key '{key}' must be a negative mean log-likelihood, got {v!r}")
        values.append(float(v))
    return Thresholds(*values)


# ------------------------------------------------------------------------------------------------------ criteria


def min_logp(token_logp: Tensor, mask: Tensor) -> Tensor:
    """token_logp, mask: (N, T') -> (N,) smallest real-token log-prob."""
    return token_logp.masked_fill(~mask, math.inf).min(-1).values


def avg_logp(token_logp: Tensor, mask: Tensor) -> Tensor:
    """token_logp, mask: (N, T') -> (N,) mean real-token log-prob."""
    return (token_logp * mask).sum(-1) / mask.sum(-1)


def o_greedy(greedy: Tensor, gold: Tensor, mask: Tensor) -> Tensor:
    """greedy, gold, mask: (N, T') -> (N,) argmax equals gold at every real step, and no gold ``<unk>``."""
    ok = (greedy == gold) | ~mask
    return ok.all(-1) & ~((gold == UNK_ID) & mask).any(-1)


def past(value: Tensor, threshold: float, strict: bool = False) -> Tensor:
    """value >= threshold, or value > threshold when ``strict`` (the release's Algorithm 1 test)."""
    return value > threshold if strict else value >= threshold


def o_sample_min(token_logp: Tensor, mask: Tensor, t_out: float, strict: bool = False) -> Tensor:
    return past(min_logp(token_logp, mask), t_out, strict)


def o_sample_avg(token_logp: Tensor, mask: Tensor, t_out: float, strict: bool = False) -> Tensor:
    return past(avg_logp(token_logp, mask), t_out, strict)


def lm_pass(lm_logp: Tensor, t_in: float, strict: bool = False, check: bool = True) -> Tensor:
    """(N,) the trigger's mean LM log-prob lm_logp (N,) is past T_in; all True without ``check`` (hits.lm_check)."""
    return past(lm_logp, t_in, strict) if check else torch.ones_like(lm_logp, dtype=torch.bool)


def io_sample_min(token_logp: Tensor, mask: Tensor, lm_logp: Tensor, th: Thresholds, strict: bool = False,
                  lm_check: bool = True) -> Tensor:
    return o_sample_min(token_logp, mask, th.out, strict) & lm_pass(lm_logp, th.inp, strict, lm_check)


def io_sample_avg(token_logp: Tensor, mask: Tensor, lm_logp: Tensor, th: Thresholds, strict: bool = False,
                  lm_check: bool = True) -> Tensor:
    return o_sample_avg(token_logp, mask, th.out, strict) & lm_pass(lm_logp, th.inp, strict, lm_check)


def criteria(ev: Evaluation, gold: Tensor, th: Thresholds, hs: HitSettings = HitSettings()) -> dict[str, Tensor]:
    """All five hit types (N,) of evaluated triggers; gold: (N, T') = targets[:, 1:]. Needs ``ev.lm_logp``.
    ``hs``: strict comparisons and the LM check (config ``hits``)."""
    lp, m, st, chk = ev.token_logp, ev.mask, hs.strict, hs.lm_check
    return {"o_greedy": o_greedy(ev.greedy, gold, m), "o_sample_min": o_sample_min(lp, m, th.out, st),
            "o_sample_avg": o_sample_avg(lp, m, th.out, st),
            "io_sample_min": io_sample_min(lp, m, ev.lm_logp, th, st, chk),
            "io_sample_avg": io_sample_avg(lp, m, ev.lm_logp, th, st, chk)}


def hit_rates(hits: pd.DataFrame) -> pd.DataFrame:
    """One row per hit type: hit_type, hits, targets (searched), rate, skipped. o_* on o rows, io_* on io rows."""
    out = []
    for h in HIT_TYPES:
        rows = hits[hits["mode"] == h.split("_")[0]]
        searched = rows[~rows["skipped"].astype(bool)]
        n = len(searched)
        k = int(searched[h].astype(bool).sum())
        out.append({"hit_type": h, "hits": k, "targets": n, "rate": k / n if n else math.nan,
                    "skipped": int(rows["skipped"].astype(bool).sum())})
    return pd.DataFrame(out)


def format_rates(rates: pd.DataFrame) -> str:
    """``o_sample_avg 27.8% (139/500, 0 skipped); ...``"""
    return "; ".join(f"{r.hit_type} {100 * r.rate:.1f}% ({r.hits}/{r.targets}, {r.skipped} skipped)"
                     for r in rates.itertuples())


# ---------------------------------------------------------------------------------------------------- hits table


def searches_for(model_name: str, search_block: SearchBlock) -> dict[str, SearchSettings]:
    """The gibbs-enum settings per mode: the standalone attack on the baseline uses ``restarts`` (or
    ``hits.baseline_restarts``), negatively trained models ``restarts_negtrain``."""
    return search_block.attack if model_name == "baseline" else search_block.negtrain


def search_mode(seq2seq: Seq2SeqModel, lm: LanguageModel, tgt: Tensor, th: Thresholds, cfg: SearchSettings,
                seed: int) -> SearchResult:
    """One mode's gibbs-enum over targets tgt (N, T); torch's global RNG (dropout of the gradient pass) and the
    initialisation generator seeded from ``seed``."""
    torch.manual_seed(seed)
    return search(seq2seq, lm, tgt, th, cfg, torch.Generator().manual_seed(seed))


def hit_evaluation(seq2seq: Seq2SeqModel, lm: LanguageModel, res: SearchResult, tgt: Tensor, cfg: SearchSettings,
                   hs: HitSettings, seed: int) -> Evaluation:
    """The scores the hit test reads for the triggers of ``res`` and targets tgt (N, T): the search's own eval-mode
    evaluation, or (``hs.model_mode`` train) a forward with the seq2seq's dropout active, its RNG seeded from
    ``seed`` (the LM stays in eval mode: the release's has no dropout there)."""
    if hs.model_mode == "eval":
        return res.evaluation
    torch.manual_seed(seed)
    return evaluate(seq2seq, lm, res.triggers, tgt.to(res.triggers.device), cfg, train=True)


def _mode_rows(targets: TargetList, mode: str, vocab: Vocab, tgt: Tensor, res: SearchResult, ev: Evaluation,
               th: Thresholds, hs: HitSettings, free: range) -> list[dict[str, Any]]:
    """Table rows of one search mode's result, scored by ``ev`` (targets in list order)."""
    crit = {k: v.cpu() for k, v in criteria(ev, tgt[:, 1:].to(ev.mask.device), th, hs).items()}
    lp, mask = ev.token_logp.cpu(), ev.mask.cpu()
    mins, avgs = min_logp(lp, mask), avg_logp(lp, mask)
    rows = []
    for i, text in enumerate(targets.texts):
        rows.append({"target": text, "mode": mode, "skipped": False, "oov": "",
                     "trigger": " ".join(vocab.tokens[j] for j in res.triggers[i, free.start:free.stop].tolist()),
                     "loss": float(res.losses[i]), "token_logp": lp[i][mask[i]].tolist(),
                     "min_logp": float(mins[i]), "avg_logp": float(avgs[i]), "lm_logp": float(ev.lm_logp[i]),
                     **{k: bool(v[i]) for k, v in crit.items()}})
    return rows


def _skipped_rows(targets: TargetList) -> list[dict[str, Any]]:
    if not targets.skipped:
        return []
    return [{"target": t, "mode": mode, "skipped": True, "oov": " ".join(w), "trigger": "", "loss": math.nan,
             "token_logp": [], "min_logp": math.nan, "avg_logp": math.nan, "lm_logp": math.nan,
             **{h: False for h in HIT_TYPES}} for mode in MODES for t, w in targets.oov]


def mode_results(seq2seq: Seq2SeqModel, lm: LanguageModel, tgt: Tensor, th: Thresholds,
                 searches: dict[str, SearchSettings], seed: int,
                 cache: dict[SearchSettings, SearchResult] | None = None
                 ) -> dict[str, tuple[SearchSettings, SearchResult]]:
    """Each mode's gibbs-enum over targets tgt (N, T): mode -> (its settings, its result), in MODES order.

    ``cache`` (settings -> result), kept by the caller for one target list, thresholds, model pair and seed, reuses
    a search already run with equal settings (a search is a function of those and its settings).
    """
    results = {}
    for mode in MODES:
        cfg = searches[mode]
        if cache is not None and cfg in cache:
            results[mode] = (cfg, cache[cfg])
            continue
        res = search_mode(seq2seq, lm, tgt, th, cfg, seed)
        log.info("%s-mode search: %d targets x %d restarts, %d candidates scored, mean loss %.4f",
                 mode, len(tgt), cfg.restarts, res.candidates_scored, float(res.losses.mean()))
        results[mode] = (cfg, res)
        if cache is not None:
            cache[cfg] = res
    return results


def hits_table(seq2seq: Seq2SeqModel, lm: LanguageModel, vocab: Vocab, targets: TargetList, tgt: Tensor,
               results: dict[str, tuple[SearchSettings, SearchResult]], th: Thresholds, hs: HitSettings,
               seed: int) -> pd.DataFrame:
    """The hits table of searched triggers. tgt: (N, T) the list's targets; results: mode -> (its search settings,
    its result), in MODES order; ``hs``: how a hit is tested (config ``hits``)."""
    rows = []
    for mode, (cfg, res) in results.items():
        ev = hit_evaluation(seq2seq, lm, res, tgt, cfg, hs, seed)
        rows += _mode_rows(targets, mode, vocab, tgt, res, ev, th, hs, cfg.free_positions())
    return pd.DataFrame(rows + _skipped_rows(targets), columns=COLUMNS)


def run_hits(seq2seq: Seq2SeqModel, lm: LanguageModel, vocab: Vocab, targets_path: str | Path, th: Thresholds,
             settings: Settings, model_name: str, seed: int,
             named: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """o- and io-mode gibbs-enum for every target of the list at ``targets_path`` -> (hits table, hit-rates table):
    ``list_hits`` on the list ``read_targets`` reads with the search's ``oov_policy``. ``named``: the configured
    list that ``targets_path`` copies line by line, named in messages (``read_targets``)."""
    targets = read_targets(targets_path, vocab, settings.search.oov_policy, max_len=settings.data.max_target_len,
                           named=named)
    for line in targets.report():
        log.info(line)
    return list_hits(seq2seq, lm, vocab, targets, th, settings, model_name, seed)


def list_hits(seq2seq: Seq2SeqModel, lm: LanguageModel, vocab: Vocab, targets: TargetList, th: Thresholds,
              settings: Settings, model_name: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """o- and io-mode gibbs-enum for every target of ``targets`` (``read_targets``, ``targets_from_texts``) ->
    (hits table, hit-rates table), as rule hits computes them.

    ``model_name`` picks the search settings (``searches_for``): ``baseline`` the attack's, any other name those of
    a negatively trained model. Models are used on their own device and left in eval mode. Seeds torch's global RNG
    (dropout of the gradient pass, and of the hit test in train mode) and the initialisation generator from ``seed``.
    """
    tgt = target_tensor(targets.ids)
    results = mode_results(seq2seq, lm, tgt, th, searches_for(model_name, settings.search), seed)
    hits = hits_table(seq2seq, lm, vocab, targets, tgt, results, th, settings.hits, seed)
    rates = hit_rates(hits)
    log.info("hit rates (%s, %s): %s", model_name, targets.path, format_rates(rates))
    return hits, rates


def run(seq2seq_path: str | Path, lm_path: str | Path, vocab_path: str | Path, targets_path: str | Path,
        thresholds_path: str | Path, hits_out: str | Path, rates_out: str | Path, settings: Settings,
        model_name: str, named: str | Path | None = None) -> pd.DataFrame:
    """Rule hits: the hits table and hit rates of the checkpoint ``model_name`` (``baseline`` or a negatively trained
    model) on one target list (``named``: the configured file it copies). Returns the rates."""
    vocab = Vocab.load(vocab_path)
    dev = device.resolve(settings.device, settings.gpu_jobs_per_device)
    arch = settings.model.arch
    seq2seq = checkpoint.load(seq2seq_path, vocab, dev, arch=arch, kind="seq2seq").model
    lm = checkpoint.load(lm_path, vocab, dev, arch=arch, kind="lm").model
    hits, rates = run_hits(seq2seq, lm, vocab, targets_path, load_thresholds(thresholds_path), settings, model_name,
                           settings.seed, named)
    write_parquet(hits, hits_out)
    write_csv(rates, rates_out)
    return rates
