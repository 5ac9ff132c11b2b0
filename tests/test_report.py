"""Curves (hit rate per epoch of Algorithm 1 by hand, max-ratio/PPL of Algorithm 2, baseline PPL), the HTML views
of the tables, and what `rule all` builds (new outputs; Table 6 only where ratings are configured)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from negtrain_core.tables import curves, report
from snakemake_cli import snakemake


def malicious_curve() -> pd.DataFrame:
    """Two batches per epoch (3 and 2 targets); hits when searched (round 0): epoch 1: 2 + 1, epoch 2: 1 + 0."""
    rows = [(1, 0, 3, 0, 2), (1, 0, 3, 1, 1), (1, 0, 3, 2, 0), (1, 1, 2, 0, 1), (1, 1, 2, 1, 0),
            (2, 0, 3, 0, 1), (2, 0, 3, 1, 0), (2, 1, 2, 0, 0)]
    df = pd.DataFrame(rows, columns=["epoch", "batch", "targets", "round", "hits"])
    return df.assign(neg_loss=-1.0, pos_nll=5.0)


def frequent_curve() -> pd.DataFrame:
    return pd.DataFrame({"epoch": [0, 1, 2], "steps": [0, 10, 20], "test_max_ratio": [0.9, 0.5, 0.3],
                         "test_ppl": [40.0, 41.0, 43.0]})


def baseline_curve() -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2], "lr": [1.0, 1.0], "train_ppl": [300.0, 200.0], "valid_ppl": [250.0, 180.0]})


def test_long_curves_by_hand() -> None:
    f = curves.long_curves({"negtr-o-0.5k": malicious_curve()}, {"freq-0.1": frequent_curve()},
                           {"seq2seq": baseline_curve()})
    hit = f[f["panel"] == "hit_rate"]
    assert list(hit["epoch"]) == [1, 2] and list(hit["value"]) == [pytest.approx(3 / 5), pytest.approx(1 / 5)]
    assert list(f[f["panel"] == "max_ratio"]["value"]) == [0.9, 0.5, 0.3]
    assert list(f[f["panel"] == "neg_ppl"]["value"]) == [40.0, 41.0, 43.0]
    base = f[f["panel"] == "baseline_ppl"]
    assert list(base["series"]) == ["seq2seq train"] * 2 + ["seq2seq valid"] * 2
    assert list(base["value"]) == [300.0, 200.0, 250.0, 180.0]
    assert list(f.columns) == curves.COLUMNS


def test_write_curves_reads_files_by_model_name_and_plots(tmp_path: Path) -> None:
    paths = {}
    for name, df in (("negtr-io-1k", malicious_curve()), ("freq-0.01", frequent_curve()), ("lm", baseline_curve())):
        paths[name] = tmp_path / f"{name}_curve.csv"
        df.to_csv(paths[name], index=False)
    f = curves.write_curves([paths["negtr-io-1k"]], [paths["freq-0.01"]], [paths["lm"]], tmp_path / "c.png",
                            tmp_path / "c.csv", "chitchat", "quick")
    assert set(f["model"]) == {"negtr-io-1k", "freq-0.01", "lm"}
    assert pd.read_csv(tmp_path / "c.csv").shape == f.shape
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_curve_without_a_needed_column_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "freq-0.1_curve.csv"
    frequent_curve().drop(columns="test_max_ratio").to_csv(path, index=False)
    with pytest.raises(curves.CurveError) as err:
        curves.read_curve(path, "frequent")
    assert str(err.value) == (f"{path}: no column 'test_max_ratio' (a frequent curve needs epoch, test_max_ratio, "
                              "test_ppl)")


def test_table_view_formats_cells_and_greys_not_run_rows() -> None:
    frame = pd.DataFrame({"training": ["Baseline", "+neg-tr(1k)"], "o_train": [0.123456, float("nan")],
                          "n": [13, 0], "status": ["ok", "not run: a <reason>"]})
    page = report.table_view_html(frame, "Table 3: x", "results/chitchat/table3.csv")
    assert "<tr><td>Baseline</td><td>0.1235</td><td>13</td><td>ok</td></tr>" in page
    assert ('<tr class="notrun"><td>+neg-tr(1k)</td><td></td><td>0</td><td>not run: a &lt;reason&gt;</td></tr>'
            in page)
    assert "<th>o_train</th>" in page and "results/chitchat/table3.csv: 2 rows" in page


def test_every_view_has_a_stage_and_a_title() -> None:
    assert set(report.STAGES) == set(report.TITLES) == {"table3", "table4", "table8", "table9", "table6",
                                                        "paper_comparison"}


def planned(run_stdout: str) -> set[str]:
    """The rule names of a dry run's job table (Snakemake prints 'job  count' rows)."""
    lines = run_stdout.split("Job stats:", 1)[1].splitlines()
    return {line.split()[0] for line in lines[3:] if line.strip() and not line.startswith("total")}


def test_rule_all_builds_comparison_curves_sheet_and_views_but_table6_only_with_ratings(tmp_path: Path) -> None:
    run = snakemake(tmp_path, "-n", "--config", "scale=quick")
    assert run.returncode == 0, run.stderr[-2000:]
    jobs = planned(run.stdout)
    assert {"paper_comparison", "curves", "rating_sheet", "table_view"} <= jobs and "table6" not in jobs
    assert "results/chitchat/report/table6.html" not in run.stdout
    ratings = tmp_path / "filled.csv"
    ratings.write_text("item,rating\n1,A\n")
    overlay = tmp_path / "ratings.yaml"
    overlay.write_text(yaml.safe_dump({"human_eval": {"ratings": {"chitchat": str(ratings)}}}))
    with_ratings = snakemake(tmp_path, "-n", "--config", "scale=quick", overlays=[overlay])
    assert with_ratings.returncode == 0, with_ratings.stderr[-2000:]
    assert "table6" in planned(with_ratings.stdout)
    assert "results/chitchat/report/table6.html" in with_ratings.stdout
