"""Writes run 28's files from its working directory (see ../transformer.md#run-28).

  PYTHONPATH=. python docs/reproduction/switchboard/run28/assemble.py RUN_DIR

RUN_DIR holds the results/ and logs/ of run 28 (run 25's Transformer baseline trained again, Algorithm 1 on the
authors' 0.5k list in o- and io-mode, Algorithm 2 for two epochs at both r_thres). Writes hits.csv (the neg-trained
models' hit rates on both lists, in run25/hits.csv's layout), models.csv (per model: test PPL, Table 4's greedy
max-ratio, Ent-2, Ent-3, its most frequent response, both BLEU-4 definitions) and the four curves; then prints
Table 3's and Table 4's Transformer rows beside the baseline's (run25/hits.csv, run25/metrics.json).
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)
evaluated = run15.evaluated          # run 15's reader of one model's eval/ folder

NEGTR = ("negtr-o-0.5k", "negtr-io-0.5k")
FREQ = ("freq-0.1", "freq-0.01")


def hit_rows(sw: Path) -> pd.DataFrame:
    frames = []
    for model in NEGTR:
        for lst in ("train", "test"):
            df = pd.read_csv(sw / "hits" / model / f"{lst}_rates.csv")
            frames.append(df.assign(model=model, list=lst))
    return pd.concat(frames)[["model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]


def main(run: Path) -> None:
    sw = run / "results" / "switchboard"
    hits = hit_rows(sw)
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"model": m, **evaluated(sw / "eval" / m)} for m in ("baseline", *NEGTR, *FREQ)])
    models.to_csv(HERE / "models.csv", index=False)
    for name in (*NEGTR, *FREQ):
        (HERE / f"{name}_curve.csv").write_text((sw / "models" / f"{name}_curve.csv").read_text())

    base = pd.read_csv(HERE.parent / "run25" / "hits.csv")
    both = pd.concat([base, hits])
    avg = both[both["hit_type"].str.endswith("sample_avg")]
    table3 = avg.pivot_table(index="model", columns=["list", "hit_type"], values="rate").loc[["baseline", *NEGTR]]
    print("Table 3, sample-avg hit rates (train: the authors' 0.5k list; test: ours)\n", table3.round(4))
    print(models.set_index("model")[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
