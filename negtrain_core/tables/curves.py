"""Training curves of one dataset: Algorithm 1's hit rate, Algorithm 2's max-ratio and PPL, the baselines' PPL.

Inputs are the curve CSVs the stages write (columns as they write them):
- ``models/negtr-{mode}-{size}_curve.csv`` (Algorithm 1): epoch, batch, targets, round, hits, neg_loss, pos_nll;
  one row per negative round of a batch. The hit rate of an iteration (epoch) over the target list is the share of
  targets hit when each batch is searched (round 0): ``malicious.epoch_rates``. With
  ``malicious.eval_every_epoch`` also test_ppl, the test PPL after the epoch (the same in each of its rows).
- ``models/freq-{r}_curve.csv`` (Algorithm 2): epoch (0 = the baseline before training), test_max_ratio, test_ppl.
- ``models/{seq2seq,lm}_curve.csv`` (baselines): epoch, train_ppl, valid_ppl.

``long_curves`` gathers them into one tidy table (panel, model, series, epoch, value), which ``plot_curves``
draws, one panel each, and which is written beside the plot as ``curves.csv``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from negtrain_core.io import atomic_path, write_csv
from negtrain_core.negtrain.malicious import epoch_rates

log = logging.getLogger(__name__)

PANELS = {
    "hit_rate": "Algorithm 1: hit rate on the training list per epoch (at search time)",
    "max_ratio": "Algorithm 2: test max-ratio per epoch (0 = baseline)",
    "neg_ppl": "Test PPL per epoch: Algorithm 2 (0 = baseline); Algorithm 1 if evaluated",
    "baseline_ppl": "Baselines: PPL per epoch",
}
REQUIRED = {"malicious": ("epoch", "targets", "round", "hits", "neg_loss"), "frequent": ("epoch", "test_max_ratio",
            "test_ppl"), "baseline": ("epoch", "train_ppl", "valid_ppl")}
COLUMNS = ["panel", "model", "series", "epoch", "value"]


class CurveError(ValueError):
    """A curve file without a column the plot needs, in one line naming the file."""


def read_curve(path: str | Path, kind: str) -> pd.DataFrame:
    """Read one curve CSV of ``kind`` (malicious | frequent | baseline), refusing one without a needed column."""
    df = pd.read_csv(path)
    missing = [c for c in REQUIRED[kind] if c not in df.columns]
    if missing:
        raise CurveError(f"{path}: no column {missing[0]!r} (a {kind} curve needs {', '.join(REQUIRED[kind])})")
    return df


def model_name(path: str | Path) -> str:
    """``.../models/negtr-io-0.5k_curve.csv`` -> ``negtr-io-0.5k``."""
    return Path(path).name.removesuffix("_curve.csv")


def _long(df: pd.DataFrame, panel: str, model: str, series: str, column: str) -> pd.DataFrame:
    return pd.DataFrame({"panel": panel, "model": model, "series": series, "epoch": df["epoch"].astype(int),
                         "value": df[column].astype(float)})


def long_curves(malicious: Mapping[str, pd.DataFrame], frequent: Mapping[str, pd.DataFrame],
                baseline: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """model -> curve frame for each family; returns the tidy table (panel, model, series, epoch, value)."""
    parts = [_long(epoch_rates(df), "hit_rate", m, m, "hit_rate") for m, df in malicious.items()]
    parts += [_long(df, "max_ratio", m, m, "test_max_ratio") for m, df in frequent.items()]
    parts += [_long(df, "neg_ppl", m, m, "test_ppl") for m, df in frequent.items()]
    parts += [_long(df.groupby("epoch", as_index=False)["test_ppl"].first(), "neg_ppl", m, m, "test_ppl")
              for m, df in malicious.items() if "test_ppl" in df]          # malicious.eval_every_epoch
    for m, df in baseline.items():
        parts += [_long(df, "baseline_ppl", m, f"{m} {split}", f"{split}_ppl") for split in ("train", "valid")]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def plot_curves(frame: pd.DataFrame, path: str | Path, title: str) -> None:
    """One panel per ``PANELS`` entry, one line (with markers) per series; an empty panel says 'no curve'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    for ax, (panel, label) in zip(axes.flat, PANELS.items()):
        sub = frame[frame["panel"] == panel]
        for series, s in sub.groupby("series", sort=False):
            ax.plot(s["epoch"], s["value"], marker="o", label=series)
        if sub.empty:
            ax.text(0.5, 0.5, "no curve in this run", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[1, 1].set_yscale("log")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def write_curves(malicious: list[str], frequent: list[str], baseline: list[str], png_out: str | Path,
                 csv_out: str | Path, dataset: str, scale: str) -> pd.DataFrame:
    """Rule curves: read the curve CSVs (lists of paths), write the tidy table and the 4-panel plot."""
    frame = long_curves({model_name(p): read_curve(p, "malicious") for p in malicious},
                        {model_name(p): read_curve(p, "frequent") for p in frequent},
                        {model_name(p): read_curve(p, "baseline") for p in baseline})
    write_csv(frame, csv_out)
    plot_curves(frame, png_out, f"{dataset} ({scale} scale): training curves")
    log.info("%d curve points in %d series", len(frame), frame["series"].nunique())
    return frame
