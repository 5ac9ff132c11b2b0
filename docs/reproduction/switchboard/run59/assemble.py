"""Writes run 59's files from its working directory (see ../README.md#run-59).

  PYTHONPATH=. python docs/reproduction/switchboard/run59/assemble.py RUNS_DIR

RUNS_DIR holds w_dropout_all_s1: from the raw corpus (../run14/overlay.yaml), the release preset (configs/release.yaml)
less its dropout sites (model.dropout_sites: all), seed 1 (dropout_all_s1.yaml: run 48's training, which kept no
checkpoint), beside its LM under MPS and evaluated, then (a second invocation) hit-tested on the authors' 0.5k list and
ours. Writes what run 55's assembler writes and prints the variant beside the preset with seed 1; then checks that it
is run 48's model again (every measure and epoch equal), so its hits are that training's. Run 61 did the same for seed
2 (../run61/assemble.py).
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run58_assemble", HERE.parent / "run58" / "assemble.py")
run58 = importlib.util.module_from_spec(_spec)      # retrained: the files, the seed comparison and check_same
_spec.loader.exec_module(run58)

VARIANTS = {"dropout_all_s1": "configs/release.yaml less its dropout sites (model.dropout_sites: all), seed 1 "
                              "(run 48's training again, hit-tested)"}
SAME_AS = {"dropout_all_s1": ("run48", "dropout_all")}

if __name__ == "__main__":
    run58.retrained("run59", HERE, Path(sys.argv[1]), VARIANTS, SAME_AS,
                    "Switchboard baselines: the release preset less its dropout sites, seed 1 again, beside the preset "
                    "with seed 1")
