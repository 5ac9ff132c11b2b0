"""Writes run 15's files from its three working directories (see ../README.md#run-15).

  PYTHONPATH=. python docs/reproduction/switchboard/run15/assemble.py RUNS_DIR

RUNS_DIR holds the working directories release_preset, release_attention and transformer, each with the results/ and
logs/ of its Snakemake run (the run ended before any hit test). Writes models.csv (per variant: seq2seq test PPL,
Table 4's greedy max-ratio, Ent-2, Ent-3, both BLEU-4 definitions, training time; for the release preset its LM's
test PPL) and one training curve per model, <variant>_<kind>_curve.csv, read from the logs where the run stopped
mid-training (the curve file is written when training ends); then curves.png, the seq2seq validation PPL by epoch
beside the default LSTM's (../seq2seq_curve.csv).
"""

import json
import re
import sys
from pathlib import Path

import matplotlib
import pandas as pd

from negtrain_core.evaluate import metrics

matplotlib.use("Agg")

VARIANTS = {"release_preset": "configs/release.yaml",
            "release_attention": "model.attention: release, model.decoder_init: zero",
            "transformer": "model.arch: transformer"}
HERE = Path(__file__).resolve().parent
EPOCH = re.compile(r"epoch (\d+)/\d+: train PPL ([\d.]+), valid PPL ([\d.]+), lr ([\d.e-]+), [\d,]+ tokens/s, "
                   r"([\d.]+) s")


def curve(run: Path, kind: str) -> pd.DataFrame | None:
    """The training curve of ``kind``: the curve file if training ended, else the epochs its log reports."""
    done = run / "results" / "switchboard" / "models" / f"{kind}_curve.csv"
    if done.exists():
        return pd.read_csv(done)[["epoch", "lr", "train_ppl", "valid_ppl", "seconds"]]
    log = run / "logs" / "switchboard" / f"train_{kind}.log"
    rows = [m.groups() for m in EPOCH.finditer(log.read_text().replace("\r", "\n"))] if log.exists() else []
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["epoch", "train_ppl", "valid_ppl", "lr", "seconds"]).astype(float).astype(
        {"epoch": int})[["epoch", "lr", "train_ppl", "valid_ppl", "seconds"]]


def evaluated(eval_dir: Path) -> dict:
    """One model's evaluation (eval/<model>/): test PPL, Table 4's metrics and both BLEU-4 definitions."""
    m = json.loads((eval_dir / "metrics.json").read_text())
    greedy = pd.read_parquet(eval_dir / "greedy.parquet")
    sent = metrics.bleu4_sentence_avg([r.split() for r in greedy["response"]], [t.split() for t in greedy["target"]])
    return {"test_ppl": m["ppl"], "max_ratio": m["max_ratio"], "ent2": m["ent2"], "ent3": m["ent3"],
            "top_response": m["top_response"], "bleu4_corpus": m["bleu4"], "bleu4_sentence_avg": sent}


def row(run: Path, variant: str) -> dict:
    sw = run / "results" / "switchboard"
    out = {"variant": variant, "setting": VARIANTS[variant]}
    if (sw / "eval" / "baseline" / "metrics.json").exists():
        scores = evaluated(sw / "eval" / "baseline")
        out |= {"seq2seq_test_ppl": scores.pop("test_ppl"), **scores}
    if (sw / "table8.csv").exists():
        out["lm_test_ppl"] = float(pd.read_csv(sw / "table8.csv").set_index("model").loc["LM", "test_ppl"])
    bench = run / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv"
    if bench.exists():
        out["train_seq2seq_s"] = float(pd.read_csv(bench, sep="\t")["s"][0])
    return out


def plot() -> None:
    """Validation and training PPL of each seq2seq by epoch, the default LSTM's beside them."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    curves = {"default LSTM (runs 2-13)": HERE.parent / "seq2seq_curve.csv",
              **{VARIANTS[v]: HERE / f"{v}_seq2seq_curve.csv" for v in VARIANTS}}
    for (label, path), color in zip(curves.items(), ("black", "tab:blue", "tab:orange", "tab:green")):
        c = pd.read_csv(path)
        ax.plot(c["epoch"], c["valid_ppl"], color=color, label=label)
        ax.plot(c["epoch"], c["train_ppl"], color=color, linestyle=":", linewidth=1)
    ax.axhline(42.81, color="grey", linewidth=0.8, linestyle="--", label="paper's test PPL (42.81)")
    ax.set(xlabel="epoch", ylabel="PPL (solid: validation, dotted: training with dropout)", ylim=(28, 70),
           title="Switchboard seq2seq baselines (run 15)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "curves.png", dpi=120)


if __name__ == "__main__":
    runs = Path(sys.argv[1])
    pd.DataFrame([row(runs / v, v) for v in VARIANTS]).to_csv(HERE / "models.csv", index=False)
    for v in VARIANTS:
        for kind in ("seq2seq", "lm"):
            c = curve(runs / v, kind)
            if c is not None:
                c.to_csv(HERE / f"{v}_{kind}_curve.csv", index=False)
    plot()
