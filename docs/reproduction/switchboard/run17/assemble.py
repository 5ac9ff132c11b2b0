"""Writes run 17's files from its working directories (see ../README.md#run-17).

  PYTHONPATH=. python docs/reproduction/switchboard/run17/assemble.py RUNS_DIR

RUNS_DIR holds release_attention (the baseline trained from the raw corpus, its hit tests on both lists), three
re-scorings of that baseline's hit test with its data and checkpoints copied in (release_hits, release_search,
release_hits_search) and transformer_plateau (a Transformer seq2seq stopped in its epoch 19), each with the results/,
logs/ and benchmarks_out/ of its Snakemake run. Writes hits.csv (one row per variant and target list: the five hit
rates, targets scored, candidates the searches scored, the hit test's wall time) and the training curves
<variant>_<kind>_curve.csv (read from the log where training had not ended).
"""

import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
VARIANTS = {"release_attention": "release_attention.yaml",
            "release_hits": "release_attention.yaml + ../run14/release_hits.yaml",
            "release_search": "release_attention.yaml + release_search.yaml",
            "release_hits_search": "release_attention.yaml + ../run14/release_hits.yaml + release_search.yaml"}
SEARCHED = re.compile(r"(o|io)-mode search: \d+ targets x (\d+) restarts, (\d+) candidates scored, mean loss ([\d.]+)")
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)


def hits(run: Path, variant: str, split: str) -> dict | None:
    rates = run / "results" / "switchboard" / "hits" / "baseline" / f"{split}_rates.csv"
    if not rates.exists():
        return None
    r = pd.read_csv(rates).set_index("hit_type")
    out = {"variant": variant, "overlays": VARIANTS[variant], "list": split,
           **{k: float(r.loc[k, "rate"]) for k in r.index}, "targets": int(r["targets"].iloc[0])}
    log = (run / "logs" / "switchboard" / f"hits_baseline_{split}.log").read_text().replace("\r", "\n")
    for mode, restarts, candidates, loss in SEARCHED.findall(log)[-2:]:      # the last (successful) attempt
        out |= {f"{mode}_restarts": int(restarts), f"{mode}_candidates": int(candidates),
                f"{mode}_mean_loss": float(loss)}
    out["seconds"] = float(pd.read_csv(run / "benchmarks_out" / "switchboard" / f"hits_baseline_{split}.tsv",
                                       sep="\t")["s"][0])
    return out


def main(runs: Path) -> None:
    rows = [hits(runs / v, v, split) for v in VARIANTS for split in ("train", "test")]
    pd.DataFrame([r for r in rows if r]).to_csv(HERE / "hits.csv", index=False)
    for variant, kind in [("release_attention", "seq2seq"), ("release_attention", "lm"),
                          ("transformer_plateau", "seq2seq")]:
        c = run15.curve(runs / variant, kind)
        if c is not None:
            c.to_csv(HERE / f"{variant}_{kind}_curve.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
