"""Writes run 33's files from its working directory (see ../transformer.md#run-33).

  PYTHONPATH=. python docs/reproduction/switchboard/run33/assemble.py TRANSFORMER_DIR

TRANSFORMER_DIR: configs/transformer.yaml on the coherent base (../run20/overlay.yaml) with
malicious_average_last3.yaml: Table 8, Algorithm 1 on the authors' 0.5k list in o- and io-mode, their hit tests and
evaluations. Writes hits.csv (in ../run32/hits.csv's layout), models.csv, table8.csv and stage_seconds.csv; checks that
Table 8 and both Algorithm 1 curves equal run 31's and run 32's byte for byte (the same training: only the model written
differs); then prints Table 3's sample-avg rows beside run 31's baseline and run 32's models (the same run without the
averaging).
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run32)


def main(transformer: Path) -> None:
    sw = transformer / "results" / "switchboard"
    hits = run32.hit_rows(sw, "transformer")
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"arch": "transformer", "model": m, **run32.evaluated(sw / "eval" / m)}
                           for m in run32.NEGTR])
    models.to_csv(HERE / "models.csv", index=False)
    table8 = pd.read_csv(sw / "table8.csv").assign(arch="transformer")
    run31 = pd.read_csv(HERE.parent / "run31" / "table8.csv").query("arch == 'transformer'").reset_index(drop=True)
    assert table8.equals(run31), "Table 8 differs from run 31's"
    table8.to_csv(HERE / "table8.csv", index=False)
    for name in run32.NEGTR:
        curve = (sw / "models" / f"{name}_curve.csv").read_text()
        assert curve == (HERE.parent / "run32" / f"transformer_{name}_curve.csv").read_text(), f"{name}'s curve"
    run32.stage_seconds(transformer, "transformer").to_csv(HERE / "stage_seconds.csv", index=False)

    before = [pd.read_csv(HERE.parent / "run31" / "hits.csv").query("model == 'baseline'").assign(run=31),
              pd.read_csv(HERE.parent / "run32" / "hits.csv").assign(run=32)]
    both = pd.concat([*before, hits.assign(run=33)]).query("arch == 'transformer'")
    avg = both[both["hit_type"].str.endswith("sample_avg")]
    print("Table 3, sample-avg hit rates (train: the authors' 0.5k list; test: ours)\n",
          avg.pivot_table(index=["run", "model"], columns=["list", "hit_type"], values="rate").round(4))
    print(models.set_index("model")[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
