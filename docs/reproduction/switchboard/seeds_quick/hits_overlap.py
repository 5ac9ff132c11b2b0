"""Writes hits_overlap.csv: which targets two seeds of one configuration hit (see README.md here).

  PYTHONPATH=. python docs/reproduction/switchboard/seeds_quick/hits_overlap.py RUN_A RUN_B

RUN_A and RUN_B are working directories of ``snakemake --config scale=quick seed=<seed>`` with tests/shared_data.yaml
and configs/release.yaml, targets results/switchboard/hits/baseline/{train,test}.parquet. Per list and search mode:
the targets searched, how many each seed's baseline hits (sample-avg), how many both hit, and on how many targets the
two searches found the same trigger.
"""

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def overlap(a: Path, b: Path) -> pd.DataFrame:
    rows = []
    for lst in ("train", "test"):
        tables = [pd.read_parquet(run / "results" / "switchboard" / "hits" / "baseline" / f"{lst}.parquet")
                  for run in (a, b)]
        for mode in ("o", "io"):
            ta, tb = (t[(t["mode"] == mode) & ~t["skipped"]].set_index("target") for t in tables)
            hit_a, hit_b = ta[f"{mode}_sample_avg"], tb.loc[ta.index, f"{mode}_sample_avg"]
            rows.append({"list": lst, "mode": mode, "targets": len(ta), "hits_a": int(hit_a.sum()),
                         "hits_b": int(hit_b.sum()), "hit_by_both": int((hit_a & hit_b).sum()),
                         "same_trigger": int((ta["trigger"] == tb.loc[ta.index, "trigger"]).sum())})
    return pd.DataFrame(rows)


def main(a: Path, b: Path) -> None:
    table = overlap(a, b)
    table.to_csv(HERE / "hits_overlap.csv", index=False)
    print(f"sample-avg hits of {a.name} (a) and {b.name} (b)\n", table.to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
