"""Curves (hit rate per epoch of Algorithm 1 by hand, max-ratio/PPL of Algorithm 2, baseline PPL), the HTML views
of the tables, and what `rule all` builds (new outputs; Table 6 only where ratings are configured)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from negtrain_core.tables import comparison, curves, formats, malicious, report
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


def test_long_curves_plot_algorithm_1s_test_ppl_where_its_curve_has_it() -> None:
    """malicious.eval_every_epoch: the curve's test_ppl (one value per epoch, in each of its rows) joins Algorithm
    2's in the test-PPL panel, one point per epoch; a curve without it adds nothing there."""
    evaluated = malicious_curve().assign(test_ppl=lambda d: d["epoch"].map({1: 41.5, 2: 42.0}))
    f = curves.long_curves({"negtr-o-0.5k": evaluated, "negtr-io-0.5k": malicious_curve()}, {}, {})
    ppl = f[f["panel"] == "neg_ppl"]
    assert list(ppl["model"]) == ["negtr-o-0.5k"] * 2
    assert list(ppl["epoch"]) == [1, 2] and list(ppl["value"]) == [41.5, 42.0]


def test_write_curves_reads_files_by_model_name_and_plots(tmp_path: Path) -> None:
    paths = {}
    for name, df in (("negtr-io-1k", malicious_curve()), ("freq-0.01", frequent_curve()), ("lm", baseline_curve())):
        paths[name] = tmp_path / f"{name}_curve.csv"
        df.to_csv(paths[name], index=False)
    f = curves.write_curves([paths["negtr-io-1k"]], [paths["freq-0.01"]], [paths["lm"]], tmp_path / "c.png",
                            tmp_path / "c.csv", "chitchat", "quick")
    assert set(f["model"]) == {"negtr-io-1k", "freq-0.01", "lm"}
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c.csv"), f, check_dtype=False)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_curve_without_a_needed_column_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "freq-0.1_curve.csv"
    frequent_curve().drop(columns="test_max_ratio").to_csv(path, index=False)
    with pytest.raises(curves.CurveError) as err:
        curves.read_curve(path, "frequent")
    assert str(err.value) == (f"{path}: no column 'test_max_ratio' (a frequent curve needs epoch, test_max_ratio, "
                              "test_ppl)")


# ------------------------------------------------------------------------------------- the table views

NOT_RUN = "not run: no paraphrase corpus (config paraphrase.corpora is empty)"


def table3_frame() -> pd.DataFrame:
    """Table 3 as rule table3 writes it, for chitchat (hit type sample-avg): the baseline, and +neg-tr(1k) not run
    (its list could not be built: nothing measured)."""
    nan = float("nan")
    base = {"training": "Baseline", "model_o": "m-o", "model_io": "m-io", "hit_type": "sample-avg",
            "o_train": 0.5384615384615384, "o_test": 0.6923076923076923, "o_ppl": 166.82438565799916,
            "io_train": 0.5, "io_test": 0.2, "io_ppl": 166.82438565799916, "o_beam_overlap": nan,
            "io_beam_overlap": 0.6, "list_size": nan, "train_targets": 13.0, "test_targets": 13.0,
            "train_skipped": 7.0, "test_skipped": 7.0, "scale": "quick", "status": "ok"}
    measured = [c for c in base if c not in ("training", "model_o", "model_io", "hit_type", "scale", "status")]
    not_run = {**base, **dict.fromkeys(measured, nan), "training": "+neg-tr(1k)", "status": NOT_RUN}
    return pd.DataFrame([base, not_run])


def table4_frame() -> pd.DataFrame:
    """Table 4 without the +neg-train 0.01 row the paper has (another r_thres configured)."""
    nan = float("nan")
    rows = [("Test-set", nan, nan, 0.006, 8.147355489534457, 8.55), ("Baseline", nan, 166.82438565799916, 1.0, 1.39,
                                                                      1.1),
            ("+UL", nan, 163.98, 1.0, 1.39, 1.1), ("+neg-train 0.1", 0.1, 170.68, 0.912, 0.693, 0.0)]
    frame = pd.DataFrame(rows, columns=["row", "r_thres", "PPL", "M-ratio", "E-2", "E-3"])
    return frame.assign(**{f"paper_{c}": nan for c in ("PPL", "M-ratio", "E-2", "E-3")}, scale="quick")


def cells(page: str, label: str) -> list[str]:
    """The texts of the cells of the row labelled ``label`` (its first occurrence) in a view."""
    rows = re.findall(r'<th scope="row">(.*?)</th>(.*?)</tr>', page, re.S)
    row = next(cells for head, cells in rows if re.sub(r"<[^>]+>", "", head) == label)
    return re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)


