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

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run48_assemble", HERE.parent / "run48" / "assemble.py")
run48 = importlib.util.module_from_spec(_spec)      # its row and beside_earlier
_spec.loader.exec_module(run48)

VARIANTS = {"init_one_hot_maps": "configs/release.yaml with model.init: release_one_hot_maps (no N(0, 1) decoder "
                                 "embedding)",
            "init_decoder_embedding": "configs/release.yaml with model.init: release_decoder_embedding (no biased "
                                      "one-hot maps)"}


def row(run: Path, variant: str) -> dict:
    return {**run48.row(run, variant, VARIANTS[variant]), "seed": 1}


def main(runs: Path) -> None:
    run48.beside_earlier("run50", runs, VARIANTS, row,
                         {("run46", "preset_momentum"): "preset (seed 1, run 46)",
                          ("run49", "preset_s2"): "preset (seed 2, run 49)"},
                         "Switchboard baselines: the release preset with one part of the release's initialisation "
                         "each, against the whole preset")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
