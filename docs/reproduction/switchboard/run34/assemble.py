"""Writes runs 34 and 35's files from their working directory (see ../transformer.md#runs-34-and-35).

  PYTHONPATH=. python docs/reproduction/switchboard/run34/assemble.py RUN34_COPY TRANSFORMER_DIR

TRANSFORMER_DIR: configs/transformer.yaml on the coherent base (../run20/overlay.yaml), first with
malicious_epochs12.yaml (run 34: Table 8, Algorithm 1 on the authors' 0.5k list in o- and io-mode, their hit tests and
evaluations), whose results/switchboard/{hits,eval,table8.csv}, curves and benchmarks_out were then copied to
RUN34_COPY; then, in the same directory, with malicious_epochs12_lambda_pos2.yaml (run 35: only Algorithm 1 and what
follows ran again). Writes hits.csv and models.csv (a `run` column; ../run32/hits.csv's layout otherwise), table8.csv
and stage_seconds.csv; checks that Table 8 equals run 31's and that run 34's Algorithm 1 curves are the first 12
epochs of run 32's byte for byte (the 20-epoch run's trajectory, stopped earlier); then prints Table 3's sample-avg
rows beside run 31's baseline and run 32's 20-epoch models.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run32)


def main(run34: Path, transformer: Path) -> None:
    sw35 = transformer / "results" / "switchboard"
    dirs = {34: run34, 35: sw35}                      # run 34's copy holds hits/ and eval/ as results/switchboard does
    hits = pd.concat([run32.hit_rows(sw, "transformer").assign(run=run) for run, sw in dirs.items()])
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"run": run, "arch": "transformer", "model": m, **run32.evaluated(sw / "eval" / m)}
                           for run, sw in dirs.items() for m in run32.NEGTR])
    models.to_csv(HERE / "models.csv", index=False)

    table8 = pd.read_csv(run34 / "table8.csv").assign(arch="transformer")
    run31 = pd.read_csv(HERE.parent / "run31" / "table8.csv").query("arch == 'transformer'").reset_index(drop=True)
    assert table8.equals(run31), "Table 8 differs from run 31's"
    assert pd.read_csv(sw35 / "table8.csv").assign(arch="transformer").equals(run31), "run 35 retrained the baseline"
    table8.to_csv(HERE / "table8.csv", index=False)
    for name in run32.NEGTR:
        ours = (run34 / f"{name}_curve.csv").read_text()
        full = (HERE.parent / "run32" / f"transformer_{name}_curve.csv").read_text()
        epochs = pd.read_csv(run34 / f"{name}_curve.csv")["epoch"]
        assert epochs.max() == 12 and full.startswith(ours), f"{name}: not run 32's first 12 epochs"
        (HERE / f"run35_{name}_curve.csv").write_text((sw35 / "models" / f"{name}_curve.csv").read_text())

    seconds = pd.concat([run32.stage_seconds(run34, "transformer").assign(run=34),
                         run32.stage_seconds(transformer, "transformer").assign(run=35)])
    seconds = seconds[(seconds["run"] == 34) | seconds["stage"].str.contains("negtr")]   # run 35 reran only these
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)

    run32.print_transformer_runs(hits, models)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
