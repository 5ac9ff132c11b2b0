"""docs/reproduction/switchboard/generic_vs_hits.py: it reads every hit-tested release-attention baseline from the
committed run files, its correlations are what they compute, and its committed CSV is what it reads."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "reproduction" / "switchboard" / "generic_vs_hits.py"


def _script():
    spec = importlib.util.spec_from_file_location("generic_vs_hits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reads_every_hit_tested_training():
    table = _script().trainings().set_index(["run", "variant"])
    assert len(table) == 20 and (table["group"] == "release preset, seed").sum() == 7
    assert ("run48", "shuffled") not in table.index and ("run50", "init_decoder_embedding") not in table.index
    file_order = table.loc[("run62", "file_order")]              # run62/hits.csv: 115 and 96 of 468
    assert math.isclose(file_order["o_avg_train"], 115 / 468) and math.isclose(file_order["io_avg_train"], 96 / 468)
    init = table.loc[("run62", "release_init")]
    assert math.isclose(init["o_avg_train"], 91 / 468) and math.isclose(init["max_ratio"], 0.6901643248392474)
    assert math.isclose(table.loc[("run22", "preset_plain_sgd"), "max_ratio"], 0.5899023577042153)
    assert math.isclose(table.loc[("run19", "paper_levels"), "o_avg_train"], 128 / 468)


def test_spearman_and_its_permutation_p():
    script = _script()
    x, y = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([10.0, 8.0, 8.0, 3.0, 1.0])
    ranks = pd.Series(x).rank(), pd.Series(y).rank()
    assert math.isclose(script._spearman(x, y), float(np.corrcoef(*ranks)[0, 1]))
    # a perfect ordering of five: 2 of the 120 orders are as extreme, so p near 2/120 (and never 0)
    p = script.permutation_p(x, -x)
    assert abs(p - 2 / 120) < 0.005
    assert script.permutation_p(x, np.array([3.0, 1.0, 5.0, 2.0, 4.0])) > 0.5


def test_committed_csv_matches_the_run_files():
    committed = pd.read_csv(SCRIPT.with_name("generic_vs_hits.csv"))
    pd.testing.assert_frame_equal(committed, _script().trainings(), check_dtype=False, rtol=1e-9)
