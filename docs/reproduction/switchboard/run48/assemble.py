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
_spec = importlib.util.spec_from_file_location("run45_assemble", HERE.parent / "run45" / "assemble.py")
run45 = importlib.util.module_from_spec(_spec)      # its write_variants and print_variants; run 32's readers
_spec.loader.exec_module(run45)

VARIANTS = {"shuffled": "train.shuffle: true, train.drop_last_batch: false",
            "dropout_all": "model.dropout_sites: all",
            "cut_paper": "preprocess.target_cut: paper"}
COLUMNS = ["test_ppl", "max_ratio", "ent2", "ent3", "bleu4_sentence_avg", "kept_epoch"]


def row(run: Path, variant: str, setting: str | None = None) -> dict:
    """One model's figures; ``setting`` defaults to this run's: the preset less the variant's reading."""
    sw = run / "results" / "switchboard"
    curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")
    bench = pd.read_csv(run / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv", sep="\t")
    return {"variant": variant, "setting": setting or "configs/release.yaml less the reading: " + VARIANTS[variant],
            **run45.run32.evaluated(sw / "eval" / "baseline"), "kept_epoch": int(curve["epoch"].iloc[-1]),
            "kept_valid_ppl": float(curve["valid_ppl"].iloc[-1]), "train_seq2seq_s": float(bench["s"][0])}


def evaluated_dirs(runs: Path, variants) -> dict:
    """variant -> runs/w_<variant>, for the ``variants`` whose baseline was evaluated there; exits if none was."""
    dirs = {v: runs / f"w_{v}" for v in variants if (runs / f"w_{v}" / "results/switchboard/eval/baseline").is_dir()}
    if not dirs:
        sys.exit(f"{runs}: no w_<variant>/results/switchboard/eval/baseline of {', '.join(variants)}")
    return dirs


def beside_earlier(run: str, runs: Path, variants: dict, row, earlier: dict, title: str,
                   columns: list[str] = COLUMNS[:-1]) -> None:
    """A side-by-side run of the preset's baselines (runs 48, 49, 50): writes ``run``'s files from runs/w_<variant>
    (run 45's write_variants) and prints ``columns`` of its rows beside ``earlier`` ((run, variant) -> name: rows of
    earlier runs' models.csv) and the paper's, with the validation curves beside the preset's seed-1 one (run 46)."""
    dirs = evaluated_dirs(runs, variants)
    models = run45.write_variants(run, HERE.parent / run, dirs, row)
    before = [pd.read_csv(HERE.parent / r / "models.csv").set_index("variant").loc[[v]].rename(index={v: name})
              for (r, v), name in earlier.items()]
    table = pd.concat([run45.PAPER, pd.concat(before).reset_index(), models])
    run45.print_variants(title, table.set_index("variant")[columns], HERE.parent / run, dirs,
                         ("preset seed 1", HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv"))


def main(runs: Path) -> None:
    beside_earlier("run48", runs, VARIANTS, row,
                   {("run46", "preset_momentum"): "release preset (run 46)",
                    ("run46", "release_recipe"): "paper_levels + init + optimiser (run 46)"},
                   "Switchboard baselines: configs/release.yaml less one release reading each", COLUMNS)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