def headers(page: str, attrs: str) -> list[str]:
    """The texts of a view's header cells with these attributes (tags inside them removed)."""
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(rf"<th {attrs}>(.*?)</th>", page)]


def test_values_print_in_the_papers_form() -> None:
    assert formats.format_value(0.5384615, "rate") == "53.8%"
    assert formats.format_value(166.82438565799916, "ppl") == "166.82"
    assert formats.format_value(8.147355489534457, "entropy") == "8.15"
    assert formats.format_value(0.23433346668201804, "bleu") == "0.234"
    assert formats.format_value(5.1169416762293105, "nll") == "5.12"
    assert formats.format_value(13.0, "count") == "13"
    assert formats.format_value("negtr-o-1k", "text") == "negtr-o-1k"
    for missing in (float("nan"), None, pd.NA, ""):
        assert formats.format_value(missing, "rate", "not run: no corpus") == "not run: no corpus"
    assert formats.format_diff(0.2604615384615384, "rate") == "+26.0 pp"
    assert formats.format_diff(-0.094, "rate") == "-9.4 pp"
    assert formats.format_diff(124.01438565799916, "ppl") == "+124.01"
    assert formats.format_diff(-0.00001, "rate") == "+0.0 pp"             # no "-0.0"
    assert formats.format_diff(float("nan"), "ppl") == ""
    assert formats.relative(2.896855539780405) == "+290%" and formats.relative(float("nan")) == ""


def test_table3_view_sets_ours_beside_the_paper_with_the_difference() -> None:
    page = report.table_page("table3", table3_frame(), "chitchat", "results/chitchat/table3.csv")
    assert headers(page, 'colspan="3" class="grp"') == [
        "o-sample-avg hit rate, training list", "o-sample-avg hit rate, test list", "test PPL, model trained on o-hits",
        "io-sample-avg hit rate, training list", "io-sample-avg hit rate, test list",
        "test PPL, model trained on io-hits"]
    assert '<span class="nw">o-hits</span>' in page                 # hyphenated words stay on one line
    assert page.count('<th class="sub">paper</th>') == page.count('<th class="sub">diff</th>') == 6
    # ours, the paper's Switchboard value, ours - paper: 53.8% vs 27.8%; PPL 166.82 vs 42.81
    assert cells(page, "Baseline")[:9] == ["53.8%", "27.8%", "+26.0 pp", "69.2%", "27.6%", "+41.6 pp", "166.82",
                                           "42.81", "+124.01"]
    assert "the paper&#x27;s Switchboard numbers (chitchat is not in the paper" in page
    assert "o_train" not in page and "0.538" not in page
    # the row not run: its cells say so, the paper's values stay, its reason is a line of words under it
    assert cells(page, "+neg-tr(1k)")[:3] == ["not run", "2.4%", ""]
    assert page.count(f'<td colspan="9">{NOT_RUN}</td>') == 1                # under the first block only
    assert cells(page.split('<tbody class="block">', 1)[1], "Baseline")[:3] == ["50.0%", "19.6%", "+30.4 pp"]
    # the run's own columns: overlap as a rate, counts as integers, N/A where a row has no such number
    details = page.split('id="details"', 1)[1]                              # a line per column, a column per row
    assert cells(details, "beam k-best overlap with the baseline, io-model") == ["60.0%", "not run"]
    assert cells(details, "targets searched, training list") == ["13", "not run"]
    assert cells(details, "negative-training list size") == ["N/A", "not run"]


def test_a_dataset_of_ones_own_is_set_beside_switchboard_as_chitchat_is() -> None:
    """As in paper_comparison.csv (docs/data.md): the paper's Switchboard numbers, and a line saying so."""
    page = report.table_page("table3", table3_frame(), "mychat", "results/mychat/table3.csv")
    assert cells(page, "Baseline")[:3] == ["53.8%", "27.8%", "+26.0 pp"]
    assert "the paper&#x27;s Switchboard numbers (mychat is not in the paper" in page
    assert "the paper has no mychat numbers" not in page


