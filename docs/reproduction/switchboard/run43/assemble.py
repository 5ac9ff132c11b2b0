"""Writes run 43's files from its working directory (see ../README.md#run-43).

  PYTHONPATH=. python docs/reproduction/switchboard/run43/assemble.py LSTM_DIR

LSTM_DIR: run 41's command for the io-mode row (Algorithm 1 on the authors' 2.5k list in io-mode, its hit tests on
both lists and its evaluation) with the search's speed options. Same checks and files as ../run41/assemble.py.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run41_assemble", HERE.parent / "run41" / "assemble.py")
run41 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run41)

if __name__ == "__main__":
    run41.main(Path(sys.argv[1]), model="negtr-io-2.5k", out=HERE)
