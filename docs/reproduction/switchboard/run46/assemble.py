"""Writes run 46's files from its two working directories (see ../README.md#run-46).

  PYTHONPATH=. python docs/reproduction/switchboard/run46/assemble.py RUNS_DIR

RUNS_DIR holds w_preset_momentum (configs/release.yaml plus preset_momentum.yaml: every release reading, the
baselines' momentum included) and w_release_recipe (configs/paper_levels.yaml plus release_recipe.yaml: the release's
initialisation and baseline optimiser together), each from the raw corpus (../run14/overlay.yaml), trained side by
side, evaluated and hit-tested on the authors' 0.5k list and ours. Writes models.csv (per variant: seq2seq and LM test
PPL, Table 4's greedy max-ratio, Ent-2, Ent-3, both BLEU-4 definitions, the epoch kept, training seconds), hits.csv
(in ../run22/hits.csv's layout, with a variant column), table8.csv, the curves, stage_seconds.csv and the run's rows
of ../wall_times.csv; prints them beside the paper, the preset without momentum (runs 15, 22) and
configs/paper_levels.yaml's baseline (run 19).
"""

import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # its stage_seconds, write_wall_times and run 15's evaluated
_spec.loader.exec_module(run32)

VARIANTS = {"preset_momentum": "configs/release.yaml + datasets.switchboard.train.momentum: 0.9",
            "release_recipe": "configs/paper_levels.yaml + model.init: release + datasets.switchboard.train.momentum: "
                              "0.9, train.reset_momentum_each_epoch: true, train.clip_scope: per_module"}
COLUMNS = ["test_ppl", "max_ratio", "ent2", "bleu4_sentence_avg", "o_avg_train", "io_avg_train", "o_avg_test",
           "io_avg_test"]


def kept_epoch(log: Path) -> int:
    """The epoch the training log says it kept (``keep: last`` or ``best``)."""
    return int(re.findall(r"kept epoch (\d+)", log.read_text())[-1])


def hit_rows(sw: Path, variant: str, models: tuple[str, ...] = ("baseline",)) -> pd.DataFrame:
    """Every hit rate of ``models`` on both lists, as hits.csv's rows."""
    frames = [pd.read_csv(sw / "hits" / m / f"{lst}_rates.csv").assign(variant=variant, model=m, list=lst)
              for m in models for lst in ("train", "test")]
    return pd.concat(frames)[["variant", "model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]


def avg_rates(hits: pd.DataFrame, by: str = "variant") -> pd.DataFrame:
    """``by`` -> o/io sample-avg rate on each list, as columns o_avg_train, io_avg_train, o_avg_test, io_avg_test."""
    avg = hits[hits["hit_type"].str.endswith("sample_avg")]
    wide = avg.pivot_table(index=by, columns=["hit_type", "list"], values="rate")
    wide.columns = [f"{t.split('_')[0]}_avg_{lst}" for t, lst in wide.columns]
    return wide


def row(run: Path, variant: str) -> dict:
    sw, logs = run / "results" / "switchboard", run / "logs" / "switchboard"
    bench = pd.read_csv(run / "benchmarks_out" / "switchboard" / "train_seq2seq.tsv", sep="\t")
    table8 = pd.read_csv(sw / "table8.csv").set_index("model")
    return {"variant": variant, "setting": VARIANTS[variant], **run32.evaluated(sw / "eval" / "baseline"),
            "lm_test_ppl": float(table8.loc["LM", "test_ppl"]),
            "kept_epoch": kept_epoch(logs / "train_seq2seq.log"), "lm_kept_epoch": kept_epoch(logs / "train_lm.log"),
            "train_seq2seq_s": float(bench["s"][0])}


def main(runs: Path) -> None:
    dirs = {v: runs / f"w_{v}" for v in VARIANTS}
    models = pd.DataFrame([row(d, v) for v, d in dirs.items()])
    models.to_csv(HERE / "models.csv", index=False)
    hits = pd.concat([hit_rows(d / "results" / "switchboard", v) for v, d in dirs.items()])
    hits.to_csv(HERE / "hits.csv", index=False)
    pd.concat([pd.read_csv(d / "results" / "switchboard" / "table8.csv").assign(variant=v) for v, d in dirs.items()]
              ).to_csv(HERE / "table8.csv", index=False)
    for v, d in dirs.items():
        for kind in ("seq2seq", "lm"):
            (HERE / f"{v}_{kind}_curve.csv").write_text((d / "results" / "switchboard" / "models" /
                                                        f"{kind}_curve.csv").read_text())
    seconds = pd.concat([run32.stage_seconds(d, v) for v, d in dirs.items()]).rename(columns={"arch": "variant"})
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)
    run32.write_wall_times("run46", seconds.assign(stage=seconds["variant"] + ":" + seconds["stage"]))

    ours = models.set_index("variant").join(avg_rates(hits))
    run22 = pd.read_csv(HERE.parent / "run22" / "hits.csv").assign(variant="release preset, momentum 0 (runs 15, 22)")
    run19 = pd.read_csv(HERE.parent / "run19" / "hits.csv").query("model == 'baseline'").assign(
        variant="paper_levels (run 19)")
    preset = pd.read_csv(HERE.parent / "run15" / "models.csv").query("variant == 'release_preset'").rename(
        columns={"seq2seq_test_ppl": "test_ppl"}).assign(variant="release preset, momentum 0 (runs 15, 22)")
    base = pd.read_csv(HERE.parent / "run19" / "models.csv").query("model == 'baseline'").assign(
        variant="paper_levels (run 19)")
    earlier = pd.concat([base, preset]).set_index("variant").join(avg_rates(pd.concat([run19, run22])))
    paper = pd.DataFrame([{"variant": "paper", "test_ppl": 42.81, "max_ratio": 0.374, "ent2": 2.71,
                           "bleu4_sentence_avg": 0.476, "o_avg_train": 0.278, "io_avg_train": 0.196}]).set_index(
        "variant")
    print("Switchboard baselines (hits: sample-avg; train: the authors' 0.5k list, test: ours)\n",
          pd.concat([paper, earlier, ours])[COLUMNS].round(4).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
