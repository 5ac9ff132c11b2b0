"""Writes run 45's files from its three working directories (see ../README.md#run-45).

  PYTHONPATH=. python docs/reproduction/switchboard/run45/assemble.py RUNS_DIR

RUNS_DIR holds w_file_order, w_release_init and w_release_momentum: configs/paper_levels.yaml's seq2seq from the raw
corpus (../run14/overlay.yaml) with one more overlay of this folder each, trained side by side and evaluated. Writes
models.csv (per variant: test PPL, Table 4's greedy max-ratio, Ent-2, Ent-3, both BLEU-4 definitions, the epoch kept,
training seconds), <variant>_seq2seq_curve.csv, stage_seconds.csv and the run's rows of ../wall_times.csv; prints
the rows beside configs/paper_levels.yaml's own baseline (run 19) and the release preset's (run 15).
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # its stage_seconds, write_wall_times and run 15's evaluated
_spec.loader.exec_module(run32)

VARIANTS = {"file_order": "train.shuffle: false, train.drop_last_batch: true",
            "release_init": "model.init: release",
            "release_momentum": "datasets.switchboard.train.momentum: 0.9, train.reset_momentum_each_epoch: true, "
                                "train.clip_scope: per_module"}
COLUMNS = ["test_ppl", "max_ratio", "ent2", "ent3", "bleu4_sentence_avg"]
PAPER = pd.DataFrame([{"variant": "paper", "test_ppl": 42.81, "max_ratio": 0.374, "ent2": 2.71, "ent3": 2.42,
                       "bleu4_sentence_avg": 0.476}])      # the paper's Switchboard baseline (Tables 4, 8 and 9)


def row(run: Path, variant: str) -> dict:
    sw = run / "results" / "switchboard"
    curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")
    bench = pd.read_csv(run / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv", sep="\t")
    return {"variant": variant, "setting": VARIANTS[variant], **run32.evaluated(sw / "eval" / "baseline"),
            "kept_epoch": int(curve.loc[curve["valid_ppl"].idxmin(), "epoch"]),
            "kept_valid_ppl": curve["valid_ppl"].min(), "train_seq2seq_s": float(bench["s"][0])}


def write_variants(run: str, out: Path, dirs: dict, row) -> pd.DataFrame:
    """A side-by-side run of baselines, one working directory per variant (``dirs``: variant -> directory): writes
    ``out``/models.csv (``row(directory, variant)`` per variant), <variant>_seq2seq_curve.csv, stage_seconds.csv and
    ``run``'s rows of ../wall_times.csv; returns the models."""
    models = pd.DataFrame([row(d, v) for v, d in dirs.items()])
    models.to_csv(out / "models.csv", index=False)
    for v, d in dirs.items():
        (out / f"{v}_seq2seq_curve.csv").write_text((d / "results" / "switchboard" / "models" /
                                                     "seq2seq_curve.csv").read_text())
    seconds = pd.concat([run32.stage_seconds(d, v) for v, d in dirs.items()]).rename(columns={"arch": "variant"})
    seconds.to_csv(out / "stage_seconds.csv", index=False)
    run32.write_wall_times(run, seconds.assign(stage=seconds["variant"] + ":" + seconds["stage"]))
    return models


def main(runs: Path) -> None:
    models = write_variants("run45", HERE, {v: runs / f"w_{v}" for v in VARIANTS}, row)

    base = pd.read_csv(HERE.parent / "run19" / "models.csv").query("model == 'baseline'").assign(
        variant="paper_levels (run 19)")
    preset = pd.read_csv(HERE.parent / "run15" / "models.csv").query("variant == 'release_preset'").rename(
        columns={"seq2seq_test_ppl": "test_ppl"}).assign(variant="release preset (run 15)")
    table = pd.concat([PAPER, base, models, preset])[["variant", *COLUMNS]].set_index("variant")
    print_variants("Switchboard baselines: configs/paper_levels.yaml plus one release reading each", table, HERE,
                   VARIANTS, ("paper_levels", HERE.parent / "run19" / "paper_levels_seq2seq_curve.csv"))


def print_variants(title: str, table: pd.DataFrame, out: Path, variants, reference: tuple[str, Path]) -> None:
    """Prints ``table`` (a row per model), then the validation PPL by epoch of ``reference`` (name, curve file)
    beside each of ``variants``' curves in ``out``."""
    print(title + "\n", table.round(4).to_string())
    curves = pd.DataFrame({v: pd.read_csv(out / f"{v}_seq2seq_curve.csv")["valid_ppl"] for v in variants})
    curves.insert(0, reference[0], pd.read_csv(reference[1])["valid_ppl"])
    curves.index += 1
    print("validation PPL by epoch\n", curves.round(2).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
