"""Writes run 51's files from its working directories (see ../README.md#run-51).

  PYTHONPATH=. python docs/reproduction/switchboard/run51/assemble.py RUNS_DIR

RUNS_DIR holds w_<variant> for the variants that ran: the release preset's seq2seq (configs/release.yaml) from the raw
corpus (../run14/overlay.yaml) with another seed (this folder's overlays), trained under MPS, evaluated and hit-tested
on the authors' 0.5k list and ours. The hit rates come from the hits rule's tables where a run kept them (run 52),
else from its logs (the line of negtrain_core.search.hits.format_rates: every rate with its counts; run 51 kept its
logs, not the rule's tables).
Writes models.csv, hits.csv (run 46's layout), <variant>_seq2seq_curve.csv, stage_seconds.csv and the run's rows of
../wall_times.csv; prints every seed of the preset measured so far (runs 46, 49 and this one) beside the paper, with
their mean, standard deviation and range, the validation curves beside seed 1's, and the seeds' max-ratio against
the paper's (Student's t, the mean's 95% interval, the seeds a +-3-point interval would take).
"""

import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _load(run: str):
    spec = importlib.util.spec_from_file_location(f"{run}_assemble", HERE.parent / run / "assemble.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run45, run46, run48 = _load("run45"), _load("run46"), _load("run48")   # writers; hit readers; row and directories

VARIANTS = {"preset_s3": "configs/release.yaml, seed 3"}
COLUMNS = ["test_ppl", "max_ratio", "ent2", "bleu4_sentence_avg", "o_avg_train", "io_avg_train",
           "o_avg_test", "io_avg_test"]


def row(run: Path, variant: str, variants: dict = VARIANTS) -> dict:
    return {**run48.row(run, variant, variants[variant]), "seed": int(variant.removeprefix("preset_s"))}


RATE = re.compile(r"(\w+) [\d.]+% \((\d+)/(\d+), (\d+) skipped\)")


def logged_rates(logs: Path, variant: str) -> pd.DataFrame:
    """The baseline's hit rates on both lists as hits.csv's rows, from the last 'hit rates' line of each hits log."""
    rows = []
    for lst in ("train", "test"):
        line = [ln for ln in (logs / f"hits_baseline_{lst}.log").read_text().splitlines() if "hit rates (" in ln][-1]
        rows += [{"variant": variant, "model": "baseline", "list": lst, "hit_type": t, "hits": int(h),
                  "targets": int(n), "rate": int(h) / int(n), "skipped": int(k)}
                 for t, h, n, k in RATE.findall(line.split("): ", 1)[1])]
    return pd.DataFrame(rows)


def hit_rates(run: Path, variant: str) -> pd.DataFrame | None:
    """The baseline's hit rates as hits.csv's rows: from the hits rule's tables (run 46's hit_rows) where the run
    kept them, else from its logs; None where it was not hit-tested."""
    sw, logs = run / "results" / "switchboard", run / "logs" / "switchboard"
    if (sw / "hits" / "baseline" / "test_rates.csv").is_file():
        return run46.hit_rows(sw, variant)
    if (logs / "hits_baseline_test.log").is_file():
        return logged_rates(logs, variant)
    return None


# (run, variant) of the preset's seeds before this run: seed 1 (hit-tested) and seed 2
EARLIER = [("run46", "preset_momentum"), ("run49", "preset_s2")]
# (run, variant) of a seed one run trained and a later run trained again to the same weights (every measure and the
# validation curve equal) and hit-tested: that later run's hits.csv has the seed's hits
HIT_TESTED_IN = {("run49", "preset_s2"): "run57"}


def preset_seeds(models: pd.DataFrame, hits: list[pd.DataFrame], earlier: list, run: str) -> pd.DataFrame:
    """Every seed of the release preset's baseline: ``earlier`` runs' rows (hit-tested where that run, or the run
    ``HIT_TESTED_IN`` names, kept a hits.csv) and ``models`` (``run``'s, hit-tested where ``hits``, hits.csv frames,
    has them), a row each, with the sample-avg hit rates joined."""
    before, before_hits, runs = [], [], {}
    for r, v in earlier:
        rows = pd.read_csv(HERE.parent / r / "models.csv").query("variant == @v")
        before.append(rows if "seed" in rows else rows.assign(seed=1))   # run 46 kept config.yaml's seed 1
        runs[v] = f"run {r.removeprefix('run')}"
        tested = HERE.parent / HIT_TESTED_IN.get((r, v), r) / "hits.csv"
        if tested.is_file():
            before_hits.append(pd.read_csv(tested).query("variant == @v"))
    rates = run46.avg_rates(pd.concat([*before_hits, *hits]))
    table = pd.concat([*before, models]).set_index("variant").join(rates)
    this = f"run {run.removeprefix('run')}"
    return table.rename(index=lambda v: f"preset seed {int(table.loc[v, 'seed'])} ({runs.get(v, this)})")


def _t_cdf(t: float, df: int) -> float:
    """Student's t distribution function (numerical integration of its density; this folder needs no SciPy)."""
    x = np.linspace(0.0, abs(t), 200_001)
    scale = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    density = scale * (1 + x**2 / df) ** (-(df + 1) / 2)
    half = float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))
    return 0.5 + math.copysign(half, t)


