"""Writes run 57's files from its working directories (see ../README.md#run-57).

  PYTHONPATH=. python docs/reproduction/switchboard/run57/assemble.py RUNS_DIR

RUNS_DIR holds w_preset_s2 and w_init_one_hot_maps_s2, or one of them (the other's rows are kept as written before):
from the raw corpus (../run14/overlay.yaml), the release preset (configs/release.yaml) with seed 2 again
(../run49/preset_s2.yaml: run 49 trained it and never hit-tested it) and the preset with only the release's biased
one-hot maps, seed 2 (init_one_hot_maps_s2.yaml; run 50 trained it with seed 1), side by side under MPS and evaluated,
then (a second invocation in each directory) hit-tested on the authors' 0.5k list and ours. Writes what run 55's
assembler writes and prints each variant beside the preset with seed 2 (run 49); preset_s2's difference is the check
that it is run 49's model again (every measure equal), so its hits are that seed's.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run55_assemble", HERE.parent / "run55" / "assemble.py")
run55 = importlib.util.module_from_spec(_spec)      # beside_preset: the files and the comparison by seed
_spec.loader.exec_module(run55)

VARIANTS = {
    "preset_s2": "configs/release.yaml, seed 2 (run 49's training again, hit-tested)",
    "init_one_hot_maps_s2": "configs/release.yaml with model.init: release_one_hot_maps (no N(0, 1) decoder "
                            "embedding), seed 2",
}

if __name__ == "__main__":
    run55.beside_preset("run57", HERE, Path(sys.argv[1]), VARIANTS,
                        "Switchboard baselines: the release preset with seed 2 again, and with only its one-hot maps, "
                        "beside the preset with the same seed")
