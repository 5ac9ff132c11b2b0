"""How much of gibbs-enum's candidate scoring a lower bound on the loss could skip, on trained models.

A candidate can only be accepted if its loss is below its row's current loss (``first_position: improve``). Both
parts of the loss bound it from below before they are complete:
- o-mode, token by token: after the first t target tokens, their weighted NLL (in min mode each token's weight
  follows from its own log-prob); the sequence factor is 1 once the tokens seen already keep the statistic at or
  below T_out (min: one token below it; avg: their summed log-probs / m, as the rest only lowers the mean), else
  the smaller ``reweight``. Printed:
  the share of target positions the decoder would still have to run, each candidate stopping once its bound
  reaches the row's loss (the encoder runs in full either way).
- io-mode, the LM's suffix: the target term plus the LM term's bound from the prefix and the candidate's own
  log-prob (the suffix's log-probs are <= 0). Printed: the share of candidates whose LM suffix would still run.

    PYTHONPATH=. python docs/reproduction/search_bounds.py RESULTS_DIR TARGET_LIST DATASET [--restarts R]
        [--hit-mode avg|min]

RESULTS_DIR holds models/seq2seq.pt, models/lm.pt and thresholds.json (e.g. results/chitchat of a quick run). The
search takes config.yaml's paper-scale settings of Algorithm 1's searches for DATASET (G 100, 5 sweeps, its hit
type unless --hit-mode), with R restarts (default 1), and runs on the CPU, scoring every candidate twice (plain,
and again for the bound): minutes for a few dozen targets.
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from negtrain_core import config
from negtrain_core.models import checkpoint
from negtrain_core.search import gibbs_enum as S
from negtrain_core.search.hits import load_thresholds
from negtrain_core.search.targets import read_targets, target_tensor

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def measure(results: str, targets: str, dataset: str, restarts: int = 1, hit_mode: str | None = None
            ) -> dict[str, dict[str, int]]:
    """Per mode, the counts: candidates, those below their row's loss, and (o) target positions scored and those
    still decoded with the bound (and of the candidates below their row, those decoded whole), (io) LM suffixes still
    run with it. Checks that each bound is below the loss."""
    searches = config.settings(config.load(CONFIG), dataset).search.negtrain
    s2s = checkpoint.load(f"{results}/models/seq2seq.pt").model
    lm_ck = checkpoint.load(f"{results}/models/lm.pt")
    th = load_thresholds(f"{results}/thresholds.json")
    tgt = target_tensor(read_targets(targets, lm_ck.vocab).ids)
    best: dict[str, torch.Tensor] = {}
    count = dict.fromkeys(("cands", "below", "positions", "decoded", "below_in_full", "lm_suffix"), 0)
    position_update, score = S.position_update, S.score

    def keep_best(seq2seq, lm, sc, src, t, loss, *a, **k):
        best["loss"] = loss.clone()
        return position_update(seq2seq, lm, sc, src, t, loss, *a, **k)

    def bounded(sc, src, pos, cands, t, th_, cfg, size=None, trimmed=False):
        full = score(sc, src, pos, cands, t, th_, cfg, size, trimmed)
        B, G = cands.shape
        row_best = best["loss"].unsqueeze(1)                                            # (B, 1)
        count["cands"] += B * G
        count["below"] += int((full < row_best).sum())
        if cfg.lambda_in > 0:                                                          # io: the LM suffix
            target = score(sc, src, pos, cands, t, th_, dataclasses.replace(cfg, lambda_in=0.0), size, trimmed)
            pre = S.prefix(sc, src, pos, cfg)
            part = (pre.lm_sum.unsqueeze(1) + pre.lm_next.gather(1, cands)) / (cfg.trigger_len + 1)  # >= final
            # final <= part: factor 1 where part <= T_in (the release's '>'); else rw * -final >= rw * -part, or
            # factor 1 with final <= T_in, -final >= -T_in
            lm_bound = torch.where(part <= th_.inp, -part,
                                   torch.minimum(cfg.reweight * -part, torch.full_like(part, -th_.inp)))
            bound = target + cfg.lambda_in * lm_bound
            assert (bound <= full + 1e-4).all(), "the io bound exceeds a candidate's loss"
            count["lm_suffix"] += int((bound < row_best).sum())
            return full
        rows = src.repeat_interleave(G, 0)                                              # o: token by token
        rows[:, pos] = cands.reshape(-1)
        with torch.no_grad():
            out = sc.seq2seq.score(rows, t.repeat_interleave(G, 0))
        lp, mask = out.token_logp, out.mask
        m = mask.sum(1, keepdim=True)
        w = (torch.where(lp >= th_.out, cfg.reweight, 1.0) if cfg.hit_mode == "min" else 1.0) * mask
        partial = (-(lp * w)).cumsum(1) / m                                              # (B G, T')
        if cfg.hit_mode == "min":
            factor_one = ((lp < th_.out) & mask).cummax(1).values
        else:
            factor_one = (lp * mask).cumsum(1) / m <= th_.out
        bound = torch.where(factor_one, 1.0, cfg.reweight) * partial                     # (B G, T')
        assert (bound[:, -1] <= full.reshape(-1) + 1e-4).all(), "the o bound exceeds a candidate's loss"
        reached = (bound >= row_best.repeat_interleave(G, 0)) & mask
        decoded = torch.where(reached.any(1), reached.float().argmax(1) + 1, mask.sum(1))
        count["positions"] += int(mask.sum())
        count["decoded"] += int(decoded.sum())
        below = full.reshape(-1) < row_best.repeat_interleave(G, 0).reshape(-1)
        count["below_in_full"] += int((below & (decoded == mask.sum(1))).sum())   # the bound never cuts these
        return full

    out = {}
    S.position_update, S.score = keep_best, bounded
    try:
        for mode in ("o", "io"):
            for k in count:
                count[k] = 0
            cfg = dataclasses.replace(searches[mode], restarts=restarts, hit_mode=hit_mode or searches[mode].hit_mode)
            torch.manual_seed(0)
            S.search(s2s, lm_ck.model, tgt, th, cfg, torch.Generator().manual_seed(0))
            out[mode] = {"hit_mode": cfg.hit_mode, **count}
    finally:
        S.position_update, S.score = position_update, score
    return out


def main(results: str, targets: str, dataset: str, restarts: int, hit_mode: str | None) -> None:
    for mode, count in measure(results, targets, dataset, restarts, hit_mode).items():
        head = f"{mode}-mode ({count['hit_mode']}), R={restarts}: {count['cands']} candidates, " \
               f"{count['below'] / count['cands']:.1%} below their row's loss; "
        if mode == "o":
            print(head + f"target positions still decoded with the bound {count['decoded']}/{count['positions']} "
                  f"({count['decoded'] / count['positions']:.1%})", flush=True)
        else:
            print(head + f"LM suffixes still run with the bound {count['lm_suffix'] / count['cands']:.1%}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results")
    p.add_argument("targets")
    p.add_argument("dataset")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--hit-mode", choices=("avg", "min"))
    a = p.parse_args()
    main(a.results, a.targets, a.dataset, a.restarts, a.hit_mode)
