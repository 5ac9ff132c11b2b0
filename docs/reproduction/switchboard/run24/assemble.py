"""Writes run 24's files from its working directories (see ../transformer.md#run-24).

  PYTHONPATH=. python docs/reproduction/switchboard/run24/assemble.py RUNS_DIR

RUNS_DIR holds transformer_shared (ended in its epoch 8, after 7 finished epochs) and transformer_batch128 (all 20
epochs), each with the results/ and logs/ of its Snakemake run. Writes <variant>_seq2seq_curve.csv (the curve file
where training ended, else the epochs its log reports) and prints each variant's best epoch beside run 17's.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)


def best(curve: pd.DataFrame) -> str:
    r = curve.loc[curve["valid_ppl"].idxmin()]
    return f"best valid PPL {r['valid_ppl']:.2f} at epoch {int(r['epoch'])} of {len(curve)}"


def main(runs: Path) -> None:
    run17 = pd.read_csv(HERE.parent / "run17" / "transformer_plateau_seq2seq_curve.csv")
    print(f"run 17 (transformer_plateau): {best(run17)}")
    for variant in ("transformer_shared", "transformer_batch128"):
        curve = run15.curve(runs / variant, "seq2seq")
        curve.to_csv(HERE / f"{variant}_seq2seq_curve.csv", index=False)
        print(f"{variant}: {best(curve)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
