"""Writes run 59's files from its working directories (see ../README.md#run-59).

  PYTHONPATH=. python docs/reproduction/switchboard/run59/assemble.py RUNS_DIR

RUNS_DIR holds w_dropout_all_s1 and w_dropout_all_s2, or one of them (the other's rows are kept as written before):
from the raw corpus (../run14/overlay.yaml), the release preset (configs/release.yaml) less its dropout sites
(model.dropout_sites: all), seed 1 (dropout_all_s1.yaml: run 48's training again) and seed 2
(../run49/dropout_all_s2.yaml: run 49's), side by side under MPS, each beside its LM, and evaluated, then (a second
invocation in each directory) hit-tested on the authors' 0.5k list and ours. Neither earlier run kept its checkpoint.
Writes what run 55's assembler writes and prints each variant beside the preset with the same seed; then checks that
each is its earlier run's model again (every measure and epoch equal), so its hits are that training's.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run58_assemble", HERE.parent / "run58" / "assemble.py")
run58 = importlib.util.module_from_spec(_spec)      # check_same, and run 55's beside_preset through it
_spec.loader.exec_module(run58)

VARIANTS = {f"dropout_all_s{s}": f"configs/release.yaml less its dropout sites (model.dropout_sites: all), seed {s} "
            f"(run {47 + s}'s training again, hit-tested)" for s in (1, 2)}
SAME_AS = {"dropout_all_s1": ("run48", "dropout_all"), "dropout_all_s2": ("run49", "dropout_all_s2")}

if __name__ == "__main__":
    run58.run55.beside_preset("run59", HERE, Path(sys.argv[1]), VARIANTS,
                              "Switchboard baselines: the release preset less its dropout sites, seeds 1 and 2 "
                              "again, beside the preset with the same seed")
    for variant in run58.run55.run51.run48.evaluated_dirs(Path(sys.argv[1]), VARIANTS):    # those in RUNS_DIR
        run58.check_same(variant, *SAME_AS[variant], HERE)
