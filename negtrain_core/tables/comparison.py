"""Every number of the reproduced Tables 3, 4, 8 and 9 beside the paper's, and a plot of them.

``compare`` turns the four produced tables of one dataset into one long table, a row per cell:

    table, row, column, value, paper, diff, rel_diff, dataset, paper_dataset, scale, status, note

- ``value`` is the reproduced number, ``paper`` the paper's (typed in from the paper's text: Table 3 here, Tables 4,
  8, 9 from ``tables_frequent`` / ``evaluate``, where the produced tables already print them), ``diff = value -
  paper`` and ``rel_diff = diff / |paper|``. Rates and M-ratio are fractions on both sides (the paper prints %).
- ``status``: ``compared`` (both numbers), ``no paper value`` (a row or column the paper does not have, e.g. +UL),
  or ``not run: <reason>`` (a paper cell this run has no number for: a Table 3 row whose target list was not built,
  with the table's own reason, or a paper row this config does not produce, e.g. another r_thres). Cells that are
  empty on both sides (the paper's N/A, e.g. the PPL of the Test-set row and of MMI) are left out.
- chitchat is not in the paper. It runs the Switchboard recipe (config ``datasets.chitchat``: Switchboard's
  r_thres, hit type and learning rates), so its numbers are set beside the paper's **Switchboard** numbers;
  ``paper_dataset`` says which dataset the paper column is, and ``note`` says so on every chitchat row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from negtrain_core.evaluate.baselines import PAPER_TABLE8
from negtrain_core.io import atomic_path, write_csv
from negtrain_core.tables.frequent import PAPER_TABLE4, PAPER_TABLE9

if TYPE_CHECKING:                                   # for annotations only: matplotlib is imported lazily
    import matplotlib.axes

log = logging.getLogger(__name__)

NA = math.nan
TABLES = ("table3", "table4", "table8", "table9")
# table -> (column naming the row, compared columns), as the produced CSVs name them.
LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "table3": ("training", ("o_train", "o_test", "o_ppl", "io_train", "io_test", "io_ppl")),
    "table4": ("row", ("PPL", "M-ratio", "E-2", "E-3")),
    "table8": ("model", ("test_ppl", "test_nll")),
    "table9": ("row", ("PPL", "BLEU-4 sent-avg", "M-ratio")),   # the sentence average is the paper's BLEU-4 definition
}
# The dataset whose paper numbers a dataset is compared with (chitchat: the Switchboard recipe it runs; any other
# dataset, e.g. a researcher's own: Switchboard too, whose recipe config dataset_defaults repeats).
PAPER_DATASET = {"ubuntu": "ubuntu", "switchboard": "switchboard", "opensubtitles": "opensubtitles",
                 "chitchat": "switchboard"}
NOT_IN_PAPER_NOTE = ("{dataset} is not in the paper: the paper column holds its Switchboard numbers ({dataset} runs "
                     "the Switchboard recipe)")
CHITCHAT_NOTE = NOT_IN_PAPER_NOTE.format(dataset="chitchat")


def paper_dataset_of(dataset: str) -> str:
    """The paper's dataset that ``dataset`` is compared with (Switchboard for those not in the paper)."""
    return PAPER_DATASET.get(dataset, "switchboard")


