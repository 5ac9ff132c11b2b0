"""Writes run 19's files from its two working directories (see ../README.md#run-19).

  PYTHONPATH=. python docs/reproduction/switchboard/run19/assemble.py RUNS_DIR

RUNS_DIR holds paper_levels (configs/paper_levels.yaml from the raw corpus: Tables 8 and 3 with Algorithm 1 on the
authors' 0.5k list) and file_order (the same with `train.shuffle: false`, stopped in its seq2seq's epoch 11), each
with the results/, logs/ and benchmarks_out/ of its Snakemake run. Copies table3.csv and table8.csv, and writes
hits.csv (every hit rate of each model on both lists), negtr_epochs.csv (Algorithm 1's own hit count after each
epoch), models.csv (per model: test PPL, Table 4's greedy max-ratio, Ent-2, Ent-3, both BLEU-4 definitions),
wall_times.csv (each job's wall time) and both variants' training curves, <variant>_<kind>_curve.csv; prints
whether the seq2seq's curve equals run 17's.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SW = Path("results") / "switchboard"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run15 = _load("run15_assemble", HERE.parent / "run15" / "assemble.py")
run18 = _load("run18_assemble", HERE.parent / "run18" / "assemble.py")


def hits(run: Path) -> pd.DataFrame:
    frames = [pd.read_csv(rates).assign(model=rates.parent.name, list=rates.name.removesuffix("_rates.csv"))
              for rates in sorted((run / SW / "hits").glob("*/*_rates.csv"))]
    return pd.concat(frames)[["model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]


def models(run: Path) -> pd.DataFrame:
    return pd.DataFrame([{"model": m.parent.name, **run15.evaluated(m.parent)}
                         for m in sorted((run / SW / "eval").glob("*/metrics.json"))])


def wall_times(run: Path) -> pd.DataFrame:
    rows = [{"job": tsv.stem, "seconds": float(pd.read_csv(tsv, sep="\t")["s"][0])}
            for tsv in sorted((run / "benchmarks_out" / "switchboard").glob("*.tsv"))]
    return pd.DataFrame(rows)


def main(runs: Path) -> None:
    levels = runs / "paper_levels"
    for table in ("table3.csv", "table8.csv"):
        shutil.copy(levels / SW / table, HERE / table)
    hits(levels).to_csv(HERE / "hits.csv", index=False)
    run18.negtr_epochs(levels).to_csv(HERE / "negtr_epochs.csv", index=False)
    models(levels).to_csv(HERE / "models.csv", index=False)
    wall_times(levels).to_csv(HERE / "wall_times.csv", index=False)
    for variant in ("paper_levels", "file_order"):
        for kind in ("seq2seq", "lm"):
            run15.curve(runs / variant, kind).to_csv(HERE / f"{variant}_{kind}_curve.csv", index=False)
    base = pd.read_csv(HERE / "paper_levels_seq2seq_curve.csv")
    run17 = pd.read_csv(HERE.parent / "run17" / "release_attention_seq2seq_curve.csv")
    same = base[["train_ppl", "valid_ppl"]].equals(run17[["train_ppl", "valid_ppl"]])
    print(f"paper_levels seq2seq: train and valid PPL of all epochs equal run 17's: {same}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
