"""Writes run 63's files from its working directory (see ../README.md#run-63).

  PYTHONPATH=. python docs/reproduction/switchboard/run63/assemble.py RUNS_DIR

RUNS_DIR holds w_release_momentum: run 45's momentum training again (configs/paper_levels.yaml's seq2seq from the raw
corpus, ../run14/overlay.yaml, with the release's optimiser, ../run45/release_momentum.yaml) beside its LM under MPS,
evaluated, then (a second invocation in the same directory) hit-tested on the authors' 0.5k list and ours. Run 62's
assembler with this run's variant: the same files, the rows beside configs/paper_levels.yaml's own baseline (run 19)
and the paper's, and the check that the training is run 45's again.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run62_assemble", HERE.parent / "run62" / "assemble.py")
run62 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run62)

if __name__ == "__main__":
    run62.main(Path(sys.argv[1]), "run63", HERE, ["release_momentum"],
               "Switchboard baselines: configs/paper_levels.yaml plus the release's momentum, hit-tested (hits: "
               "sample-avg; train: the authors' 0.5k list, test: ours)")
