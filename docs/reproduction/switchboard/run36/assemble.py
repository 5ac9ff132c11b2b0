"""Writes runs 36 and 37's files from their working directories (see ../transformer.md, "Runs 36 and 37").

  PYTHONPATH=. python docs/reproduction/switchboard/run36/assemble.py BASE_DIR RUN36_DIR RUN37_DIR

BASE_DIR: configs/transformer.yaml on the coherent base (../run20/overlay.yaml), run to Table 8, the thresholds and
the authors' 0.5k list. Its directory (outputs and Snakemake's records) was then copied twice, so neither variant
retrained anything, and each copy ran Algorithm 1 on that list in o- and io-mode with its hit tests and evaluations,
side by side: RUN36_DIR with lr_neg = lr_pos = 0.005 (lr_005.yaml), RUN37_DIR with malicious.momentum 0
(momentum0.yaml), both with malicious.eval_every_epoch (eval_every_epoch.yaml). Writes hits.csv and models.csv (a
`run` column; ../run32's layout otherwise), table8.csv, the curves, ppl_by_epoch.csv (each epoch's test PPL) and
stage_seconds.csv; checks that Table 8 equals run 31's in all three directories and that each model's last epoch's
PPL is its evaluation's; then prints Table 3's sample-avg rows beside run 31's baseline and run 32's models, and each
epoch's test PPL.
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


def main(base: Path, variants: dict[int, Path]) -> None:
    dirs = {run: w / "results" / "switchboard" for run, w in variants.items()}
    hits = pd.concat([run32.hit_rows(sw, "transformer").assign(run=run) for run, sw in dirs.items()])
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"run": run, "arch": "transformer", "model": m, **run32.evaluated(sw / "eval" / m)}
                           for run, sw in dirs.items() for m in run32.NEGTR])
    models.to_csv(HERE / "models.csv", index=False)

    run32.check_copied_baseline(base, dirs, HERE, BASELINE_PPL)

    ppl = []
    for run, sw in dirs.items():
        for name in run32.NEGTR:
            text = (sw / "models" / f"{name}_curve.csv").read_text()
            (HERE / f"run{run}_{name}_curve.csv").write_text(text)
            curve = pd.read_csv(sw / "models" / f"{name}_curve.csv")
            per_epoch = curve.groupby("epoch")["test_ppl"].last().dropna()
            ppl += [{"run": run, "model": name, "epoch": e, "test_ppl": round(p, 4),
                     "vs_baseline": round(p / BASELINE_PPL - 1, 4)} for e, p in per_epoch.items()]
    ppl = pd.DataFrame(ppl)
    ppl.to_csv(HERE / "ppl_by_epoch.csv", index=False)
    for run, sw in dirs.items():                      # the last epoch's PPL is the evaluated model's
        for name in run32.NEGTR:
            last = ppl.query("run == @run and model == @name")["test_ppl"].iloc[-1]
            evaluated = models.query("run == @run and model == @name")["test_ppl"].iloc[0]
            assert abs(last - evaluated) < 1e-3, f"run {run} {name}: last epoch {last} vs evaluated {evaluated}"

    run32.write_negtr_stage_seconds(base, variants, HERE)

    run32.print_transformer_runs(hits, models)
    print("test PPL after each epoch\n",
          ppl.pivot_table(index="epoch", columns=["run", "model"], values="test_ppl").to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]), {36: Path(sys.argv[2]), 37: Path(sys.argv[3])})
