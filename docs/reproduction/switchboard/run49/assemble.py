"""Writes run 49's files from its working directories (see ../README.md#run-49).

  PYTHONPATH=. python docs/reproduction/switchboard/run49/assemble.py RUNS_DIR

RUNS_DIR holds w_<variant> for the variants that ran: the release preset's seq2seq (configs/release.yaml) and run 48's
preset less its dropout sites, both from the raw corpus (../run14/overlay.yaml) with the second seed instead of the
first, trained side by side under MPS and evaluated. Writes models.csv, <variant>_seq2seq_curve.csv,
stage_seconds.csv and the run's rows of ../wall_times.csv as run 48 does; prints each seed-2 row beside its seed-1 row
(run 46's preset, run 48's dropout_all) and the paper's.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run48_assemble", HERE.parent / "run48" / "assemble.py")
run48 = importlib.util.module_from_spec(_spec)  # its row, evaluated_dirs; run 45's write_variants, print_variants
_spec.loader.exec_module(run48)
run45 = run48.run45

VARIANTS = {"preset_s2": "configs/release.yaml, seed 2",
            "dropout_all_s2": "configs/release.yaml less the reading model.dropout_sites: all, seed 2"}


def row(run: Path, variant: str) -> dict:
    return {**run48.row(run, variant, VARIANTS[variant]), "seed": 2}


def main(runs: Path) -> None:
    dirs = run48.evaluated_dirs(runs, VARIANTS)
    models = run45.write_variants("run49", HERE, dirs, row)

    seed1 = pd.concat([pd.read_csv(HERE.parent / "run46" / "models.csv").set_index("variant").loc[["preset_momentum"]]
                       .rename(index={"preset_momentum": "preset (seed 1, run 46)"}),
                       pd.read_csv(HERE.parent / "run48" / "models.csv").set_index("variant").loc[["dropout_all"]]
                       .rename(index={"dropout_all": "dropout_all (seed 1, run 48)"})]).reset_index()
    table = pd.concat([run45.PAPER, seed1, models])
    run45.print_variants("Switchboard baselines, seed 1 and seed 2: the release preset, and the preset less its "
                         "dropout sites", table.set_index("variant")[run48.COLUMNS[:-1]], HERE, dirs,
                         ("preset seed 1", HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
