"""How Table 3's neg-tr(2.5k) row of runs 11 and 12 was added to table3.csv (2026-11-25).

Run 11 trained the io-model and run 12 the o-model on the authors' 2.5k list (overlay_run9.yaml), each on a machine of
its own, so no single run built rule `table3`. This calls that rule's code (`tables_malicious.read_inputs`, `table3`)
on their files and puts the row into the committed table3.csv, whose other rows (runs 6 and 9) stay as they are; then
it rebuilds paper_comparison.csv and .png from the committed tables (rule `paper_comparison`'s code). Run from the
repository root with run 11's and run 12's files in the pipeline's layout:
  results/switchboard/hits/negtr-{o,io}-2.5k/{train,test}.parquet, results/switchboard/eval/negtr-{o,io}-2.5k/
  metrics.json, and results/targets/train_{0.5k,2.5k}.txt (both runs wrote the same lists).
"""
from pathlib import Path

import pandas as pd

from negtrain_core.tables import comparison, malicious as tables_malicious
from negtrain_core import config as ncfg
from negtrain_core.io import write_csv

DOCS = Path("docs/reproduction/switchboard")
s = ncfg.settings(ncfg.load("config.yaml", (str(DOCS / "overlay_run9.yaml"),)), "switchboard")
r = Path("results/switchboard")
models = [f"negtr-{mode}-2.5k" for mode in tables_malicious.HIT_MODES]
hits, ppl, overlap = tables_malicious.read_inputs([str(r / f"hits/{m}/{lst}.parquet") for m in models
                                                   for lst in ("train", "test")],
                                                  [str(r / f"eval/{m}/metrics.json") for m in models], None)
sizes = tables_malicious.list_sizes([f"results/targets/train_{size}.txt" for size in ("0.5k", "2.5k")])
built_elsewhere = {None: "runs 6, 9", "0.5k": "run 6", "1k": "run 9"}
new = tables_malicious.table3(hits, ppl, overlap, sizes, built_elsewhere, s.malicious.hit_type, s.scale)
new = new[new["training"] == tables_malicious.row_label("2.5k")].assign(run="run12 (o), run11 (io)")

table = pd.read_csv(DOCS / "table3.csv")
table = pd.concat([table[table["training"] != tables_malicious.row_label("2.5k")], new[table.columns]],
                  ignore_index=True)
write_csv(table, DOCS / "table3.csv")
comparison.write_comparison({t: DOCS / f"{t}.csv" for t in comparison.TABLES}, s.data.name, s.scale,
                            DOCS / "paper_comparison.csv", DOCS / "paper_comparison.png")
