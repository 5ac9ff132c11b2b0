"""The few lines the workflow prints when it ends (the Snakefile's ``onsuccess:``): the headline numbers of each
dataset's Table 4 (Algorithm 2: max-ratio and PPL before and after) and Table 3 (Algorithm 1: hit rates before and
after), read from the CSVs the run wrote.

Only tables written by this run are summarised (``since``: the run's start), so a run that built another target
prints nothing about older tables; a table that is missing or unreadable, or lacks a row, is left out without
error: the summary must never turn a finished run into a failed one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from negtrain_core.tables.formats import format_value, is_missing


def _read(path: Path, since: float) -> pd.DataFrame | None:
    """The table at ``path`` when it was written at or after ``since`` (epoch seconds) and parses, else None."""
    try:
        if path.stat().st_mtime < since:
            return None
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None


def _row(table: pd.DataFrame, column: str, label: str) -> pd.Series | None:
    rows = table[table[column] == label] if column in table else table.iloc[:0]
    return None if rows.empty else rows.iloc[0]


def _rate_ppl(row: pd.Series, rate: str, ppl: str) -> str:
    return f"{format_value(row.get(rate), 'rate', 'n/a')} (PPL {format_value(row.get(ppl), 'ppl', 'n/a')})"


def table4_lines(table: pd.DataFrame) -> list[str]:
    """Algorithm 2's effect and the comparisons' max-ratio, from a Table 4 frame (rows Baseline, +GAN, +MMI, +UL,
    +neg-train <r_thres>)."""
    base = _row(table, "row", "Baseline")
    if base is None:
        return []
    negtrain = [r for _, r in table.iterrows() if str(r["row"]).startswith("+neg-train")]
    after = ", ".join(f"{_rate_ppl(r, 'M-ratio', 'PPL')} at r_thres {_percent(r.get('r_thres'))}" for r in negtrain)
    lines = [f"  Algorithm 2 (Table 4), greedy max-ratio: baseline {_rate_ppl(base, 'M-ratio', 'PPL')} -> "
             f"{after or 'not run'}"]
    others = [(name, _row(table, "row", f"+{name}")) for name in ("GAN", "MMI", "UL")]
    shown = [f"{name} {format_value(r['M-ratio'], 'rate')}" for name, r in others
             if r is not None and not is_missing(r.get("M-ratio"))]
    if shown:
        lines.append(f"    the comparisons' max-ratio: {', '.join(shown)}")
    return lines


def _percent(value: object) -> str:
    """An r_thres as the paper writes it: 0.1 -> "10%", 0.001 -> "0.1%"."""
    return "n/a" if is_missing(value) else f"{float(value) * 100:g}%"


def table3_lines(table: pd.DataFrame) -> list[str]:
    """Algorithm 1's effect on the hit rates (training / test list, o- and io-hits), from a Table 3 frame (rows
    Baseline, +neg-tr(0.5k), ...)."""
    base, after = _row(table, "training", "Baseline"), _row(table, "training", "+neg-tr(0.5k)")
    if base is None or after is None or is_missing(after.get("o_train")):
        return []
    hit_type = "" if is_missing(base.get("hit_type")) else f"{base['hit_type']} "
    train, test = base.get("train_targets"), base.get("test_targets")
    if is_missing(train):
        targets = ""
    elif is_missing(test) or float(test) == float(train):      # the default lists keep as many targets each
        targets = f" of {format_value(train, 'count')} targets a list"
    else:                                                      # lists of one's own may differ in size
        targets = f" of {format_value(train, 'count')} training and {format_value(test, 'count')} test targets"
    lines = [f"  Algorithm 1 (Table 3, +neg-tr(0.5k)), {hit_type}hit rates{targets}:"]
    for mode in ("o", "io"):
        pairs = [f"{name} list {format_value(base.get(f'{mode}_{name}'), 'rate', 'n/a')} -> "
                 f"{format_value(after.get(f'{mode}_{name}'), 'rate', 'n/a')}" for name in ("train", "test")]
        lines.append(f"    {mode}-hits: {', '.join(pairs)}")
    return lines


def summary_lines(datasets: Iterable[str], since: float, results: str | Path = "results") -> list[str]:
    """The summary of each of ``datasets`` whose Table 3 or 4 under ``results`` this run wrote (none: [])."""
    lines: list[str] = []
    for dataset in datasets:
        folder = Path(results) / dataset
        t4, t3 = _read(folder / "table4.csv", since), _read(folder / "table3.csv", since)
        body = (table4_lines(t4) if t4 is not None else []) + (table3_lines(t3) if t3 is not None else [])
        if body:
            scale = next((t["scale"].iloc[0] for t in (t4, t3) if t is not None and "scale" in t and len(t)), "")
            tables = ", ".join(name for name, t in (("table3.csv", t3), ("table4.csv", t4)) if t is not None)
            lines += [f"negtrain: {folder}/ ({scale} scale; all rows in {tables}):", *body]
            pages = sorted(p.name for p in (folder / "report").glob("*.html")    # rule table_view's, this run's
                           if p.stat().st_mtime >= since)
            if pages:
                lines.append(f"  the tables this run wrote, beside the paper's, to open in a browser: {folder}/report/ "
                             f"({', '.join(pages)})")
    return lines
