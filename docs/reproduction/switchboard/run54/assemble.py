"""Writes run 54's files from its working directories (see ../README.md#run-54).

  PYTHONPATH=. python docs/reproduction/switchboard/run54/assemble.py RUNS_DIR

RUNS_DIR holds w_preset_s6 and w_preset_s7: the release preset's seq2seq (configs/release.yaml) from the raw corpus
(../run14/overlay.yaml) with seeds 6 and 7 (preset_s6.yaml, preset_s7.yaml), side by side, trained under MPS and
evaluated, then (a second invocation in the same directory) hit-tested on the authors' 0.5k list and ours, as runs
52 and 53 did for seeds 4 and 5. Writes the files run 51's assembler writes (models.csv, hits.csv, the curve,
stage_seconds.csv, the run's rows of ../wall_times.csv) and prints every seed of the preset measured so far (runs
46, 49, 51, 52, 53 and this one) beside the paper, with their mean, standard deviation and range.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run51_assemble", HERE.parent / "run51" / "assemble.py")
run51 = importlib.util.module_from_spec(_spec)      # its assemble: rows, hit rates, every seed
_spec.loader.exec_module(run51)

VARIANTS = {"preset_s6": "configs/release.yaml, seed 6", "preset_s7": "configs/release.yaml, seed 7"}

if __name__ == "__main__":
    run51.assemble("run54", HERE, Path(sys.argv[1]), VARIANTS,
                   run51.EARLIER + [("run51", "preset_s3"), ("run52", "preset_s4"),
                                     ("run53", "preset_s5")])
