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

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run48_assemble", HERE.parent / "run48" / "assemble.py")
run48 = importlib.util.module_from_spec(_spec)      # its row and beside_earlier
_spec.loader.exec_module(run48)

VARIANTS = {"preset_s2": "configs/release.yaml, seed 2",
            "dropout_all_s2": "configs/release.yaml less the reading model.dropout_sites: all, seed 2"}


def row(run: Path, variant: str) -> dict:
    return {**run48.row(run, variant, VARIANTS[variant]), "seed": 2}


def main(runs: Path) -> None:
    run48.beside_earlier("run49", runs, VARIANTS, row,
                         {("run46", "preset_momentum"): "preset (seed 1, run 46)",
                          ("run48", "dropout_all"): "dropout_all (seed 1, run 48)"},
                         "Switchboard baselines, seed 1 and seed 2: the release preset, and the preset less its "
                         "dropout sites")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
