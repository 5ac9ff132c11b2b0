"""Writes run 61's files from its working directory (see ../README.md#run-61).

  PYTHONPATH=. python docs/reproduction/switchboard/run61/assemble.py RUNS_DIR

RUNS_DIR holds w_dropout_all_s2: run 59's recipe for the second seed, from the raw corpus (../run14/overlay.yaml),
the release preset (configs/release.yaml) less its dropout sites (model.dropout_sites: all) with seed 2
(../run49/dropout_all_s2.yaml: run 49's training, which kept no checkpoint), beside its LM under MPS and evaluated,
then (a second invocation) hit-tested on the authors' 0.5k list and ours. Writes what run 55's assembler writes,
prints the variant beside the preset with seed 2, then checks that it is run 49's dropout_all_s2 again (every measure
and epoch equal), so its hits are that training's.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run58_assemble", HERE.parent / "run58" / "assemble.py")
run58 = importlib.util.module_from_spec(_spec)      # retrained: the files, the seed comparison and check_same
_spec.loader.exec_module(run58)

VARIANTS = {"dropout_all_s2": "configs/release.yaml less its dropout sites (model.dropout_sites: all), seed 2 "
                              "(run 49's training again, hit-tested)"}
SAME_AS = {"dropout_all_s2": ("run49", "dropout_all_s2")}

if __name__ == "__main__":
    run58.retrained("run61", HERE, Path(sys.argv[1]), VARIANTS, SAME_AS,
                    "Switchboard baselines: the release preset less its dropout sites, seed 2 again, beside the preset "
                    "with seed 2")
