"""Writes run 44's files from its working directory (see ../README.md#run-44).

  PYTHONPATH=. python docs/reproduction/switchboard/run44/assemble.py RUN_DIR

RUN_DIR: configs/paper_levels.yaml's seq2seq from the raw corpus (../run14/overlay.yaml), its evaluation, then
Algorithm 2 at both r_thres for six epochs (frequent_epochs6.yaml) and their evaluations. Checks that the baseline is
run 19's (every epoch's train and valid PPL, and its evaluation, to every digit), then writes models.csv (Table 4's
rows with both BLEU-4 definitions), both Algorithm 2 curves, stage_seconds.csv and the run's rows of
../wall_times.csv; prints Table 4 beside the paper's and the default baseline's rows (runs 4 and 5).
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # its stage_seconds, write_wall_times and run15's evaluated
_spec.loader.exec_module(run32)

MODELS = ("baseline", "freq-0.1", "freq-0.01")
# Table 4, Switchboard (paper): PPL, max-ratio, Ent-2, Ent-3
PAPER = {"baseline": (42.81, 0.374, 2.71, 2.42), "freq-0.1": (42.84, 0.124, 3.86, 4.00),
         "freq-0.01": (44.32, 0.098, 5.48, 6.03)}


def main(run: Path) -> None:
    sw = run / "results" / "switchboard"
    curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")
    run19 = pd.read_csv(HERE.parent / "run19" / "paper_levels_seq2seq_curve.csv")
    cols = ["epoch", "train_ppl", "valid_ppl"]
    assert curve[cols].equals(run19[cols]), "the seq2seq's curve differs from run 19's: not its baseline"
    models = pd.DataFrame([{"model": m, **run32.evaluated(sw / "eval" / m)} for m in MODELS])
    base19 = pd.read_csv(HERE.parent / "run19" / "models.csv").set_index("model").loc["baseline"]
    base = models.set_index("model").loc["baseline"]
    assert base[base19.index].equals(base19), "the baseline's evaluation differs from run 19's"
    models.to_csv(HERE / "models.csv", index=False)
    for r in ("0.1", "0.01"):
        (HERE / f"freq-{r}_curve.csv").write_text((sw / "models" / f"freq-{r}_curve.csv").read_text())
    seconds = run32.stage_seconds(run, "lstm")
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)
    run32.write_wall_times("run44", seconds)

    paper = pd.DataFrame(PAPER, index=["paper_ppl", "paper_max_ratio", "paper_ent2", "paper_ent3"]).T
    default = pd.DataFrame([pd.read_csv(HERE.parent / f"freq-{r}_curve.csv").iloc[-1] for r in ("0.1", "0.01")])
    default.index = ["freq-0.1", "freq-0.01"]
    table = models.set_index("model")[["test_ppl", "max_ratio", "ent2", "ent3", "bleu4_sentence_avg"]].join(paper)
    table = table.join(default[["test_ppl", "test_max_ratio"]].rename(columns=lambda c: "default_20ep_" + c))
    print("Table 4, Switchboard: configs/paper_levels.yaml, Algorithm 2 for 6 epochs; the paper; config.yaml's "
          "baseline after 20 epochs (runs 4, 5)\n", table.round(4).to_string())
    for r in ("0.1", "0.01"):
        c = pd.read_csv(HERE / f"freq-{r}_curve.csv")
        print(f"r_thres {r}: max-ratio by epoch", c["test_max_ratio"].round(4).tolist(), "PPL",
              c["test_ppl"].round(2).tolist())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
