"""Writes run 64's files from its working directories (see ../README.md#run-64).

  PYTHONPATH=. python docs/reproduction/switchboard/run64/assemble.py RUNS_DIR

RUNS_DIR holds w_shuffled_s1 and w_init_decoder_embedding_s1: from the raw corpus (../run14/overlay.yaml), the release
preset (configs/release.yaml) less its batch order, or with only the release's decoder embedding, seed 1 (run 48's and
run 50's trainings, which kept no checkpoints), each beside its LM under MPS and evaluated, then (a second invocation)
hit-tested on the authors' 0.5k list and ours. Run 58's assembler: the files, each variant beside the preset with seed
1, and the check that each is the earlier run's model again (every measure and epoch equal), so its hits are that
training's.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run58_assemble", HERE.parent / "run58" / "assemble.py")
run58 = importlib.util.module_from_spec(_spec)      # retrained: the files, the seed comparison and check_same
_spec.loader.exec_module(run58)

VARIANTS = {"shuffled_s1": "configs/release.yaml less its batch order (train.shuffle: true, drop_last_batch: false), "
                           "seed 1 (run 48's training again, hit-tested)",
            "init_decoder_embedding_s1": "configs/release.yaml with only the release's decoder embedding "
                                         "(model.init: release_decoder_embedding), seed 1 (run 50's training again, "
                                         "hit-tested)"}
SAME_AS = {"shuffled_s1": ("run48", "shuffled"), "init_decoder_embedding_s1": ("run50", "init_decoder_embedding")}

if __name__ == "__main__":
    run58.retrained("run64", HERE, Path(sys.argv[1]), VARIANTS, SAME_AS,
                    "Switchboard baselines: the release preset less its batch order, and with only its decoder "
                    "embedding, seed 1 again, beside the preset with seed 1")