# Table 3 of the paper (§4.2): (o_train, o_test, o_ppl, io_train, io_test, io_ppl) per row, rates as fractions.
# Hit type: sample-min for Ubuntu and OpenSubtitles, sample-avg for Switchboard (config malicious.hit_type).
PAPER_TABLE3: dict[str, dict[str, tuple[float, ...]]] = {
    "ubuntu": {"Baseline": (0.164, 0.126, 59.49, 0.078, 0.052, 59.49),
               "+neg-tr(0.5k)": (0.0, 0.02, 60.42, 0.002, 0.014, 59.97),
               "+neg-tr(1k)": (0.001, 0.014, 60.72, 0.001, 0.01, 60.21),
               "+neg-tr(2.5k)": (0.0004, 0.0, 62.11, 0.002, 0.0, 63.37)},
    "switchboard": {"Baseline": (0.278, 0.276, 42.81, 0.196, 0.21, 42.81),
                    "+neg-tr(0.5k)": (0.038, 0.134, 42.91, 0.022, 0.094, 42.7),
                    "+neg-tr(1k)": (0.024, 0.05, 42.96, 0.021, 0.04, 42.76),
                    "+neg-tr(2.5k)": (0.013, 0.026, 43.51, 0.015, 0.016, 43.24)},
    "opensubtitles": {"Baseline": (0.407, 0.366, 70.81, 0.192, 0.136, 70.81),
                      "+neg-tr(0.5k)": (0.058, 0.122, 77.90, 0.052, 0.066, 73.48),
                      "+neg-tr(1k)": (0.052, 0.07, 68.77, 0.092, 0.046, 68.92),
                      "+neg-tr(2.5k)": (0.048, 0.06, 74.07, 0.034, 0.036, 75.9)},
}
PAPER_HIT_TYPE = {"ubuntu": "sample-min", "switchboard": "sample-avg", "opensubtitles": "sample-min"}
COLUMNS = ["table", "row", "column", "value", "paper", "diff", "rel_diff", "dataset", "paper_dataset", "scale",
           "status", "note"]


def paper_cells(table: str, paper_dataset: str) -> dict[tuple[str, str], float]:
    """The paper's numbers of one table: (row label, column) -> value, labels as the produced CSVs write them."""
    cols = LAYOUT[table][1]
    source = {"table3": PAPER_TABLE3, "table4": PAPER_TABLE4, "table8": PAPER_TABLE8, "table9": PAPER_TABLE9}[table]
    skip = 1 if table == "table4" else 0          # Table 4's tuples start with r_thres: (r_thres, PPL, M-ratio, ...)
    return {(label, c): float(v) for label, vals in source.get(paper_dataset, {}).items()
            for c, v in zip(cols, vals[skip:], strict=True)}


def row_status(row: Mapping[str, object], paper_dataset: str) -> str:
    """A produced row's own status (Table 3 says 'not run: <why>' for lists that were not built), else 'ok'; a
    Table 3 row measured with another hit type than the paper's says so."""
    status = row.get("status")
    status = status if isinstance(status, str) and status else "ok"
    hit_type, paper_type = row.get("hit_type"), PAPER_HIT_TYPE.get(paper_dataset)
    if isinstance(hit_type, str) and paper_type and hit_type != paper_type and not status.startswith("not run"):
        status = f"{status}, measured as {hit_type}-hit; the paper's column is {paper_type}-hit"
    return status


def _number(x: object) -> float:
    return NA if x is None or pd.isna(x) else float(x)


def cell(table: str, row: str, column: str, value: float, paper: float, status: str, ctx: Mapping[str, str]
         ) -> dict[str, object] | None:
    """One comparison row; None for a cell that is empty on both sides and not a 'not run' row (the paper's N/A)."""
    if math.isnan(value) and math.isnan(paper) and not status.startswith("not run"):
        return None
    if status.startswith("not run") or (math.isnan(value) and not math.isnan(paper)):
        verdict = status if status.startswith("not run") else "not run: no reproduced number"
    else:
        verdict = "no paper value" if math.isnan(paper) else "compared"
    diff = value - paper
    rel = diff / abs(paper) if not math.isnan(diff) and paper != 0 else NA
    row_note = "" if status == "ok" or status.startswith("not run") else status   # e.g. 'ok, but no paraphrase...'
    return {"table": table, "row": row, "column": column, "value": value, "paper": paper, "diff": diff,
            "rel_diff": rel, "dataset": ctx["dataset"], "paper_dataset": ctx["paper_dataset"],
            "scale": ctx["scale"], "status": verdict, "note": "; ".join(n for n in (row_note, ctx["note"]) if n)}


