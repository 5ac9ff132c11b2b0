"""Writes run 58's files from its working directories (see ../README.md#run-58).

  PYTHONPATH=. python docs/reproduction/switchboard/run58/assemble.py RUNS_DIR

RUNS_DIR holds w_init_decoder_embedding_s2 and w_init_one_hot_maps_s1, or one of them (the other's rows are kept as
written before): from the raw corpus (../run14/overlay.yaml), the release preset (configs/release.yaml) with only the
release's N(0, 1) decoder embedding, seed 2 (init_decoder_embedding_s2.yaml; run 50 trained it with seed 1), and with
only its biased one-hot maps, seed 1 (init_one_hot_maps_s1.yaml: run 50's training again, to hit-test it), side by
side under MPS and evaluated, then (a second invocation in each directory) hit-tested on the authors' 0.5k list and
ours. Writes what run 55's assembler writes and prints each variant beside the preset with the same seed; then checks
that init_one_hot_maps_s1 is run 50's init_one_hot_maps again (every measure equal), so its hits are that training's.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run55_assemble", HERE.parent / "run55" / "assemble.py")
run55 = importlib.util.module_from_spec(_spec)      # beside_preset: the files and the comparison by seed
_spec.loader.exec_module(run55)

VARIANTS = {
    "init_decoder_embedding_s2": "configs/release.yaml with model.init: release_decoder_embedding (no biased one-hot "
                                 "maps), seed 2",
    "init_one_hot_maps_s1": "configs/release.yaml with model.init: release_one_hot_maps (no N(0, 1) decoder "
                            "embedding), seed 1 (run 50's training again, hit-tested)",
}
SAME_AS = {"init_one_hot_maps_s1": ("run50", "init_one_hot_maps")}   # variant -> (run, variant) it trains again
MEASURES = ["test_ppl", "max_ratio", "ent2", "ent3", "top_response", "bleu4_corpus", "bleu4_sentence_avg",
            "kept_epoch", "kept_valid_ppl"]


def check_same(variant: str, run: str, earlier: str, here: Path = HERE) -> None:
    """Fails unless ``variant`` (the run whose files are in ``here``, this one by default) and ``earlier`` (``run``)
    have every measure and every epoch of their validation curves equal: the same weights, trained twice."""
    new = pd.read_csv(here / "models.csv").set_index("variant").loc[variant, MEASURES]
    old = pd.read_csv(HERE.parent / run / "models.csv").set_index("variant").loc[earlier, MEASURES]
    differ = [m for m in MEASURES if new[m] != old[m]]
    curves = [pd.read_csv(f)[["train_ppl", "valid_ppl"]] for f in
              (here / f"{variant}_seq2seq_curve.csv", HERE.parent / run / f"{earlier}_seq2seq_curve.csv")]
    if differ or not curves[0].equals(curves[1]):
        raise SystemExit(f"{variant} is not {run}'s {earlier} again: {differ or 'the curves'} differ")
    print(f"{variant}: every measure and every epoch's train and valid PPL equal to {run}'s {earlier}")


def retrained(run: str, here: Path, runs: Path, variants: dict, same_as: dict, title: str) -> None:
    """Writes ``run``'s files into ``here`` and prints each variant beside the preset with its seed (run 55's
    ``beside_preset``), then checks each variant of ``same_as`` (variant -> (run, variant) it trains again) against
    that earlier training with ``check_same``. Runs 58, 59 and 61 are such runs."""
    run55.beside_preset(run, here, runs, variants, title)
    for variant, (earlier_run, earlier) in same_as.items():
        check_same(variant, earlier_run, earlier, here)


if __name__ == "__main__":
    retrained("run58", HERE, Path(sys.argv[1]), VARIANTS, SAME_AS,
              "Switchboard baselines: the release preset with only its decoder embedding, seed 2, and with only its "
              "one-hot maps, seed 1 again, beside the preset with the same seed")
