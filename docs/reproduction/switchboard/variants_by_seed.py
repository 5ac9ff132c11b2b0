"""Every reading dropped from (or changed in) the release preset, seed by seed, beside the preset's own seeds.

  PYTHONPATH=. python docs/reproduction/switchboard/variants_by_seed.py

Reads only committed files: each run folder's models.csv, hits.csv (sample-avg rates on the authors' 0.5k list,
``train``, and ours, ``test``) and seq2seq curves. For every variant trained with a seed (runs 48-50, 55-59, 61, 64) and
every measure it prints the variant's value, the preset's with the same seed, and where the value lies among the
preset's seven seeds (runs 46, 49, 51-54; seed 2's hits from run 57, which trained it again): their mean, standard
deviation, range and the z-score (value - mean) / sd. Writes variants_by_seed.csv (one row per variant, seed and
measure). This is what the README's "within the seeds' spread" rests on: a value inside the preset's range is not told
apart from the seed's effect by that training.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run55_assemble", HERE / "run55" / "assemble.py")
run55 = importlib.util.module_from_spec(_spec)      # the preset's seeds (PRESET) and, through run 51, avg_rates
_spec.loader.exec_module(run55)

# (seed, run folder, variant name in its models.csv) of every seed of the preset measured
PRESET = [(seed, run, variant) for seed, (run, variant) in enumerate(run55.PRESET, start=1)]
VARIANTS = {
    # runs 59 and 61 trained run 48's and run 49's dropout_all again (every measure equal) and hit-tested them
    "encoder input dropped out too (model.dropout_sites: all)": [(1, "run59", "dropout_all_s1"),
                                                                 (2, "run61", "dropout_all_s2")],
    # run 64 trained run 48's shuffled and run 50's init_decoder_embedding again (every measure equal), hit-tested
    "shuffled batches (train.shuffle: true, drop_last_batch: false)": [(1, "run64", "shuffled_s1"),
                                                                       (2, "run56", "shuffled_s2")],
    "the paper's target cut (preprocess.target_cut: paper)": [(1, "run55", "cut_paper_s1"),
                                                              (2, "run55", "cut_paper_s2")],
    # seed 1: run 58 trained run 50's init_one_hot_maps again (every measure equal) and hit-tested it
    "only the release's one-hot maps (model.init: release_one_hot_maps)": [(1, "run58", "init_one_hot_maps_s1"),
                                                                            (2, "run57", "init_one_hot_maps_s2")],
    "only the release's decoder embedding (model.init: release_decoder_embedding)": [
        (1, "run64", "init_decoder_embedding_s1"), (2, "run58", "init_decoder_embedding_s2")],
}
MEASURES = ["test_ppl", "valid_ppl", "max_ratio", "ent2", "bleu4_sentence_avg",
            "o_avg_train", "io_avg_train", "o_avg_test", "io_avg_test"]


def measured(run: str, variant: str) -> dict:
    """One training's measures: its models.csv row, the kept epoch's validation PPL from its curve, and its
    sample-avg hit rates where the run hit-tested it (NaN otherwise)."""
    folder = HERE / run
    models = pd.read_csv(folder / "models.csv").set_index("variant").loc[variant]
    curve = pd.read_csv(folder / f"{variant}_seq2seq_curve.csv")
    out = {m: float(models[m]) for m in ("test_ppl", "max_ratio", "ent2", "bleu4_sentence_avg")}
    out["valid_ppl"] = float(curve["valid_ppl"].iloc[int(models["kept_epoch"]) - 1])
    tested_in = HERE / run55.run51.HIT_TESTED_IN.get((run, variant), run) / "hits.csv"
    hits = pd.read_csv(tested_in) if tested_in.is_file() else pd.DataFrame()
    tested = hits.query("variant == @variant and model == 'baseline'") if len(hits) else hits
    rates = run55.run51.run46.avg_rates(tested).iloc[0] if len(tested) else {}
    return out | {m: float(rates.get(m, math.nan)) for m in MEASURES if m.endswith(("_train", "_test"))}


def table() -> pd.DataFrame:
    preset = pd.DataFrame({seed: measured(run, v) for seed, run, v in PRESET}).T      # (seed, measure)
    rows = []
    for reading, trainings in VARIANTS.items():
        for seed, run, variant in trainings:
            values = measured(run, variant)
            for m in MEASURES:
                seeds, value = preset[m].dropna(), values[m]
                mean, sd = seeds.mean(), seeds.std()
                inside = None if math.isnan(value) else bool(seeds.min() <= value <= seeds.max())
                rows.append({"reading": reading, "seed": seed, "run": run, "variant": variant, "measure": m,
                             "value": value, "preset_same_seed": preset.loc[seed, m], "preset_mean": mean,
                             "preset_sd": sd, "preset_min": seeds.min(), "preset_max": seeds.max(),
                             "preset_n": len(seeds), "z": (value - mean) / sd, "inside_range": inside})
    return pd.DataFrame(rows)


def main() -> None:
    out = table()
    out.to_csv(HERE / "variants_by_seed.csv", index=False, float_format="%.6g")
    shown = out.dropna(subset=["value"]).assign(
        value=lambda d: d["value"].round(4), same_seed=lambda d: d["preset_same_seed"].round(4),
        range=lambda d: d["preset_min"].round(4).astype(str) + "-" + d["preset_max"].round(4).astype(str),
        z=lambda d: d["z"].round(2))
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        for reading, part in shown.groupby("reading", sort=False):
            columns = ["seed", "variant", "measure", "value", "same_seed", "range", "preset_n", "z", "inside_range"]
            print(f"\n{reading}\n", part[columns].to_string(index=False))


if __name__ == "__main__":
    main()
