"""Writes run 62's files from its working directories (see ../README.md#run-62).

  PYTHONPATH=. python docs/reproduction/switchboard/run62/assemble.py RUNS_DIR

RUNS_DIR holds w_file_order and w_release_init: run 45's trainings again (configs/paper_levels.yaml's seq2seq from the
raw corpus, ../run14/overlay.yaml, with the release's batch order or its initialisation, ../run45/<variant>.yaml), each
beside its LM under MPS and evaluated, then (a second invocation in the same directory) hit-tested on the authors' 0.5k
list and ours. Writes what run 45's assembler writes plus hits.csv, prints the rows beside configs/paper_levels.yaml's
own baseline (run 19, hit-tested) and the paper's, then checks that each variant is run 45's training again (every
measure and epoch equal), so its hits are that training's.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run51_assemble", HERE.parent / "run51" / "assemble.py")
run51 = importlib.util.module_from_spec(_spec)      # hit_rates, COLUMNS, run 46's avg_rates and _load
_spec.loader.exec_module(run51)
run45, run48, run58 = run51.run45, run51.run48, run51._load("run58")   # writers; directories; check_same

VARIANTS = ["file_order", "release_init"]          # run 45's names and settings (run45.VARIANTS)


TITLE = ("Switchboard baselines: configs/paper_levels.yaml plus the release's batch order or its initialisation, "
         "hit-tested (hits: sample-avg; train: the authors' 0.5k list, test: ours)")


def main(runs: Path, run: str = "run62", here: Path = HERE, variants: list[str] = VARIANTS, title: str = TITLE) -> None:
    """Writes ``run``'s files into ``here`` from runs/w_<variant>, one of run 45's trainings again per variant of
    ``variants``, prints them beside run 19's baseline and the paper's, and checks each against run 45's."""
    dirs = run48.evaluated_dirs(runs, variants)
    models = run45.write_variants(run, here, dirs, run45.row)
    hits = pd.concat([rates for v, d in dirs.items() if (rates := run51.hit_rates(d, v)) is not None])
    hits.to_csv(here / "hits.csv", index=False)

    base = pd.read_csv(HERE.parent / "run19" / "models.csv").query("model == 'baseline'").assign(
        variant="paper_levels (run 19)")
    base_hits = run51.run46.avg_rates(pd.read_csv(HERE.parent / "run19" / "hits.csv"), by="model")
    base = base.join(base_hits, on="model")
    ours = models.join(run51.run46.avg_rates(hits), on="variant")
    paper = run45.PAPER.assign(o_avg_train=0.278, io_avg_train=0.196)          # Table 3's baseline
    table = pd.concat([paper, base, ours]).set_index("variant")[run51.COLUMNS]
    run45.print_variants(title, table, here, dirs,
                         ("paper_levels", HERE.parent / "run19" / "paper_levels_seq2seq_curve.csv"))
    for variant in dirs:
        run58.check_same(variant, "run45", variant, here)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
