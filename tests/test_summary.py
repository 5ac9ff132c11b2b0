"""The lines the workflow prints when it ends (Snakefile onsuccess): the headline numbers of this run's Tables 3
and 4, nothing for tables absent, unreadable or older than the run."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from negtrain_core.tables import summary

NA = float("nan")


def table4() -> pd.DataFrame:
    return pd.DataFrame({
        "row": ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1", "+neg-train 0.01"],
        "r_thres": [NA, NA, NA, NA, NA, 0.1, 0.01], "PPL": [NA, 68.693, 68.6, NA, 67.7, 67.811, 71.12],
        "M-ratio": [0.006, 0.232, 0.214, 0.138, 0.208, 0.09, 0.044], "scale": "quick"})


def table3() -> pd.DataFrame:
    rows = {"training": ["Baseline", "+neg-tr(0.5k)", "+neg-tr(1k)"], "hit_type": "sample-avg",
            "o_train": [16 / 35, 6 / 35, NA], "o_test": [25 / 35, 22 / 35, NA], "io_train": [13 / 35, 4 / 35, NA],
            "io_test": [22 / 35, 21 / 35, NA], "train_targets": [35.0, 35.0, NA], "scale": "quick"}
    return pd.DataFrame(rows)


def write(folder: Path, t3: pd.DataFrame | None, t4: pd.DataFrame | None) -> None:
    folder.mkdir(parents=True)
    for name, frame in (("table3", t3), ("table4", t4)):
        if frame is not None:
            frame.to_csv(folder / f"{name}.csv", index=False)


def test_both_tables_give_the_headline_numbers(tmp_path: Path) -> None:
    write(tmp_path / "chitchat", table3(), table4())
    lines = summary.summary_lines(["chitchat"], since=0, results=tmp_path)
    assert lines == [
        f"negtrain: {tmp_path}/chitchat/ (quick scale; all rows in table3.csv, table4.csv):",
        "  Algorithm 2 (Table 4), greedy max-ratio: baseline 23.2% (PPL 68.69) -> 9.0% (PPL 67.81) at r_thres 10%, "
        "4.4% (PPL 71.12) at r_thres 1%",
        "    the comparisons' max-ratio: GAN 21.4%, MMI 13.8%, UL 20.8%",
        "  Algorithm 1 (Table 3, +neg-tr(0.5k)), sample-avg hit rates of 35 targets a list:",
        "    o-hits: train list 45.7% -> 17.1%, test list 71.4% -> 62.9%",
        "    io-hits: train list 37.1% -> 11.4%, test list 62.9% -> 60.0%"]


def test_lists_of_different_sizes_are_counted_each(tmp_path: Path) -> None:
    """Target lists of one's own (targets.train, targets.test) need not keep as many targets each."""
    write(tmp_path / "mydata", table3().assign(test_targets=[6.0, 6.0, NA], train_targets=[9.0, 9.0, NA]), None)
    lines = summary.summary_lines(["mydata"], since=0, results=tmp_path)
    assert lines[1] == "  Algorithm 1 (Table 3, +neg-tr(0.5k)), sample-avg hit rates of 9 training and 6 test targets:"


def test_the_tables_web_pages_are_named_when_the_run_wrote_them(tmp_path: Path) -> None:
    write(tmp_path / "chitchat", table3(), table4())
    (tmp_path / "chitchat" / "report").mkdir()
    for name in ("table4.html", "table3.html", "table8.html"):
        (tmp_path / "chitchat" / "report" / name).write_text("<html></html>")
    os.utime(tmp_path / "chitchat" / "report" / "table8.html", (1000, 1000))         # an older run's page
    lines = summary.summary_lines(["chitchat"], since=2000, results=tmp_path)
    assert lines[-1] == ("  the tables this run wrote, beside the paper's, to open in a browser: "
                         f"{tmp_path}/chitchat/report/ (table3.html, table4.html)")


def test_missing_tables_and_rows_print_nothing_or_less(tmp_path: Path) -> None:
    assert summary.summary_lines(["chitchat"], since=0, results=tmp_path) == []        # no results at all
    write(tmp_path / "a", None, table4())                                              # Table 4 only
    only4 = summary.summary_lines(["a"], since=0, results=tmp_path)
    assert len(only4) == 3 and "Algorithm 1" not in "".join(only4)
    assert only4[0] == f"negtrain: {tmp_path}/a/ (quick scale; all rows in table4.csv):"   # the table it read alone
    write(tmp_path / "b", table3().iloc[[0]], table4()[table4()["row"] != "Baseline"])  # rows missing
    assert summary.summary_lines(["b"], since=0, results=tmp_path) == []
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "table4.csv").write_bytes(b"")                                    # unreadable
    assert summary.summary_lines(["c"], since=0, results=tmp_path) == []


def test_tables_older_than_the_run_are_not_summarised(tmp_path: Path) -> None:
    write(tmp_path / "chitchat", table3(), table4())
    os.utime(tmp_path / "chitchat" / "table3.csv", (1000, 1000))
    lines = summary.summary_lines(["chitchat"], since=2000, results=tmp_path)
    assert len(lines) == 3 and "Algorithm 2" in lines[1]                               # table4 is new, table3 old
    os.utime(tmp_path / "chitchat" / "table4.csv", (1000, 1000))
    assert summary.summary_lines(["chitchat"], since=2000, results=tmp_path) == []


@pytest.mark.slow
def test_quick_run_ends_with_the_summary_of_its_tables(quick_run: Path) -> None:
    """The golden quick run (tests/quick_small.yaml) prints, when it ends, the lines of the tables it wrote."""
    printed = (quick_run / "snakemake_output.txt").read_text()
    expected = summary.summary_lines(["chitchat"], since=0, results=quick_run / "results")
    assert len(expected) == 7 and "report/ (" in expected[-1]
    assert expected[0].startswith(f"negtrain: {quick_run / 'results'}/chitchat/ (quick scale")
    body = expected[1:-1]                     # the run prints results/ relative to its working directory
    assert "negtrain: results/chitchat/ (quick scale; all rows in table3.csv, table4.csv):" in printed
    assert all(line in printed for line in body)
    assert "did not write" not in printed     # every file rule all asks for exists: no missing-target line
