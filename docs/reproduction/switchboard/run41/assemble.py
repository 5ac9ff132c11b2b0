"""Writes run 41's files from its working directory (see ../README.md#run-41).

  PYTHONPATH=. python docs/reproduction/switchboard/run41/assemble.py LSTM_DIR

LSTM_DIR: config.yaml's LSTM on the coherent base (../run20/overlay.yaml) from the raw corpus: Table 8, Algorithm 1
on the authors' 2.5k list in o-mode, its hit tests on both lists and its evaluation. Checks Table 8 against run 20's
(the baseline must be the one whose hit tests runs 20 and 31 committed), then writes hits.csv (in
../run31/hits.csv's layout), models.csv, table8.csv, the curve, stage_seconds.csv and the run's rows of
../wall_times.csv; prints Table 3's sample-avg rows of the coherent base, run 31's baseline and runs 31, 32 and 41's
o-mode models.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # its stage_seconds, write_wall_times and run15's evaluated
_spec.loader.exec_module(run32)

MODEL = "negtr-o-2.5k"


def main(lstm: Path, model: str = MODEL, out: Path = HERE) -> None:
    """Writes ``model``'s files into ``out`` (run 43 calls it for the io-mode row)."""
    run = out.name
    sw = lstm / "results" / "switchboard"
    table8 = pd.read_csv(sw / "table8.csv").assign(arch="lstm")
    run20 = pd.read_csv(HERE.parent / "run20" / "table8.csv").assign(arch="lstm")
    assert table8.equals(run20), "Table 8 differs from run 20's: not the baseline of runs 20 and 31"
    table8.to_csv(out / "table8.csv", index=False)

    hits = pd.concat([pd.read_csv(sw / "hits" / model / f"{lst}_rates.csv").assign(arch="lstm", model=model, list=lst)
                      for lst in ("train", "test")])
    hits = hits[["arch", "model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]
    hits.to_csv(out / "hits.csv", index=False)
    models = pd.DataFrame([{"arch": "lstm", "model": model, **run32.evaluated(sw / "eval" / model)}])
    models.to_csv(out / "models.csv", index=False)
    (out / f"lstm_{model}_curve.csv").write_text((sw / "models" / f"{model}_curve.csv").read_text())

    seconds = run32.stage_seconds(lstm, "lstm")
    seconds.to_csv(out / "stage_seconds.csv", index=False)
    run32.write_wall_times(run, seconds)

    earlier = sorted({"run31", "run32", "run41"} - {run})
    before = [pd.read_csv(HERE.parent / r / "hits.csv").assign(run=r[3:]) for r in earlier]
    both = pd.concat([*before, hits.assign(run=run[3:])]).query("arch == 'lstm'")
    avg = both[both["hit_type"].str.endswith("sample_avg")]
    print("Table 3 on the coherent base, sample-avg hit rates (train: the authors' 0.5k list; test: ours)\n",
          avg.pivot_table(index=["run", "model"], columns=["list", "hit_type"], values="rate").round(4).to_string())
    print(models.set_index("model")[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4).to_string())
    curve = pd.read_csv(out / f"lstm_{model}_curve.csv")
    first = curve[curve["round"] == 0].groupby("epoch")["hits"].sum()
    print("Algorithm 1's own count of targets hit at each epoch's first round:", first.to_dict())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