def compare_table(table: str, produced: pd.DataFrame, ctx: Mapping[str, str]) -> list[dict[str, object]]:
    """The cells of one produced table beside the paper's, then the paper rows this run did not produce."""
    key, cols = LAYOUT[table]
    paper = paper_cells(table, ctx["paper_dataset"])
    out, seen = [], set()
    for rec in produced.to_dict("records"):
        label, status = str(rec[key]), row_status(rec, ctx["paper_dataset"])
        seen.add(label)
        for c in cols:
            out.append(cell(table, label, c, _number(rec.get(c)), paper.get((label, c), NA), status, ctx))
    for label in dict.fromkeys(r for r, _ in paper):
        if label not in seen:
            why = f"not run: this config produces no row '{label}' (e.g. another r_thres or list size)"
            out += [cell(table, label, c, NA, paper.get((label, c), NA), why, ctx) for c in cols]
    return [r for r in out if r is not None]


def compare(tables: Mapping[str, pd.DataFrame], dataset: str, scale: str) -> pd.DataFrame:
    """tables: "table3" | "table4" | "table8" | "table9" -> the produced CSV. Returns the long comparison table."""
    paper_dataset = paper_dataset_of(dataset)
    ctx = {"dataset": dataset, "paper_dataset": paper_dataset, "scale": scale,
           "note": NOT_IN_PAPER_NOTE.format(dataset=dataset) if dataset != paper_dataset else ""}
    rows = [r for t in TABLES if t in tables for r in compare_table(t, tables[t], ctx)]
    return pd.DataFrame(rows, columns=COLUMNS)


# ------------------------------------------------------------------------------------------------------ plot


def plot_comparison(frame: pd.DataFrame, path: str | Path, title: str) -> None:
    """Small multiples: one panel per (table, column), reproduced (above) and paper bars per row; 'not run' marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [t for t in TABLES if t in set(frame["table"])]
    ncols = max(len(LAYOUT[t][1]) for t in tables) if tables else 1
    fig, axes = plt.subplots(max(len(tables), 1), ncols, figsize=(3.4 * ncols, 2.9 * max(len(tables), 1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, t in enumerate(tables):
        for j, c in enumerate(LAYOUT[t][1]):
            sub = frame[(frame["table"] == t) & (frame["column"] == c)]
            if not sub.empty:
                _panel(axes[i, j], sub, f"{t.replace('table', 'Table ')}: {c}")
    handles, labels = next((ax.get_legend_handles_labels() for ax in axes.flat if ax.get_visible()), ([], []))
    fig.legend(handles, labels, loc="upper right", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _panel(ax: "matplotlib.axes.Axes", sub: pd.DataFrame, title: str) -> None:
    """Horizontal bars, reproduced above paper, for the rows of one column (y inverted: first row on top); 'not
    run' written where the reproduced bar is missing."""
    ax.set_visible(True)
    y = list(range(len(sub)))
    ax.barh([v - 0.2 for v in y], sub["value"].fillna(0), height=0.4, label="reproduced", color="tab:blue")
    ax.barh([v + 0.2 for v in y], sub["paper"].fillna(0), height=0.4, label="paper", color="tab:gray")
    for k, (status, value) in enumerate(zip(sub["status"], sub["value"])):
        if status.startswith("not run") and math.isnan(value):
            ax.text(0, k - 0.2, " not run", va="center", fontsize=7, color="tab:red")
    ax.set_yticks(y, list(sub["row"]), fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)


def write_comparison(table_paths: Mapping[str, str | Path], csv_out: str | Path, png_out: str | Path, dataset: str,
                     scale: str) -> pd.DataFrame:
    """Rule paper_comparison: read the produced tables, write the comparison CSV and its plot."""
    frame = compare({t: pd.read_csv(p) for t, p in table_paths.items()}, dataset, scale)
    write_csv(frame, csv_out)
    paper_dataset = paper_dataset_of(dataset)
    against = "the paper" if paper_dataset == dataset else \
        f"the paper's {paper_dataset} numbers ({dataset} is not in the paper; it runs the {paper_dataset} recipe)"
    plot_comparison(frame, png_out, f"Tables 3, 4, 8, 9: {dataset} ({scale} scale) vs {against}")
    log.info("%d cells: %s", len(frame), frame["status"].value_counts().to_dict())
    return frame
