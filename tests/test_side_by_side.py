"""negtrain_core.tables.side_by_side: two runs' tables read into one side-by-side table (numbers by hand), empty
cells for what a run did not build, one-line errors for bad input, the Markdown and the CLI; and the paper-scale
table docs/reproduction/switchboard/side_by_side_paper.py builds with it from committed run files."""

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from negtrain_core.tables import side_by_side as sbs

ROOT = Path(__file__).resolve().parent.parent


def _write(run, name: str, rows: list[dict], sep: str = ",") -> None:
    path = run / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, sep=sep)


def _run(tmp_path, label: str, base_o: float, neg_o: float, table4: bool = True, stages=("train_seq2seq",)):
    """A working directory with the produced tables' real column names (a few rows of each)."""
    run = tmp_path / label
    res = "results/switchboard"
    _write(run, f"{res}/table8.csv", [{"model": "LM", "test_ppl": 44.0, "test_nll": 3.8},
                                     {"model": "Seq2seq", "test_ppl": 40.0, "test_nll": 3.7}])
    _write(run, f"{res}/table3.csv", [
        {"training": "Baseline", "o_train": base_o, "o_test": 0.5, "o_ppl": 40.0, "io_train": 0.2, "io_test": 0.4,
         "io_ppl": 40.0, "status": "ok"},
        {"training": "+neg-tr(0.5k)", "o_train": neg_o, "o_test": 0.25, "o_ppl": 41.0, "io_train": 0.01,
         "io_test": 0.3, "io_ppl": 40.5, "status": "ok"},
        {"training": "+neg-tr(1k)", "status": "not run: no paraphrase corpus"}])
    if table4:
        _write(run, f"{res}/table4.csv", [
            {"row": "Test-set", "r_thres": None, "PPL": None, "M-ratio": 0.006, "E-2": 8.1, "E-3": 8.5},
            {"row": "Baseline", "r_thres": None, "PPL": 40.0, "M-ratio": 0.30, "E-2": 4.0, "E-3": 5.0},
            {"row": "+GAN", "r_thres": None, "PPL": 40.2, "M-ratio": 0.33, "E-2": 3.9, "E-3": 4.9},
            {"row": "+neg-train 0.01", "r_thres": 0.01, "PPL": 41.0, "M-ratio": 0.09, "E-2": 4.2, "E-3": 5.3}])
    for i, stage in enumerate(stages):
        _write(run, f"benchmarks_out/switchboard/{stage}.tsv", [{"s": 100.0 + i, "h:m:s": "0:01:40"}], sep="\t")
    return run


def test_two_runs_side_by_side_by_hand(tmp_path):
    a = _run(tmp_path, "lstm", base_o=0.6, neg_o=0.03)
    b = _run(tmp_path, "transformer", base_o=0.4, neg_o=0.1, table4=False, stages=("train_seq2seq", "gan/g_lr-0.1"))
    t = sbs.side_by_side([a, b], ["LSTM", "Transformer"], "switchboard").set_index(["section", "quantity"])
    assert list(t.columns) == ["LSTM", "Transformer"]
    assert t.loc[("Table 8", "seq2seq test PPL")].tolist() == [40.0, 40.0]
    assert t.loc[("Table 3", "baseline o-hits, train list")].tolist() == [0.6, 0.4]
    held_in = t.loc[("Table 3", "+neg-tr(0.5k) o: held-in reduction")]
    assert held_in["LSTM"] == pytest.approx(0.95) and held_in["Transformer"] == pytest.approx(0.75)
    assert t.loc[("Table 3", "+neg-tr(0.5k) o: test-list reduction")].tolist() == pytest.approx([0.5, 0.5])
    assert t.loc[("Table 3", "+neg-tr(0.5k) io: PPL")].tolist() == [40.5, 40.5]
    assert t.loc[("Table 4", "+neg-train 0.01: max-ratio reduction"), "LSTM"] == pytest.approx(0.7)
    assert t.loc[("Table 4", "+GAN: max-ratio reduction"), "LSTM"] == pytest.approx(-0.1)   # a rise is negative
    assert not any(q.startswith("Test-set") for q in t.loc["Table 4"].index)
    assert math.isnan(t.loc[("Table 4", "+neg-train 0.01: max-ratio"), "Transformer"])     # run b has no Table 4
    assert t.loc[("wall time (s)", "train_seq2seq")].tolist() == [100.0, 100.0]
    assert math.isnan(t.loc[("wall time (s)", "gan/g_lr-0.1"), "LSTM"]) and t.index[-1][1] == "gan/g_lr-0.1"
    md = sbs.markdown(t.reset_index()).splitlines()
    assert md[0] == "| section | quantity | LSTM | Transformer |"
    assert "| Table 3 | baseline o-hits, train list | 60.0% | 40.0% |" in md
    assert "| Table 4 | Baseline: Ent-2 | 4.00 |  |" in md
    assert "| wall time (s) | train_seq2seq | 100.0 | 100.0 |" in md


