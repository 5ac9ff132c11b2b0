"""How generic a baseline is against how many targets the trigger search reaches, over every hit-tested baseline with
the release's attention decoder and hit test.

  PYTHONPATH=. python docs/reproduction/switchboard/generic_vs_hits.py

Reads only committed files (each run folder's models.csv or metrics.json and hits.csv, through variants_by_seed.py's
``measured``): every Switchboard baseline trained with the release's attention decoder and zero decoder start and
hit-tested with the release's hit test on the authors' 0.5k list (468 targets in our vocabulary) and ours (425):
configs/paper_levels.yaml's (run 19), run 45's readings added to it (hit-tested in runs 62 and 63), the release's
initialisation and optimiser on it (run 46), the release preset's seven seeds and every variant of it (runs 46-61), and
the preset with plain SGD (run 22). Prints, for max-ratio (Table 4: the share of test sources answered with the most
frequent response) and test PPL, against each other and each sample-avg hit rate, Spearman's and Pearson's correlation
over the trainings and over the preset's seven seeds alone, with a two-sided permutation p-value for Spearman's (20,000
shuffles, fixed seed), then each hit rate's partial Spearman correlation with one of the two measures, the other held
fixed. Writes generic_vs_hits.csv (one row per training).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("variants_by_seed", HERE / "variants_by_seed.py")
by_seed = importlib.util.module_from_spec(_spec)    # measured(run, variant): one training's figures and hit rates
_spec.loader.exec_module(by_seed)

RATES = ["o_avg_train", "io_avg_train", "o_avg_test", "io_avg_test"]
# (run, variant) of the trainings read through by_seed.measured, beyond the preset's seeds and its variants
MORE = [("run62", "file_order"), ("run62", "release_init"), ("run63", "release_momentum"),
        ("run46", "release_recipe")]


def _by_model(run: str, metrics: dict) -> dict:
    """A run that kept one baseline (models.csv or metrics.json and hits.csv keyed by ``model``, not ``variant``)."""
    hits = pd.read_csv(HERE / run / "hits.csv").query("model == 'baseline'")
    rates = by_seed.run55.run51.run46.avg_rates(hits, by="model").loc["baseline"]
    return {"max_ratio": float(metrics["max_ratio"]), "test_ppl": float(metrics.get("test_ppl", metrics.get("ppl"))),
            **{r: float(rates[r]) for r in RATES}}


def trainings() -> pd.DataFrame:
    rows = [{"run": "run19", "variant": "paper_levels", "group": "configs/paper_levels.yaml",
             **_by_model("run19", pd.read_csv(HERE / "run19" / "models.csv").set_index("model").loc["baseline"])},
            {"run": "run22", "variant": "preset_plain_sgd", "group": "release preset, plain SGD",
             **_by_model("run22", json.loads((HERE / "run22" / "metrics.json").read_text()))}]
    named = [(run, variant, "paper_levels + one or two readings") for run, variant in MORE]
    named += [(run, variant, "release preset, seed") for _, run, variant in by_seed.PRESET]
    named += [(run, variant, "release preset variant")
              for runs in by_seed.VARIANTS.values() for _, run, variant in runs]
    for run, variant, group in named:
        figures = by_seed.measured(run, variant)
        rows.append({"run": run, "variant": variant, "group": group, "max_ratio": figures["max_ratio"],
                     "test_ppl": figures["test_ppl"], **{r: figures[r] for r in RATES}})
    table = pd.DataFrame(rows)
    return table.dropna(subset=RATES).reset_index(drop=True)       # the trainings that were hit-tested


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank().to_numpy()          # ties share their mean rank


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def permutation_p(x: np.ndarray, y: np.ndarray, shuffles: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of Spearman's correlation: the share of shuffles of ``y`` (of its ranks: shuffling values
    shuffles their ranks) whose correlation is at least as far from zero, the observed one counted in."""
    rx, ry = _ranks(x), _ranks(y)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(ry, (shuffles, 1)), axis=1)
    rx, shuffled = rx - rx.mean(), shuffled - ry.mean()
    rho = shuffled @ rx / np.sqrt((shuffled**2).sum(axis=1) * (rx**2).sum())
    observed = abs(_spearman(x, y))
    return float((np.sum(np.abs(rho) >= observed - 1e-12) + 1) / (shuffles + 1))


def correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Each of max-ratio and test PPL against each hit rate, over every training and over the preset's seeds."""
    rows = []
    for name, part in (("every training", table), ("the preset's seven seeds", table.query(
            "group == 'release preset, seed'"))):
        for measure, rate in [("max_ratio", "test_ppl"), *((m, r) for m in ("max_ratio", "test_ppl") for r in RATES)]:
            x, y = part[measure].to_numpy(), part[rate].to_numpy()
            rows.append({"trainings": name, "n": len(part), "measure": measure, "against": rate,
                         "spearman": _spearman(x, y), "pearson": float(np.corrcoef(x, y)[0, 1]),
                         "spearman_p": permutation_p(x, y)})
    return pd.DataFrame(rows)


def partial_spearman(table: pd.DataFrame, rate: str, measure: str, given: str) -> float:
    """Spearman's correlation of ``rate`` and ``measure`` with ``given`` held fixed: the correlation of their ranks'
    residuals after a least-squares line on ``given``'s ranks."""
    ranks = table[[rate, measure, given]].rank()
    design = np.c_[np.ones(len(ranks)), ranks[given]]
    residual = [ranks[c] - design @ np.linalg.lstsq(design, ranks[c], rcond=None)[0] for c in (rate, measure)]
    return float(np.corrcoef(*residual)[0, 1])


def main() -> None:
    table = trainings()
    table.to_csv(HERE / "generic_vs_hits.csv", index=False)
    print(table.sort_values("max_ratio").round(4).to_string(index=False))
    print("max-ratio and test PPL against each other and each sample-avg hit rate (train: the authors' 0.5k list; "
          "test: ours)")
    print(correlations(table).round(4).to_string(index=False))
    print("partial Spearman over every training, each hit rate against one measure with the other held fixed")
    for rate in RATES:
        print(f"  {rate}: max-ratio given test PPL {partial_spearman(table, rate, 'max_ratio', 'test_ppl'):+.3f}, "
              f"test PPL given max-ratio {partial_spearman(table, rate, 'test_ppl', 'max_ratio'):+.3f}")


if __name__ == "__main__":
    main()
