"""Writes run 16's training curves from its two working directories (see ../README.md#run-16).

  PYTHONPATH=. python docs/reproduction/switchboard/run16/assemble.py RUNS_DIR

RUNS_DIR holds transformer_cosine and transformer_dropout01, each with the results/ and logs/ of its Snakemake run.
Writes <variant>_<kind>_curve.csv (from the curve file where training ended, else from the log's epoch lines, as run
15's assemble.py reads them) and curves.png: validation and training PPL by epoch of both variants beside run 15's
Transformer (inverse square root, dropout 0.3) and the default LSTM.
"""

import importlib.util
import sys
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")

HERE = Path(__file__).resolve().parent
VARIANTS = {"transformer_cosine": "Transformer, cosine schedule", "transformer_dropout01": "Transformer, dropout 0.1"}
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)


def plot() -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, ("seq2seq", "lm")):
        curves = {"default LSTM (runs 2-13)": HERE.parent / f"{kind}_curve.csv",
                  "Transformer, run 15 (inverse sqrt, dropout 0.3)":
                      HERE.parent / "run15" / f"transformer_{kind}_curve.csv",
                  **{label: HERE / f"{v}_{kind}_curve.csv" for v, label in VARIANTS.items()}}
        for (label, path), color in zip(curves.items(), ("black", "tab:green", "tab:purple", "tab:red")):
            if not path.exists():
                continue
            c = pd.read_csv(path)
            ax.plot(c["epoch"], c["valid_ppl"], color=color, label=label)
            ax.plot(c["epoch"], c["train_ppl"], color=color, linestyle=":", linewidth=1)
        ax.set(xlabel="epoch", title=f"Switchboard {kind} baselines (runs 15-16)", ylim=(28, 70))
    axes[0].set_ylabel("PPL (solid: validation, dotted: training with dropout)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "curves.png", dpi=120)


def main(runs: Path) -> None:
    for variant in VARIANTS:
        for kind in ("seq2seq", "lm"):
            c = run15.curve(runs / variant, kind)
            if c is not None:
                c.to_csv(HERE / f"{variant}_{kind}_curve.csv", index=False)
    plot()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