def _t_quantile(q: float, df: int) -> float:
    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_cdf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2


def against_paper(values: pd.Series, paper: float, half_width: float = 0.03) -> str:
    """The seeds' mean of ``values`` against the paper's single figure: Student's t (two-sided), the mean's 95%
    interval, how many seeds a 95% interval of +-``half_width`` would take at this standard deviation, and the 95%
    prediction interval of one more training (the paper's figure is one training, so this is the range it would fall
    in were it drawn from the same spread)."""
    n, mean, sd = len(values), values.mean(), values.std()
    se = sd / math.sqrt(n)
    t = (mean - paper) / se
    p = 2 * (1 - _t_cdf(abs(t), n - 1))
    q = _t_quantile(0.975, n - 1)
    need = next(k for k in range(2, 1000) if _t_quantile(0.975, k - 1) * sd / math.sqrt(k) <= half_width)
    reach = q * sd * math.sqrt(1 + 1 / n)
    return (f"{values.name} over {n} seeds: mean {mean:.4f}, sd {sd:.4f} ({mean / paper - 1:+.1%} against the "
            f"paper's {paper}); t = {t:.2f} ({n - 1} df), p = {p:.3f}; 95% interval of the mean {mean - q * se:.4f}-"
            f"{mean + q * se:.4f}; +-{half_width} at 95% would take {need} seeds; one more training: 95% "
            f"prediction interval {mean - reach:.4f}-{mean + reach:.4f}")


def assemble(run: str, out: Path, runs: Path, variants: dict, earlier: list) -> None:
    """Writes ``run``'s files into ``out`` from runs/w_<variant> and prints every seed of the preset so far."""
    dirs = run48.evaluated_dirs(runs, variants)
    models = run45.write_variants(run, out, dirs, lambda d, v: row(d, v, variants))
    tested = [rates for v, d in dirs.items() if (rates := hit_rates(d, v)) is not None]
    if tested:                                          # a run that evaluated only writes no hits.csv
        pd.concat(tested).to_csv(out / "hits.csv", index=False)

    seeds = preset_seeds(models, tested, earlier, run)[COLUMNS]
    spread = seeds.agg(["mean", "std", "min", "max"]).rename(
        index=lambda s: f"{s} over {len(seeds)} seeds (hits: {seeds['o_avg_train'].notna().sum()})")
    paper = run45.PAPER.set_index("variant").assign(o_avg_train=0.278, io_avg_train=0.196)  # Table 3's baseline
    run45.print_variants("Switchboard baselines under the release preset, every seed (hits: sample-avg; train: the "
                         "authors' 0.5k list, test: ours)", pd.concat([paper, seeds, spread])[COLUMNS], out, dirs,
                         ("preset seed 1", HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv"))
    for column in ("max_ratio", "o_avg_train", "io_avg_train"):         # the hit rates over the hit-tested seeds
        print(against_paper(seeds[column].dropna(), paper.loc["paper", column]))


def main(runs: Path) -> None:
    assemble("run51", HERE, runs, VARIANTS, EARLIER)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
