"""Writes run 50's files from its working directories (see ../README.md#run-50).

  PYTHONPATH=. python docs/reproduction/switchboard/run50/assemble.py RUNS_DIR

RUNS_DIR holds w_<variant> for the variants that ran: the release preset's seq2seq (configs/release.yaml) with one part
of the release's initialisation each (model.init: release_one_hot_maps, release_decoder_embedding), both from the raw
corpus (../run14/overlay.yaml) with the first seed, trained side by side under MPS and evaluated. Writes models.csv,
<variant>_seq2seq_curve.csv, stage_seconds.csv and the run's rows of ../wall_times.csv as run 48 does; prints each
row beside the whole preset's two seeds (runs 46 and 49) and the paper's.
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

VARIANTS = {"init_one_hot_maps": "configs/release.yaml with model.init: release_one_hot_maps (no N(0, 1) decoder "
                                 "embedding)",
            "init_decoder_embedding": "configs/release.yaml with model.init: release_decoder_embedding (no biased "
                                      "one-hot maps)"}


def row(run: Path, variant: str) -> dict:
    return {**run48.row(run, variant, VARIANTS[variant]), "seed": 1}


def main(runs: Path) -> None:
    dirs = run48.evaluated_dirs(runs, VARIANTS)
    models = run45.write_variants("run50", HERE, dirs, row)

    preset = pd.concat([pd.read_csv(HERE.parent / "run46" / "models.csv").set_index("variant").loc[["preset_momentum"]]
                        .rename(index={"preset_momentum": "preset (seed 1, run 46)"}),
                        pd.read_csv(HERE.parent / "run49" / "models.csv").set_index("variant").loc[["preset_s2"]]
                        .rename(index={"preset_s2": "preset (seed 2, run 49)"})]).reset_index()
    table = pd.concat([run45.PAPER, preset, models])
    run45.print_variants("Switchboard baselines: the release preset with one part of the release's initialisation "
                         "each, against the whole preset", table.set_index("variant")[run48.COLUMNS[:-1]], HERE,
                         dirs, ("preset seed 1", HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
