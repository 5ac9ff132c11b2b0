"""Writes run 56's files from its working directories (see ../README.md#run-56).

  PYTHONPATH=. python docs/reproduction/switchboard/run56/assemble.py RUNS_DIR

RUNS_DIR holds w_shuffled_s2: the release preset's seq2seq (configs/release.yaml) from the raw corpus
(../run14/overlay.yaml) less the release's batch order, with seed 2 (run 48 trained it with seed 1), under MPS and
evaluated, then (a second invocation in the same directory) hit-tested on the authors' 0.5k list and ours. Writes what
run 55's assembler writes and prints the variant beside the preset with seed 2 (run 49), and the difference.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run55_assemble", HERE.parent / "run55" / "assemble.py")
run55 = importlib.util.module_from_spec(_spec)      # beside_preset: the files and the comparison by seed
_spec.loader.exec_module(run55)

VARIANTS = {
    "shuffled_s2": "configs/release.yaml less the release's batch order (mini-batches shuffled each epoch), seed 2",
}

if __name__ == "__main__":
    run55.beside_preset("run56", HERE, Path(sys.argv[1]), VARIANTS,
                        "Switchboard baselines: configs/release.yaml less one release choice, beside the preset with "
                        "the same seed")
