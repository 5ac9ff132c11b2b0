"""Writes run 18's files from its working directories (see ../README.md#run-18).

  PYTHONPATH=. python docs/reproduction/switchboard/run18/assemble.py RUNS_DIR

RUNS_DIR holds release_attention_hits (the release attention's baseline from the raw corpus, its hit tests under
the release's hit scoring, then Algorithm 1 on the authors' 0.5k list, ended in its epoch 8 (o) and 6 (io)),
transformer_small and transformer_wd01 (Transformer seq2seq trainings ended in epochs 14 and 9), each with the
results/ and logs/ of its Snakemake run. Writes hits.csv (the baseline's hit rates on both lists),
negtr_epochs.csv (Algorithm 1's own hit count after each finished epoch, as its log reports it) and the
Transformers' training curves <variant>_seq2seq_curve.csv (read from their logs); prints whether the baseline's
seq2seq curve equals run 17's.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
SW = Path("results") / "switchboard"
EPOCH_HITS = re.compile(r"epoch (\d+): (\d+)/(\d+) targets hit after gibbs-enum, (\d+) rounds")
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)


def baseline_hits(run: Path) -> pd.DataFrame:
    frames = []
    for split in ("train", "test"):
        r = pd.read_csv(run / SW / "hits" / "baseline" / f"{split}_rates.csv")
        frames.append(r.assign(list=split)[["list", "hit_type", "hits", "targets", "rate", "skipped"]])
    return pd.concat(frames)


def negtr_epochs(run: Path) -> pd.DataFrame:
    rows = []
    for mode in ("o", "io"):
        log = (run / "logs" / "switchboard" / f"negtr-{mode}-0.5k.log").read_text().replace("\r", "\n")
        rows += [{"mode": mode, "epoch": int(e), "hit": int(h), "targets": int(n), "rate": int(h) / int(n),
                  "rounds": int(r)} for e, h, n, r in EPOCH_HITS.findall(log)]
    return pd.DataFrame(rows)


def main(runs: Path) -> None:
    baseline_hits(runs / "release_attention_hits").to_csv(HERE / "hits.csv", index=False)
    negtr_epochs(runs / "release_attention_hits").to_csv(HERE / "negtr_epochs.csv", index=False)
    baseline = run15.curve(runs / "release_attention_hits", "seq2seq")
    run17 = pd.read_csv(HERE.parent / "run17" / "release_attention_seq2seq_curve.csv")
    same = baseline[["train_ppl", "valid_ppl"]].equals(run17[["train_ppl", "valid_ppl"]])
    print(f"release attention seq2seq: train and valid PPL of all epochs equal run 17's: {same}")
    for variant in ("transformer_small", "transformer_wd01"):
        run15.curve(runs / variant, "seq2seq").to_csv(HERE / f"{variant}_seq2seq_curve.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
