"""Writes run 52's files from its working directory (see ../README.md#run-52).

  PYTHONPATH=. python docs/reproduction/switchboard/run52/assemble.py RUNS_DIR

RUNS_DIR holds w_preset_s4: the release preset's seq2seq (configs/release.yaml) from the raw corpus
(../run14/overlay.yaml) with seed 4 (preset_s4.yaml), trained under MPS, evaluated and hit-tested on the authors' 0.5k
list and ours, as run 51 did for seed 3. Writes the files run 51's assembler writes (models.csv, hits.csv, the curve,
stage_seconds.csv, the run's rows of ../wall_times.csv) and prints every seed of the preset measured so far (runs 46,
49, 51 and this one) beside the paper, with their mean, standard deviation and range.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run51_assemble", HERE.parent / "run51" / "assemble.py")
run51 = importlib.util.module_from_spec(_spec)      # its assemble: rows, hit rates from the logs, every seed
_spec.loader.exec_module(run51)

VARIANTS = {"preset_s4": "configs/release.yaml, seed 4"}

if __name__ == "__main__":
    run51.assemble("run52", HERE, Path(sys.argv[1]), VARIANTS, run51.EARLIER + [("run51", "preset_s3")])
