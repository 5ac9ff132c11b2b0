"""Two or more runs of the pipeline side by side: one column per run for each of a dataset's headline numbers.

For comparing configurations run in separate working directories (``model.arch: lstm`` against ``transformer``, the
defaults against ``configs/release.yaml``):

    python -m negtrain_core.tables.side_by_side DIR [DIR ...] [--labels A B ..] [--dataset switchboard] \\
        [--out side_by_side.csv]

Each DIR is a Snakemake working directory: its ``results/<dataset>/`` tables and ``benchmarks_out/<dataset>/``
timings. Rows (``section``, ``quantity``):

- ``Table 8``: the seq2seq's and the LM's test PPL;
- ``Table 3``: the baseline's hit rates (o and io, training and test list), the same after neg-tr(0.5k), its PPL,
  and the relative reductions 1 - after / before on the training list (held-in) and the test list;
- ``Table 4``: PPL, max-ratio, Ent-2 and Ent-3 of the baseline and of every other row the run has (GAN, MMI, UL,
  each neg-train r_thres), with each one's relative max-ratio reduction;
- ``wall time (s)``: every stage Snakemake timed (its ``benchmark:`` files, the ``s`` column).

A number a run does not have (a table or row it did not build) is an empty cell; nothing is estimated. The table is
printed as Markdown and, with ``--out``, written as CSV (``section, quantity, <label>..``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from negtrain_core.io import write_csv
from negtrain_core.tables.formats import format_value

NEG_TR = "+neg-tr(0.5k)"


def _read(path: Path, **kw) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kw)
    except (ValueError, pd.errors.ParserError) as e:          # EmptyDataError is a ValueError
        raise ValueError(f"{path}: not a readable table ({str(e).splitlines()[0]})") from None


def _table(run: Path, dataset: str, name: str) -> pd.DataFrame | None:
    path = run / "results" / dataset / f"{name}.csv"
    return _read(path) if path.is_file() else None


def _cell(table: pd.DataFrame | None, key: str, label: str, column: str) -> float:
    """The number in ``column`` of the row whose ``key`` column is ``label``, else nan."""
    if table is None or column not in table or key not in table:
        return math.nan
    rows = table[table[key].astype(str) == label]
    return float(rows[column].iloc[0]) if len(rows) and pd.notna(rows[column].iloc[0]) else math.nan


def _reduction(before: float, after: float) -> float:
    """1 - after / before (nan unless both are numbers and before > 0)."""
    return 1.0 - after / before if before > 0 and not math.isnan(after) else math.nan


def run_rows(run: Path, dataset: str) -> dict[tuple[str, str], float]:
    """One run's numbers by (section, quantity)."""
    out: dict[tuple[str, str], float] = {}
    t8, t3, t4 = (_table(run, dataset, n) for n in ("table8", "table3", "table4"))
    out[("Table 8", "seq2seq test PPL")] = _cell(t8, "model", "Seq2seq", "test_ppl")
    out[("Table 8", "LM test PPL")] = _cell(t8, "model", "LM", "test_ppl")
    for mode in ("o", "io"):
        for lst in ("train", "test"):
            base = _cell(t3, "training", "Baseline", f"{mode}_{lst}")
            after = _cell(t3, "training", NEG_TR, f"{mode}_{lst}")
            out[("Table 3", f"baseline {mode}-hits, {lst} list")] = base
            out[("Table 3", f"{NEG_TR} {mode}-hits, {lst} list")] = after
            kind = "held-in" if lst == "train" else "test-list"
            out[("Table 3", f"{NEG_TR} {mode}: {kind} reduction")] = _reduction(base, after)
        out[("Table 3", f"{NEG_TR} {mode}: PPL")] = _cell(t3, "training", NEG_TR, f"{mode}_ppl")
    base_ratio = _cell(t4, "row", "Baseline", "M-ratio")
    others = [] if t4 is None else [r for r in t4["row"].astype(str) if r not in ("Test-set", "Baseline")]
    rows = ["Baseline", *others]
    for row in rows:
        for column, name in (("PPL", "PPL"), ("M-ratio", "max-ratio"), ("E-2", "Ent-2"), ("E-3", "Ent-3")):
            out[("Table 4", f"{row}: {name}")] = _cell(t4, "row", row, column)
        if row != "Baseline":
            out[("Table 4", f"{row}: max-ratio reduction")] = _reduction(base_ratio, _cell(t4, "row", row, "M-ratio"))
    timings = run / "benchmarks_out" / dataset
    for tsv in sorted(timings.rglob("*.tsv")) if timings.is_dir() else []:
        seconds = _read(tsv, sep="\t").get("s")
        if seconds is None or seconds.empty:
            raise ValueError(f"{tsv}: not a Snakemake benchmark file (no 's' column)")
        out[("wall time (s)", tsv.relative_to(timings).with_suffix("").as_posix())] = float(seconds.iloc[0])
    return out


def side_by_side(runs: Sequence[Path], labels: Sequence[str], dataset: str) -> pd.DataFrame:
    """The rows of every run, in the first run's order, then rows only later runs have; one column per label."""
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise ValueError(f"side_by_side: {len(runs)} runs need as many distinct labels, got {list(labels)}")
    for run in runs:
        if not (run / "results" / dataset).is_dir():
            raise FileNotFoundError(f"{run / 'results' / dataset}: no results of dataset {dataset!r} in this run")
    per_run = [run_rows(run, dataset) for run in runs]
    keys = list(dict.fromkeys(k for numbers in per_run for k in numbers))
    return pd.DataFrame([{"section": s, "quantity": q, **{label: numbers.get((s, q), math.nan)
                                                           for label, numbers in zip(labels, per_run)}}
                         for s, q in keys])


def kind(section: str, quantity: str) -> str:
    """How a row's numbers print (a ``tables.formats`` kind): rates and reductions, PPL, Ent-n, seconds."""
    if section == "wall time (s)":
        return "seconds"
    if quantity.endswith("PPL"):
        return "ppl"
    return "entropy" if quantity.endswith(("Ent-2", "Ent-3")) else "rate"


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown, each number as ``tables.formats`` prints its kind; empty cells for numbers a run does
    not have."""
    labels = list(table.columns[2:])
    lines = ["| section | quantity | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for r in table.itertuples(index=False):
        k = kind(r[0], r[1])
        lines.append(f"| {r[0]} | {r[1]} | " + " | ".join(format_value(x, k) for x in r[2:]) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="Snakemake working directories")
    p.add_argument("--labels", nargs="+", help="one per run (default: the directories' names)")
    p.add_argument("--dataset", default="switchboard")
    p.add_argument("--out", type=Path, help="also write the table as CSV")
    a = p.parse_args(argv)
    try:
        table = side_by_side(a.runs, a.labels or [r.name for r in a.runs], a.dataset)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"side_by_side: {e}") from None
    print(markdown(table))
    if a.out:
        write_csv(table, a.out)


if __name__ == "__main__":
    main()
