"""Writes run 55's files from its working directories (see ../README.md#run-55).

  PYTHONPATH=. python docs/reproduction/switchboard/run55/assemble.py RUNS_DIR

RUNS_DIR holds w_cut_paper_s1 and w_cut_paper_s2, or one of them (the other's rows are kept as written before): the
release preset's seq2seq (configs/release.yaml) from the raw corpus (../run14/overlay.yaml) less the release's target
cut (preprocess.target_cut: paper), trained under MPS and evaluated, then (a second invocation in the same directory)
hit-tested on the authors' 0.5k list and ours. Writes the files run 51's assembler writes (models.csv, hits.csv, the
curves, stage_seconds.csv, the run's rows of ../wall_times.csv) and prints each variant beside the preset's own baseline
with the same seed (runs 46, 49, 51-54), and the difference. ``beside_preset`` does the same for any run of the preset's
variants whose names end in ``_s<seed>``.
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
# (run, variant) of every seed of the preset measured, seeds 1 to 7 in order
PRESET = run51.EARLIER + [("run51", "preset_s3"), ("run52", "preset_s4"), ("run53", "preset_s5"),
                          ("run54", "preset_s6"), ("run54", "preset_s7")]


def seed_of(variant: str) -> int:
    return int(variant.rsplit("_s", 1)[1])


def _others(out: Path, name: str, present) -> pd.DataFrame:
    """The rows of ``out``/``name`` (a file the run wrote before) of variants not ``present``: variants of the run
    that ran elsewhere, which a RUNS_DIR holding only some of them must not drop."""
    written = pd.read_csv(out / name) if (out / name).is_file() else pd.DataFrame(columns=["variant"])
    return written[~written["variant"].isin(list(present))]


def _in_order(rows: pd.DataFrame, variants: dict) -> pd.DataFrame:
    return rows.sort_values("variant", key=lambda v: v.map(list(variants).index), kind="stable")


def beside_preset(run: str, out: Path, runs: Path, variants: dict, title: str) -> None:
    """Writes ``run``'s files into ``out`` from runs/w_<variant> (``variants``: name ending in _s<seed> -> setting)
    and prints each variant beside the preset with the same seed, then the difference. Variants without a
    directory in ``runs`` keep the rows written before (models.csv, hits.csv, stage_seconds.csv, wall times)."""
    dirs = run51.run48.evaluated_dirs(runs, variants)
    others = {name: _others(out, name, dirs) for name in ("models.csv", "hits.csv", "stage_seconds.csv")}
    row = lambda d, v: {**run51.run48.row(d, v, variants[v]), "seed": seed_of(v)}    # noqa: E731
    models = _in_order(pd.concat([others["models.csv"], run51.run45.write_variants(run, out, dirs, row)]), variants)
    models.to_csv(out / "models.csv", index=False)
    seconds = _in_order(pd.concat([others["stage_seconds.csv"], pd.read_csv(out / "stage_seconds.csv")]), variants)
    seconds.to_csv(out / "stage_seconds.csv", index=False)
    run51.run45.run32.write_wall_times(run, seconds.assign(stage=seconds["variant"] + ":" + seconds["stage"]))
    tested = [rates for v, d in dirs.items() if (rates := run51.hit_rates(d, v)) is not None]
    ours = models.set_index("variant")
    if tested or len(others["hits.csv"]):                # a run that only evaluated writes no hits.csv
        hits = _in_order(pd.concat([others["hits.csv"], *tested]), variants)
        hits.to_csv(out / "hits.csv", index=False)
        ours = ours.join(run51.run46.avg_rates(hits))
    ours = ours.rename(index=lambda v: f"{v} ({run.replace('run', 'run ')})")
    preset = run51.preset_seeds(models.iloc[:0], [], PRESET, run)
    preset = preset[preset["seed"].isin(ours["seed"])]
    paper = run51.run45.PAPER.set_index("variant").assign(o_avg_train=0.278, io_avg_train=0.196)
    table = pd.concat([paper, preset, ours]).reindex(columns=run51.COLUMNS + ["seed"])
    seed = int(models["seed"].min())    # the curves beside the preset's with the lowest seed among them
    ref_run, ref_variant = PRESET[seed - 1]
    reference = (f"preset seed {seed}", HERE.parent / ref_run / f"{ref_variant}_seq2seq_curve.csv")
    run51.run45.print_variants(title + " (hits: sample-avg; train: the authors' 0.5k list, test: ours)", table, out,
                               list(models["variant"]), reference)
    by_seed = ours.reset_index().set_index(["variant", "seed"])[run51.COLUMNS]
    same = preset.set_index("seed")[run51.COLUMNS]
    print("each variant minus the preset with its seed\n",
          by_seed.sub(same, level="seed").dropna(how="all").round(4).to_string())


if __name__ == "__main__":
    beside_preset("run55", HERE, Path(sys.argv[1]), VARIANTS,
                  "Switchboard baselines: configs/release.yaml less its target cut, beside the preset with the same "
                  "seed")
