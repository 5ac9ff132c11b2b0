"""Writes runs 38-40's files from their working directories (see ../transformer.md, "Runs 38 to 40").

  PYTHONPATH=. python docs/reproduction/switchboard/run38/assemble.py BASE_DIR RUN38_DIR RUN39_DIR RUN40_DIR

BASE_DIR: configs/transformer.yaml on the coherent base (../run20/overlay.yaml), run to Table 8, the thresholds and
the authors' 0.5k list. Its directory (outputs and Snakemake's records) was then copied, so no variant retrained
anything, and each copy ran Algorithm 1 on that list with its hit tests and evaluations: RUN38_DIR with lr_neg =
lr_pos = 0.0025 (lr_0025.yaml), o- and io-mode; RUN39_DIR with lr_pos 0.0025 (lr_pos_0025.yaml), o-mode; both with
../run36/eval_every_epoch.yaml and side by side; then RUN40_DIR alone with lr_neg = lr_pos = 0.0035 (lr_0035.yaml),
o-mode, without the per-epoch PPL. Writes hits.csv, models.csv (a `run` column; ../run36's layout), table8.csv, the
curves, ppl_by_epoch.csv and stage_seconds.csv; checks that Table 8 equals run 31's in every directory and that each
model's last epoch's PPL, where recorded, is its evaluation's; then prints Table 3's sample-avg rows beside run 31's
baseline and run 32's models, each model's rounds with a step, and each epoch's test PPL.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run32)

BASELINE_PPL = 39.86                 # run 31's Table 8 seq2seq test PPL, checked below
MODELS = {38: run32.NEGTR, 39: ("negtr-o-0.5k",), 40: ("negtr-o-0.5k",)}


def main(base: Path, variants: dict[int, Path]) -> None:
    dirs = {run: w / "results" / "switchboard" for run, w in variants.items()}
    hits = pd.concat([pd.read_csv(sw / "hits" / m / f"{lst}_rates.csv").assign(
        arch="transformer", model=m, list=lst, run=run)
        for run, sw in dirs.items() for m in MODELS[run] for lst in ("train", "test")])
    hits = hits[["arch", "model", "list", "hit_type", "hits", "targets", "rate", "skipped", "run"]]
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"run": run, "arch": "transformer", "model": m, **run32.evaluated(sw / "eval" / m)}
                           for run, sw in dirs.items() for m in MODELS[run]])
    models.to_csv(HERE / "models.csv", index=False)

    run32.check_copied_baseline(base, dirs, HERE, BASELINE_PPL)

    ppl, rounds = [], []
    for run, sw in dirs.items():
        for name in MODELS[run]:
            text = (sw / "models" / f"{name}_curve.csv").read_text()
            (HERE / f"run{run}_{name}_curve.csv").write_text(text)
            curve = pd.read_csv(sw / "models" / f"{name}_curve.csv")
            rounds.append({"run": run, "model": name, "rounds_with_a_step": int(curve["neg_loss"].notna().sum())})
            if "test_ppl" not in curve:                     # run 40 ran without malicious.eval_every_epoch
                continue
            per_epoch = curve.groupby("epoch")["test_ppl"].last().dropna()
            ppl += [{"run": run, "model": name, "epoch": e, "test_ppl": round(p, 4),
                     "vs_baseline": round(p / BASELINE_PPL - 1, 4)} for e, p in per_epoch.items()]
    ppl = pd.DataFrame(ppl)
    ppl.to_csv(HERE / "ppl_by_epoch.csv", index=False)
    for (run, name), last in ppl.groupby(["run", "model"])["test_ppl"].last().items():
        evaluated = models.query("run == @run and model == @name")["test_ppl"].iloc[0]
        assert abs(last - evaluated) < 1e-3, f"run {run} {name}: last epoch {last} vs evaluated {evaluated}"

    run32.write_negtr_stage_seconds(base, variants, HERE)

    run32.print_transformer_runs(hits, models)
    print(pd.DataFrame(rounds).to_string(index=False))
    print("test PPL after each epoch\n",
          ppl.pivot_table(index="epoch", columns=["run", "model"], values="test_ppl").to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]), {38: Path(sys.argv[2]), 39: Path(sys.argv[3]), 40: Path(sys.argv[4])})
