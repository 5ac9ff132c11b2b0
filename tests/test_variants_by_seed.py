"""docs/reproduction/switchboard/variants_by_seed.py: it reads the committed run files it names, places each variant
among the preset's seeds, and its committed CSV is what it computes from them. generic_vs_hits.py, which reads every
hit-tested release-attention baseline through it: the same, and its correlations are what they compute."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "reproduction" / "switchboard" / "variants_by_seed.py"


def _script(name: str = "variants_by_seed"):
    spec = importlib.util.spec_from_file_location(name, SCRIPT.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_places_each_training_among_the_preset_seeds():
    table = _script().table().set_index(["variant", "measure"])
    shuffled = table.loc[("shuffled_s2", "o_avg_train")]
    assert math.isclose(shuffled["value"], 160 / 468)             # run56/hits.csv: 160 of 468
    assert shuffled["preset_n"] == 7                  # seed 2 (run 49) hit-tested by run 57, which trained it again
    assert math.isclose(shuffled["preset_same_seed"], 108 / 468)   # run57/hits.csv: preset_s2, 108 of 468
    assert math.isclose(shuffled["preset_max"], 137 / 468) and not shuffled["inside_range"]
    cut = table.loc[("cut_paper_s1", "max_ratio")]
    assert cut["preset_n"] == 7 and cut["inside_range"] and math.isclose(cut["preset_same_seed"], 0.4834484401047869)
    assert math.isclose(cut["z"], (cut["value"] - cut["preset_mean"]) / cut["preset_sd"])
    dropout = table.loc[("dropout_all_s1", "o_avg_train")]             # run 48's training again, hit-tested by run 59
    assert math.isclose(dropout["value"], 132 / 468) and dropout["inside_range"]     # run59/hits.csv: 132 of 468
    dropout_s2 = table.loc[("dropout_all_s2", "io_avg_train")]         # run 49's training again, hit-tested by run 61
    assert math.isclose(dropout_s2["value"], 86 / 468) and dropout_s2["inside_range"]   # run61/hits.csv: 86 of 468
    assert dropout_s2["preset_same_seed"] == table.loc[("shuffled_s2", "io_avg_train"), "preset_same_seed"]
    maps = table.loc[("init_one_hot_maps_s2", "o_avg_train")]
    assert math.isclose(maps["value"], 155 / 468) and not maps["inside_range"]     # run57/hits.csv: 155 of 468
    maps_s1 = table.loc[("init_one_hot_maps_s1", "o_avg_train")]      # run 50's training again, hit-tested by run 58
    assert math.isclose(maps_s1["value"], 136 / 468) and maps_s1["inside_range"]    # run58/hits.csv: 136 of 468
    embedding = table.loc[("init_decoder_embedding_s2", "o_avg_train")]
    assert math.isclose(embedding["value"], 173 / 468) and not embedding["inside_range"]   # run58/hits.csv
    # seed 1 of the decoder embedding and of shuffled batches: runs 50 and 48 trained again, hit-tested by run 64
    embedding_s1 = table.loc[("init_decoder_embedding_s1", "o_avg_train")]
    assert math.isclose(embedding_s1["value"], 168 / 468) and not embedding_s1["inside_range"]   # run64/hits.csv
    assert math.isclose(embedding_s1["preset_same_seed"], 112 / 468)                    # run46/hits.csv: 112 of 468
    shuffled_s1 = table.loc[("shuffled_s1", "io_avg_train")]
    assert math.isclose(shuffled_s1["value"], 94 / 468) and not shuffled_s1["inside_range"]   # above 78-93 of 468
    assert math.isclose(table.loc[("shuffled_s1", "max_ratio"), "value"], 0.5996665872826864)   # run 48's model
    assert not {"init_decoder_embedding", "shuffled"} & set(table.index.get_level_values("variant"))


def test_committed_csv_matches_the_run_files():
    committed = pd.read_csv(SCRIPT.with_name("variants_by_seed.csv"))
    fresh = _script().table()
    assert list(committed.columns) == list(fresh.columns)
    pd.testing.assert_frame_equal(committed.drop(columns="inside_range"), fresh.drop(columns="inside_range"),
                                  check_dtype=False, rtol=1e-5)
    assert committed["inside_range"].astype(str).tolist() == fresh["inside_range"].astype(str).tolist()


def test_generic_vs_hits_reads_every_hit_tested_training():
    table = _script("generic_vs_hits").trainings().set_index(["run", "variant"])
    assert len(table) == 23 and (table["group"] == "release preset, seed").sum() == 7
    assert ("run48", "shuffled") not in table.index and ("run50", "init_decoder_embedding") not in table.index
    shuffled = table.loc[("run64", "shuffled_s1")]               # run64/hits.csv: 133 and 94 of 468
    assert math.isclose(shuffled["o_avg_train"], 133 / 468) and math.isclose(shuffled["max_ratio"], 0.5996665872826864)
    assert math.isclose(table.loc[("run64", "init_decoder_embedding_s1"), "io_avg_train"], 106 / 468)
    file_order = table.loc[("run62", "file_order")]              # run62/hits.csv: 115 and 96 of 468
    assert math.isclose(file_order["o_avg_train"], 115 / 468) and math.isclose(file_order["io_avg_train"], 96 / 468)
    init = table.loc[("run62", "release_init")]
    assert math.isclose(init["o_avg_train"], 91 / 468) and math.isclose(init["max_ratio"], 0.6901643248392474)
    assert math.isclose(table.loc[("run22", "preset_plain_sgd"), "max_ratio"], 0.5899023577042153)
    momentum = table.loc[("run63", "release_momentum")]          # run63/hits.csv: 227 and 121 of 468
    assert math.isclose(momentum["o_avg_train"], 227 / 468) and math.isclose(momentum["io_avg_train"], 121 / 468)
    assert math.isclose(table.loc[("run19", "paper_levels"), "o_avg_train"], 128 / 468)


def test_generic_vs_hits_spearman_and_its_permutation_p():
    script = _script("generic_vs_hits")
    x, y = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([10.0, 8.0, 8.0, 3.0, 1.0])
    ranks = pd.Series(x).rank(), pd.Series(y).rank()
    assert math.isclose(script._spearman(x, y), float(np.corrcoef(*ranks)[0, 1]))
    # a perfect ordering of five: 2 of the 120 orders are as extreme, so p near 2/120 (and never 0)
    p = script.permutation_p(x, -x)
    assert abs(p - 2 / 120) < 0.005
    assert script.permutation_p(x, np.array([3.0, 1.0, 5.0, 2.0, 4.0])) > 0.5


def test_generic_vs_hits_csv_matches_the_run_files():
    committed = pd.read_csv(SCRIPT.with_name("generic_vs_hits.csv"))
    pd.testing.assert_frame_equal(committed, _script("generic_vs_hits").trainings(), check_dtype=False, rtol=1e-9)


def test_generic_vs_hits_partial_spearman_holds_the_third_fixed():
    script = _script("generic_vs_hits")
    rng = np.random.default_rng(0)
    given = rng.normal(size=200)
    table = pd.DataFrame({"given": given, "a": given + 0.1 * rng.normal(size=200),
                          "b": given + 0.1 * rng.normal(size=200)})
    assert abs(table[["a", "b"]].corr("spearman").iloc[0, 1]) > 0.9    # a and b agree only through ``given``
    assert abs(script.partial_spearman(table, "a", "b", "given")) < 0.2
    table["b"] = table["a"] + 0.01 * rng.normal(size=200)               # now they agree beyond it
    assert script.partial_spearman(table, "a", "b", "given") > 0.8
