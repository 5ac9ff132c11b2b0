"""Writes run 47's files from its working directory (see ../README.md#run-47).

  PYTHONPATH=. python docs/reproduction/switchboard/run47/assemble.py RUN_DIR

RUN_DIR: configs/release.yaml from the raw corpus (../run14/overlay.yaml), Algorithm 2 set to six epochs
(../run44/frequent_epochs6.yaml): both baselines, Table 8, Algorithm 1 on the authors' 0.5k list in o- and io-mode, the
hit tests of the baseline and of both models on the authors' 0.5k list and ours, their evaluations, and Algorithm 2 at
both r_thres, stopped in its third epoch. Checks that the baseline is run 46's preset_momentum (every epoch's train and
valid PPL, its evaluation and its hit rates), then writes models.csv (Table 3's and 4's metrics with both BLEU-4
definitions), hits.csv (run 46's layout), freq_epochs.csv (Algorithm 2's end-of-epoch test evaluations, read from its
log, as no checkpoint was written), Algorithm 1's curves, stage_seconds.csv and the run's rows of ../wall_times.csv;
prints Tables 3 and 4 beside the paper's.
"""

import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run46_assemble", HERE.parent / "run46" / "assemble.py")
run46 = importlib.util.module_from_spec(_spec)      # its hit_rows and avg_rates
_spec.loader.exec_module(run46)
run32 = run46.run32                                 # its stage_seconds, write_wall_times and run 15's evaluated

MODELS = ("baseline", "negtr-o-0.5k", "negtr-io-0.5k")
# Table 3, Switchboard (paper): sample-avg hit rates, training list and the authors' test list, and test PPL
PAPER3 = {"baseline": (0.278, 0.196, 0.276, 0.21, 42.81), "negtr-o-0.5k": (0.038, None, 0.134, None, 42.91),
          "negtr-io-0.5k": (None, 0.022, None, 0.094, 42.7)}
# Table 4, Switchboard (paper): PPL, max-ratio, Ent-2, Ent-3
PAPER4 = {"baseline": (42.81, 0.374, 2.71, 2.42), "freq-0.1": (42.84, 0.124, 3.86, 4.00),
          "freq-0.01": (44.32, 0.098, 5.48, 6.03)}
# one end-of-epoch line of Algorithm 2's log
EPOCH = re.compile(r"r_thres (?P<r_thres>[\d.]+) epoch (?P<epoch>\d+) \((?P<seconds>[\d.]+) s, (?P<decodes>\d+) "
                   r"decodes, (?P<negative_batches>\d+) negative batches\): test PPL (?P<test_ppl>[\d.]+), max-ratio "
                   r"(?P<max_ratio>[\d.]+) \('(?P<top_response>.*)'\), Ent-2 (?P<ent2>[\d.]+), Ent-3 (?P<ent3>[\d.]+)")


def freq_epochs(log: Path) -> pd.DataFrame:
    rows = [m.groupdict() for m in map(EPOCH.search, log.read_text().splitlines()) if m]
    numeric = ["r_thres", "epoch", "seconds", "decodes", "negative_batches", "test_ppl", "max_ratio", "ent2", "ent3"]
    return pd.DataFrame(rows).astype({c: float for c in numeric}).astype({"epoch": int, "decodes": int,
                                                                          "negative_batches": int})


def check_baseline(sw: Path, models: pd.DataFrame, hits: pd.DataFrame) -> None:
    """The baseline must be run 46's preset_momentum: same curve, evaluation and hit rates."""
    cols = ["epoch", "lr", "train_ppl", "valid_ppl"]
    curve = pd.read_csv(sw / "models" / "seq2seq_curve.csv")[cols]
    assert curve.equals(pd.read_csv(HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv")[cols]), \
        "the seq2seq's curve differs from run 46's: not its baseline"
    run46 = pd.read_csv(HERE.parent / "run46" / "models.csv").set_index("variant").loc["preset_momentum"]
    ours = models.set_index("model").loc["baseline"]
    for c in ("test_ppl", "max_ratio", "ent2", "ent3", "bleu4_corpus", "bleu4_sentence_avg"):
        assert ours[c] == run46[c], f"the baseline's {c} differs from run 46's"
    key = ["list", "hit_type", "hits", "targets"]
    h46 = pd.read_csv(HERE.parent / "run46" / "hits.csv").query("variant == 'preset_momentum'")[key]
    assert hits.query("model == 'baseline'")[key].reset_index(drop=True).equals(h46.reset_index(drop=True)), \
        "the baseline's hit counts differ from run 46's"


def main(run: Path) -> None:
    sw = run / "results" / "switchboard"
    models = pd.DataFrame([{"model": m, **run32.evaluated(sw / "eval" / m)} for m in MODELS])
    hits = run46.hit_rows(sw, "preset", MODELS)
    check_baseline(sw, models, hits)
    models.to_csv(HERE / "models.csv", index=False)
    hits.to_csv(HERE / "hits.csv", index=False)
    freq = freq_epochs(run / "logs" / "switchboard" / "freq-0.1_0.01.log")
    freq.to_csv(HERE / "freq_epochs.csv", index=False)
    for m in MODELS[1:]:
        (HERE / f"{m}_curve.csv").write_text((sw / "models" / f"{m}_curve.csv").read_text())
    seconds = run32.stage_seconds(run, "preset")
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)
    run32.write_wall_times("run47", seconds)

    avg = run46.avg_rates(hits, by="model")
    paper3 = pd.DataFrame(PAPER3, index=["paper_o_train", "paper_io_train", "paper_o_test", "paper_io_test",
                                         "paper_ppl"]).T
    base_ppl = models.set_index("model").loc["baseline", "test_ppl"]
    table3 = avg.join(models.set_index("model")[["test_ppl"]]).assign(
        ppl_change=lambda t: t["test_ppl"] / base_ppl - 1).join(paper3).loc[list(MODELS)]
    print("Table 3, Switchboard, configs/release.yaml (sample-avg; train: the authors' 0.5k list, test: ours; the "
          "paper's test column is on its own list)\n", table3.round(4).to_string())
    paper4 = pd.DataFrame(PAPER4, index=["paper_ppl", "paper_max_ratio", "paper_ent2", "paper_ent3"]).T
    print("\nTable 4, Switchboard, configs/release.yaml: the baseline, then Algorithm 2 by epoch (stopped in the "
          "third of six)\n", models.set_index("model").loc[["baseline"], ["test_ppl", "max_ratio", "ent2", "ent3"]]
          .join(paper4).round(4).to_string())
    for r, part in freq.groupby("r_thres", sort=False):
        print(f"r_thres {r:g} (paper: {PAPER4[f'freq-{r:g}']}):", part[["epoch", "test_ppl", "max_ratio", "ent2",
                                                                           "ent3", "seconds"]].to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
