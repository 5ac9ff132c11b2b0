"""Writes run 48's files from its working directories (see ../README.md#run-48).

  PYTHONPATH=. python docs/reproduction/switchboard/run48/assemble.py RUNS_DIR

RUNS_DIR holds w_<variant> for the variants that ran: configs/release.yaml's seq2seq from the raw corpus
(../run14/overlay.yaml) less one release reading each (this folder's overlays), trained side by side under MPS and
evaluated. Writes models.csv (per variant: test PPL, Table 4's greedy max-ratio, Ent-2, Ent-3, both BLEU-4
definitions, the epoch kept, training seconds), <variant>_seq2seq_curve.csv, stage_seconds.csv and the run's rows of
../wall_times.csv; prints the rows beside the preset's own baseline and the release's recipe on paper_levels (run 46).
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # its stage_seconds, write_wall_times and evaluated
_spec.loader.exec_module(run32)

VARIANTS = {"shuffled": "train.shuffle: true, train.drop_last_batch: false",
            "dropout_all": "model.dropout_sites: all",
            "cut_paper": "preprocess.target_cut: paper"}
COLUMNS = ["test_ppl", "max_ratio", "ent2", "ent3", "bleu4_sentence_avg", "kept_epoch"]


def row(run: Path, variant: str) -> dict:
    sw = run / "results" / "switchboard"
    curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")
    bench = pd.read_csv(run / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv", sep="\t")
    return {"variant": variant, "setting": "configs/release.yaml less the reading: " + VARIANTS[variant],
            **run32.evaluated(sw / "eval" / "baseline"), "kept_epoch": int(curve["epoch"].iloc[-1]),
            "kept_valid_ppl": float(curve["valid_ppl"].iloc[-1]), "train_seq2seq_s": float(bench["s"][0])}


def main(runs: Path) -> None:
    dirs = {v: runs / f"w_{v}" for v in VARIANTS if (runs / f"w_{v}" / "results/switchboard/eval/baseline").is_dir()}
    if not dirs:
        sys.exit(f"{runs}: no w_<variant>/results/switchboard/eval/baseline of {', '.join(VARIANTS)}")
    models = pd.DataFrame([row(d, v) for v, d in dirs.items()])
    models.to_csv(HERE / "models.csv", index=False)
    for v, d in dirs.items():
        (HERE / f"{v}_seq2seq_curve.csv").write_text((d / "results" / "switchboard" / "models" /
                                                      "seq2seq_curve.csv").read_text())
    seconds = pd.concat([run32.stage_seconds(d, v) for v, d in dirs.items()]).rename(columns={"arch": "variant"})
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)
    run32.write_wall_times("run48", seconds.assign(stage=seconds["variant"] + ":" + seconds["stage"]))

    run46 = pd.read_csv(HERE.parent / "run46" / "models.csv").set_index("variant")
    named = {"preset_momentum": "release preset (run 46)", "release_recipe": "paper_levels + init + optimiser (run 46)"}
    paper = pd.DataFrame([{"variant": "paper", "test_ppl": 42.81, "max_ratio": 0.374, "ent2": 2.71, "ent3": 2.42,
                           "bleu4_sentence_avg": 0.476}])
    table = pd.concat([paper, run46.loc[list(named)].rename(index=named).reset_index(), models])
    print("Switchboard baselines: configs/release.yaml less one release reading each\n",
          table.set_index("variant")[COLUMNS].round(4).to_string())
    curves = pd.DataFrame({v: pd.read_csv(HERE / f"{v}_seq2seq_curve.csv")["valid_ppl"] for v in dirs})
    curves.insert(0, "preset", pd.read_csv(HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv")["valid_ppl"])
    curves.index += 1
    print("validation PPL by epoch\n", curves.round(2).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
