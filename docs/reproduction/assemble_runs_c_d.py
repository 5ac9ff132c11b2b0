"""How the chitchat tables of runs C and D, and the Ubuntu paper comparison, were assembled (2026-11-24).

Run C (both datasets) was stopped before either Algorithm 2 job finished; run D trained the
chitchat baseline again (identical at all 20 epochs) and ran only Algorithm 2. This calls the rules' own code
(`table4_table9`, `paper_comparison`, `curves`) on the files the runs wrote. Run from the repository root with:
  results/chitchat/     run C's results, run D's eval/freq-* and models/freq-*_curve.csv, and data/ from
                        `snakemake results/chitchat/data/test.parquet` (CPU; stats.csv and vocab.txt equal run C's)
  results/ubuntu/       run C's results, with table4.csv and table9.csv of run B (docs/reproduction/ubuntu)
"""
from pathlib import Path

from negtrain_core.tables import comparison, curves, frequent as tables_frequent
from negtrain_core import config as ncfg


def settings(dataset: str) -> ncfg.Settings:
    return ncfg.settings(ncfg.load("config.yaml", (f"docs/reproduction/{dataset}/overlay.yaml",)), dataset)


def compare(dataset: str) -> None:
    s, r = settings(dataset), Path("results") / dataset
    comparison.write_comparison({t: r / f"{t}.csv" for t in comparison.TABLES}, s.data.name, s.scale,
                                r / "paper_comparison.csv", r / "paper_comparison.png")


s, r = settings("chitchat"), Path("results/chitchat")
frequent = ["freq-0.1", "freq-0.01"]
tables_frequent.write_tables(r / "data/test.parquet",
                             [r / f"eval/{m}/metrics.json" for m in ["baseline", "gan", "ul", "mmi", *frequent]],
                             [r / f"eval/{m}/greedy.parquet" for m in ["baseline", "gan", *frequent]],
                             s, r / "table4.csv", r / "table9.csv", r / "samples_frequent.txt")
curves.write_curves([str(r / f"models/negtr-{m}-0.5k_curve.csv") for m in ("o", "io")],
                    [str(r / f"models/{m}_curve.csv") for m in frequent],
                    [str(r / f"models/{k}_curve.csv") for k in ("seq2seq", "lm")], s.data.name, s.scale,
                    r / "curves.png", r / "curves.csv")
compare("chitchat")
compare("ubuntu")
