"""The LSTM and the Transformer side by side at paper scale, from the committed files of runs 4, 5, 31, 32 and 36.

  PYTHONPATH=. python docs/reproduction/switchboard/side_by_side_paper.py [--out side_by_side_paper.csv]

``python -m negtrain_core.tables.side_by_side`` compares working directories; the paper-scale runs' directories were
not kept, so this script writes, for each architecture, the three tables and the timings that tool reads
(results/switchboard/table{3,4,8}.csv, benchmarks_out/switchboard/*.tsv) from the numbers committed here, and runs
the tool on them. Every number is copied from one of these files; none is estimated:

- Table 8: run31/table8.csv (both architectures' baselines; equal to runs 32-35's to every digit).
- Table 3 (the authors' 0.5k list as training list, 468 targets; our test list, 425): the baselines' sample-avg hit
  rates from run31/hits.csv, neg-tr(0.5k)'s from run32/hits.csv, their test PPL from run32/models.csv. Two
  Transformer columns: Algorithm 1 at the LSTM's step sizes (lr 0.01, run 32) and at configs/transformer.yaml's
  (lr 0.005: run36/hits.csv and run36/models.csv; every other stage as in run 32).
- Table 4: the baselines' rows (test PPL, greedy max-ratio, Ent-2, Ent-3) from epoch 0 of each Algorithm 2 curve;
  Algorithm 2 after 2 epochs from the Transformer's run32/transformer_freq-*_curve.csv and the LSTM's
  freq-*_curve.csv (runs 4 and 5, the same baseline as run 31's: test PPL 40.4868 in both), and the LSTM's 20 epochs
  from the same curves. The Transformer's 20 epochs were not run.
- Wall time: run32/stage_seconds.csv, both invocations side by side on one H200 under MPS (run32/timeline.log);
  the third column's from run36/stage_seconds.csv, on one H100 with four Algorithm 1 jobs and their per-epoch test
  PPL sharing it (run36/timeline.log), and no Algorithm 2.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd

from negtrain_core.tables import side_by_side as sbs

HERE = Path(__file__).resolve().parent
# column label: (architecture, the run whose Algorithm 1 models and stage times it shows)
COLUMNS = {"LSTM": ("lstm", 32), "Transformer": ("transformer", 32),
           "Transformer, Alg. 1 lr 0.005": ("transformer", 36)}


def _rate(hits: pd.DataFrame, arch: str, model: str, lst: str, mode: str) -> float:
    row = hits.query("arch == @arch and model == @model and list == @lst and hit_type == @mode + '_sample_avg'")
    if len(row) != 1:
        raise ValueError(f"{arch} {model} {lst} {mode}: {len(row)} rows")
    return float(row["rate"].iloc[0])


def _curve(arch: str, r_thres: str) -> pd.DataFrame:
    name = f"run32/transformer_freq-{r_thres}_curve.csv" if arch == "transformer" else f"freq-{r_thres}_curve.csv"
    return pd.read_csv(HERE / name).set_index("epoch")


def _table4(arch: str) -> pd.DataFrame:
    cols = {"test_ppl": "PPL", "test_max_ratio": "M-ratio", "test_ent2": "E-2", "test_ent3": "E-3"}
    curves = {r: _curve(arch, r) for r in ("0.1", "0.01")}
    base = {cols[c]: curves["0.01"].loc[0, c] for c in cols}
    assert all(curves["0.1"].loc[0, c] == curves["0.01"].loc[0, c] for c in cols), f"{arch}: two baselines"
    rows = [{"row": "Baseline", **base}]
    for epochs in (2, 20):
        for r, curve in curves.items():
            if epochs in curve.index:
                rows.append({"row": f"+neg-train {r}, {epochs} epochs",
                             **{cols[c]: curve.loc[epochs, c] for c in cols}})
    return pd.DataFrame(rows)


def write_run(arch: str, negtr_run: int, run: Path) -> None:
    """``run``/results/switchboard/table{3,4,8}.csv and benchmarks_out/switchboard/*.tsv for ``arch``, with
    Algorithm 1's models and the stage times of run ``negtr_run``."""
    results, timings = run / "results" / "switchboard", run / "benchmarks_out" / "switchboard"
    results.mkdir(parents=True)
    timings.mkdir(parents=True)
    table8 = pd.read_csv(HERE / "run31" / "table8.csv").query("arch == @arch")
    table8[["model", "test_ppl"]].to_csv(results / "table8.csv", index=False)
    source = HERE / f"run{negtr_run}"
    before, after = pd.read_csv(HERE / "run31" / "hits.csv"), pd.read_csv(source / "hits.csv")
    if "run" in after:                               # run 36's files hold run 37's models too
        after = after.query("run == @negtr_run")
    models = pd.read_csv(source / "models.csv").query("arch == @arch")
    models = models.query("run == @negtr_run") if "run" in models else models
    models = models.set_index("model")
    table3 = [{"training": "Baseline", **{f"{m}_{lst}": _rate(before, arch, "baseline", lst, m)
                                          for m in ("o", "io") for lst in ("train", "test")}},
              {"training": sbs.NEG_TR, **{f"{m}_{lst}": _rate(after, arch, f"negtr-{m}-0.5k", lst, m)
                                          for m in ("o", "io") for lst in ("train", "test")},
               **{f"{m}_ppl": models.loc[f"negtr-{m}-0.5k", "test_ppl"] for m in ("o", "io")}}]
    pd.DataFrame(table3).to_csv(results / "table3.csv", index=False)
    _table4(arch).to_csv(results / "table4.csv", index=False)
    seconds = pd.read_csv(source / "stage_seconds.csv").query("arch == @arch")
    if "run" in seconds:                             # run 36's: the shared baseline's stages, then each variant's
        seconds = seconds[seconds["run"].astype(str).isin(["base", str(negtr_run)])]
    for r in seconds.itertuples():
        pd.DataFrame({"s": [r.seconds]}).to_csv(timings / f"{r.stage}.tsv", sep="\t", index=False)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "side_by_side_paper.csv")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [Path(tmp) / str(i) for i in range(len(COLUMNS))]
        for (arch, negtr_run), run in zip(COLUMNS.values(), runs):
            write_run(arch, negtr_run, run)
        table = sbs.side_by_side(runs, list(COLUMNS), "switchboard")
    table.to_csv(a.out, index=False)
    print(sbs.markdown(table))
    return table


if __name__ == "__main__":
    main()
