"""Writes run 14's ablation_models.csv from the four variants' working directories (see ../README.md#run-14).

  PYTHONPATH=. python docs/reproduction/switchboard/run14/assemble.py RUNS_DIR

RUNS_DIR holds one working directory per variant (default, decoder_dropout, keep_last, release_init), each with the
results/ of its Snakemake run. Per variant: seq2seq test PPL, the baseline's training-list hit rates (Table 3's
baseline columns), Table 4's greedy max-ratio and Ent-2, both BLEU-4 definitions, and the seq2seq's training time.
"""

import json
import sys
from pathlib import Path

import pandas as pd

from negtrain_core.evaluate import metrics

VARIANTS = {"default": "config.yaml", "decoder_dropout": "model.dropout_sites: decoder",
            "keep_last": "train.keep: last", "release_init": "model.init: release"}
HERE = Path(__file__).resolve().parent


def row(root: Path, variant: str) -> dict:
    sw = root / variant / "results" / "switchboard"
    rates = pd.read_csv(sw / "hits" / "baseline" / "train_rates.csv").set_index("hit_type")
    m = json.loads((sw / "eval" / "baseline" / "metrics.json").read_text())
    greedy = pd.read_parquet(sw / "eval" / "baseline" / "greedy.parquet")
    sent = metrics.bleu4_sentence_avg([r.split() for r in greedy["response"]], [t.split() for t in greedy["target"]])
    wall = pd.read_csv(root / variant / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv", sep="\t")["s"][0]
    return {"variant": variant, "setting": VARIANTS[variant], "seq2seq_test_ppl": m["ppl"],
            **{h: rates.loc[h, "rate"] for h in ("o_sample_avg", "o_sample_min", "io_sample_avg", "io_sample_min")},
            "targets": int(rates.loc["o_sample_avg", "targets"]), "max_ratio": m["max_ratio"], "ent2": m["ent2"],
            "bleu4_corpus": m["bleu4"], "bleu4_sentence_avg": sent, "train_seq2seq_s": wall}


if __name__ == "__main__":
    runs = Path(sys.argv[1])
    pd.DataFrame([row(runs, v) for v in VARIANTS]).to_csv(HERE / "ablation_models.csv", index=False)
