"""Writes run 55's files from its working directories (see ../README.md#run-55).

  PYTHONPATH=. python docs/reproduction/switchboard/run55/assemble.py RUNS_DIR

RUNS_DIR holds w_cut_paper_s1 (and w_cut_paper_s2 where seed 2 has run: the files are written for the directories
present): the release preset's seq2seq (configs/release.yaml) from the raw corpus (../run14/overlay.yaml) less the
release's target cut (preprocess.target_cut: paper), trained under MPS and evaluated, then (a second invocation in the
same directory) hit-tested on the authors' 0.5k list and ours. Writes the files run 51's assembler writes (models.csv, hits.csv, the curves,
stage_seconds.csv, the run's rows of ../wall_times.csv) and prints each seed beside the preset's own baseline with
the same seed (runs 46 and 49), and the difference.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run51_assemble", HERE.parent / "run51" / "assemble.py")
run51 = importlib.util.module_from_spec(_spec)      # its rows, hit rates, the preset's seeds and the run-45 writers
_spec.loader.exec_module(run51)

VARIANTS = {f"cut_paper_s{s}": f"configs/release.yaml less its target cut (preprocess.target_cut: paper), seed {s}"
            for s in (1, 2)}


def row(run: Path, variant: str) -> dict:
    return {**run51.run48.row(run, variant, VARIANTS[variant]), "seed": int(variant.removeprefix("cut_paper_s"))}


def main(runs: Path) -> None:
    dirs = run51.run48.evaluated_dirs(runs, VARIANTS)
    models = run51.run45.write_variants("run55", HERE, dirs, row)
    tested = [rates for v, d in dirs.items() if (rates := run51.hit_rates(d, v)) is not None]
    if tested:
        pd.concat(tested).to_csv(HERE / "hits.csv", index=False)
    cut = models.set_index("variant").join(run51.run46.avg_rates(pd.concat(tested))) if tested \
        else models.set_index("variant")
    cut = cut.rename(index=lambda v: f"target cut: paper, seed {int(cut.loc[v, 'seed'])} (run 55)")
    preset = run51.preset_seeds(models.iloc[:0], [], run51.EARLIER, "run55")   # seeds 1 and 2 (runs 46, 49)
    paper = run51.run45.PAPER.set_index("variant").assign(o_avg_train=0.278, io_avg_train=0.196)
    table = pd.concat([paper, preset, cut]).reindex(columns=run51.COLUMNS + ["seed"])
    run51.run45.print_variants("Switchboard baselines: configs/release.yaml less its target cut, beside the preset with "
                               "the same seed (hits: sample-avg; train: the authors' 0.5k list, test: ours)",
                               table, HERE, dirs,
                               ("preset seed 1", HERE.parent / "run46" / "preset_momentum_seq2seq_curve.csv"))
    by_seed = lambda t: t.dropna(subset=["seed"]).set_index("seed")[run51.COLUMNS]       # noqa: E731
    print("less the target cut, minus the preset (same seed)\n",
          (by_seed(cut) - by_seed(preset)).dropna(how="all").round(4).to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