def test_bad_input_fails_in_one_line_naming_it(tmp_path, capsys):
    a = _run(tmp_path, "a", 0.6, 0.03)
    with pytest.raises(ValueError, match="2 runs need as many distinct labels"):
        sbs.side_by_side([a, a], ["x", "x"], "switchboard")
    with pytest.raises(FileNotFoundError, match="no results of dataset 'ubuntu'"):
        sbs.side_by_side([a], ["a"], "ubuntu")
    (a / "benchmarks_out/switchboard/train_seq2seq.tsv").write_text("")
    with pytest.raises(SystemExit) as e:
        sbs.main([str(a), "--labels", "a"])
    assert str(e.value).startswith("side_by_side: ") and "train_seq2seq.tsv: not a readable table" in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_prints_markdown_and_writes_csv(tmp_path, capsys):
    a, b = _run(tmp_path, "a", 0.6, 0.03), _run(tmp_path, "b", 0.5, 0.05)
    sbs.main([str(a), str(b), "--out", str(tmp_path / "out" / "sbs.csv")])
    assert capsys.readouterr().out.startswith("| section | quantity | a | b |")
    written = pd.read_csv(tmp_path / "out" / "sbs.csv")
    assert list(written.columns) == ["section", "quantity", "a", "b"] and len(written) > 20
    pd.testing.assert_frame_equal(written, sbs.side_by_side([a, b], ["a", "b"], "switchboard"), check_dtype=False)


def test_the_paper_scale_table_is_the_tool_run_on_the_committed_run_files(tmp_path, capsys):
    """docs/reproduction/switchboard/side_by_side_paper.py: each cell it reports is the committed number it names."""
    here = ROOT / "docs" / "reproduction" / "switchboard"
    spec = importlib.util.spec_from_file_location("side_by_side_paper", here / "side_by_side_paper.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = script.main(["--out", str(tmp_path / "sbs.csv")]).set_index(["section", "quantity"])
    assert pd.read_csv(tmp_path / "sbs.csv").set_index(["section", "quantity"]).equals(table)
    assert capsys.readouterr().out.startswith("| section | quantity | LSTM | Transformer |")
    hits = pd.read_csv(here / "run31" / "hits.csv").query("model == 'baseline' and list == 'train'")
    o = hits.query("arch == 'transformer' and hit_type == 'o_sample_avg'")
    assert table.loc[("Table 3", "baseline o-hits, train list"), "Transformer"] == 400 / 468 == o["rate"].iloc[0]
    after = pd.read_csv(here / "run32" / "hits.csv").query("arch == 'lstm' and model == 'negtr-io-0.5k'")
    io = after.query("list == 'test' and hit_type == 'io_sample_avg'")["rate"].iloc[0]
    assert table.loc[("Table 3", "+neg-tr(0.5k) io-hits, test list"), "LSTM"] == io
    lstm_freq = pd.read_csv(here / "freq-0.01_curve.csv").set_index("epoch")
    row = ("Table 4", "+neg-train 0.01, 20 epochs: max-ratio")
    assert table.loc[row, "LSTM"] == lstm_freq.loc[20, "test_max_ratio"]
    assert math.isnan(table.loc[row, "Transformer"])
    seconds = pd.read_csv(here / "run32" / "stage_seconds.csv").query("arch == 'transformer'").set_index("stage")
    assert table.loc[("wall time (s)", "train_seq2seq"), "Transformer"] == seconds.loc["train_seq2seq", "seconds"]
    preset = "Transformer, Alg. 1 lr 0.005"                          # run 36: configs/transformer.yaml's Algorithm 1
    models = pd.read_csv(here / "run36" / "models.csv").query("run == 36").set_index("model")
    assert table.loc[("Table 3", "+neg-tr(0.5k) io: PPL"), preset] == models.loc["negtr-io-0.5k", "test_ppl"]
    seconds = pd.read_csv(here / "run36" / "stage_seconds.csv").query("run == '36'").set_index("stage")
    assert table.loc[("wall time (s)", "negtr-o-0.5k"), preset] == seconds.loc["negtr-o-0.5k", "seconds"]
    ppl = table.loc[("Table 8", "seq2seq test PPL")]
    assert ppl[preset] == ppl["Transformer"]
