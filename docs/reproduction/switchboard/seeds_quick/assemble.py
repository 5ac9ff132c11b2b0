"""Writes seeds.csv from the quick-scale Switchboard baselines trained with seeds 1-4 (see README.md here).

  PYTHONPATH=. python docs/reproduction/switchboard/seeds_quick/assemble.py RUNS_DIR

RUNS_DIR holds q_d<seed> (config.yaml) and q_s<seed> (configs/release.yaml), each a working directory of
``snakemake --config scale=quick seed=<seed>`` with tests/shared_data.yaml, target
results/switchboard/eval/baseline/metrics.json. Prints each configuration's spread of max-ratio over the seeds.
"""

import json
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
CONFIGS = {"d": "config.yaml", "s": "configs/release.yaml"}


def main(runs: Path) -> None:
    rows = []
    for key, config in CONFIGS.items():
        for run in sorted(d for d in runs.glob(f"q_{key}[0-9]*") if d.is_dir()):
            sw = run / "results" / "switchboard"
            metrics = json.loads((sw / "eval" / "baseline" / "metrics.json").read_text())
            curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")
            rows.append({"config": config, "seed": int(run.name[3:]), "test_ppl": metrics["ppl"],
                         "max_ratio": metrics["max_ratio"], "ent2": metrics["ent2"], "ent3": metrics["ent3"],
                         "top_response": metrics["top_response"], "valid_ppl_last": curve["valid_ppl"].iloc[-1]})
    if not rows:
        sys.exit(f"{runs}: no q_d<seed> or q_s<seed> working directories")
    seeds = pd.DataFrame(rows).sort_values(["config", "seed"])
    seeds.to_csv(HERE / "seeds.csv", index=False)
    print(seeds.round(4).to_string(index=False))
    print(seeds.groupby("config")[["test_ppl", "max_ratio", "ent2"]].agg(["min", "max", "mean", "std"]).round(4)
          .to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