def test_table3_view_names_the_hit_type_measured_and_notes_the_papers_other_one() -> None:
    """Switchboard's paper columns are sample-avg; a Table 3 measured with sample-min is labelled sample-min and
    the intro says that the paper's are sample-avg."""
    page = report.table_page("table3", table3_frame().assign(hit_type="sample-min"), "switchboard", "table3.csv")
    assert headers(page, 'colspan="3" class="grp"')[:2] == ["o-sample-min hit rate, training list",
                                                            "o-sample-min hit rate, test list"]
    assert ('<p class="intro">Hit rates measured as sample-min-hits; the paper&#x27;s columns are sample-avg-hits.'
            '</p>') in page
    same = report.table_page("table3", table3_frame(), "switchboard", "table3.csv")
    assert "Hit rates measured as" not in same
    assert headers(same, 'colspan="3" class="grp"')[0] == "o-sample-avg hit rate, training list"


def test_table4_view_says_na_no_paper_row_and_lists_the_papers_rows_not_run() -> None:
    page = report.table_page("table4", table4_frame(), "switchboard", "t4.csv")
    assert cells(page, "Test-set")[:4] == ["N/A", "N/A", "N/A", ""]         # r_thres, PPL ours/paper: N/A
    assert cells(page, "Test-set")[4:7] == ["0.6%", "10.0%", "-9.4 pp"]
    assert cells(page, "+UL")[1:4] == ["163.98", "\u2014", ""]               # the paper has no +UL row
    assert cells(page, "+neg-train 0.1")[:4] == ["10.0%", "170.68", "42.84", "+127.84"]
    assert cells(page, "+neg-train 0.01")[1:3] == ["not run", "44.32"]       # the paper's row, not produced here
    assert "not run: this config produces no row &#x27;+neg-train 0.01&#x27;" in page
    assert headers(page, 'colspan="3" class="grp"') == ["test PPL", "max-ratio (M-ratio)", "Ent-2 (E-2)",
                                                        "Ent-3 (E-3)"]
    assert "A quick-scale run" in page


def test_table6_view_takes_the_papers_shares_from_its_own_columns() -> None:
    frame = pd.DataFrame([{"dataset": "switchboard", "tie": 0.5, "baseline": 0.2, "neg-train": 0.3, "n": 10,
                           "n_tie": 5, "n_baseline": 2, "n_neg-train": 3, "unrated": 0, "identical_pairs": 1,
                           "paper_tie": 0.451, "paper_baseline": 0.183, "paper_neg-train": 0.364,
                           "baseline_model": "baseline", "negtrain_model": "freq-0.01", "scale": "paper"}])
    page = report.table_page("table6", frame, "switchboard", "t6.csv")
    assert cells(page, "switchboard")[:3] == ["50.0%", "45.1%", "+4.9 pp"]
    assert "A quick-scale run" not in page


def test_comparison_view_prints_each_quantity_in_its_tables_form() -> None:
    frame = comparison.compare({"table3": table3_frame(), "table4": table4_frame()}, "chitchat", "quick")
    page = report.comparison_page(frame, "paper_comparison.csv")
    assert ('<td class="text">o-sample-avg hit rate, training list</td><td class="num grp">53.8%</td>'
            '<td class="num paper">27.8%</td><td class="num diff">+26.0 pp</td><td class="num diff">+94%</td>') in page
    assert '<td class="num grp">not run</td><td class="num paper">2.4%</td>' in page
    assert f">{NOT_RUN}</td>" in page                                         # the reason, once per cell
    assert page.count(comparison.CHITCHAT_NOTE) == 0 and "runs the Switchboard recipe" in page


def test_views_show_every_column_of_the_comparison_and_of_table3() -> None:
    for table, (_, columns) in comparison.LAYOUT.items():
        assert set(columns) <= {c.name for c in report.VIEWS[table].main if c.compared}, table
    v = report.VIEWS["table3"]
    shown = {c.name for c in (v.label, *v.main, *v.details)} | {"hit_type", "scale", "status"}
    assert shown == set(malicious.COLUMNS)


def test_write_table_view_embeds_the_tables_plots(tmp_path: Path) -> None:
    csv, png = tmp_path / "table3.csv", tmp_path / "figure1.png"
    table3_frame().to_csv(csv, index=False)
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    out = tmp_path / "report" / "table3.html"
    report.write_table_view(csv, [png], out, "table3", "chitchat")
    page = out.read_text()
    assert f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}"' in page
    assert report.FIGURES["table3"]["figure1.png"] in page and f"{csv}: 2 rows" in page


def test_every_view_has_a_stage_and_a_title() -> None:
    assert set(report.STAGES) == set(report.TITLES) == {"table3", "table4", "table8", "table9", "table6",
                                                        "paper_comparison"}
    assert set(report.VIEWS) | {"paper_comparison"} == set(report.TITLES) and set(report.FIGURES) <= set(report.TITLES)


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
