"""The paper comparison: cells beside the paper's by hand, 'not run' rows kept with their reason, paper rows this
run lacks, chitchat against Switchboard, and the typed-in paper numbers against the paper's own text."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from negtrain_core.tables import comparison as cmp
from negtrain_core.evaluate.baselines import PAPER_TABLE8
from negtrain_core.tables.frequent import PAPER_TABLE4, PAPER_TABLE9

PAPER_TEXT = Path(__file__).resolve().parent.parent.parent / "shared" / "paper" / "negative_training_acl2020.txt"
NAN = math.nan


def table3(hit_type: str = "sample-avg") -> pd.DataFrame:
    """A produced Table 3: baseline and 0.5k measured, 1k and 2.5k not run."""
    why = "not run: no paraphrase corpus"
    return pd.DataFrame([
        {"training": "Baseline", "hit_type": hit_type, "o_train": 0.5, "o_test": 0.25, "o_ppl": 50.0,
         "io_train": 0.2, "io_test": 0.1, "io_ppl": 50.0, "status": "ok"},
        {"training": "+neg-tr(0.5k)", "hit_type": hit_type, "o_train": 0.0, "o_test": 0.05, "o_ppl": 52.0,
         "io_train": 0.02, "io_test": 0.04, "io_ppl": 51.0, "status": "ok"},
        {"training": "+neg-tr(1k)", "hit_type": hit_type, "status": why},
        {"training": "+neg-tr(2.5k)", "hit_type": hit_type, "status": why},
    ])


def tables() -> dict[str, pd.DataFrame]:
    t4 = pd.DataFrame({"row": ["Test-set", "Baseline", "+MMI", "+UL", "+neg-train 0.1"],
                       "PPL": [NAN, 40.0, NAN, 41.0, 43.0], "M-ratio": [0.1, 0.5, 0.3, 0.4, 0.2],
                       "E-2": [8.0, 2.0, 5.0, 2.5, 3.0], "E-3": [9.0, 2.5, 6.0, 3.0, 4.0]})
    t8 = pd.DataFrame({"model": ["LM", "Seq2seq"], "test_ppl": [45.0, 40.0], "test_nll": [3.8, 3.7]})
    t9 = pd.DataFrame({"row": ["Baseline"], "PPL": [40.0], "BLEU-4 corpus": [0.01], "BLEU-4 sent-avg": [0.5],
                       "M-ratio": [0.5]})
    return {"table3": table3(), "table4": t4, "table8": t8, "table9": t9}


def get(frame: pd.DataFrame, table: str, row: str, column: str) -> pd.Series:
    sel = frame[(frame["table"] == table) & (frame["row"] == row) & (frame["column"] == column)]
    assert len(sel) == 1, (table, row, column, len(sel))
    return sel.iloc[0]


def test_cells_beside_paper_with_difference_by_hand() -> None:
    f = cmp.compare(tables(), "switchboard", "quick")
    c = get(f, "table3", "Baseline", "o_train")       # paper Switchboard o-sample-avg train: 27.8%
    assert (c["value"], c["paper"], c["status"]) == (0.5, 0.278, "compared")
    assert c["diff"] == pytest.approx(0.222) and c["rel_diff"] == pytest.approx(0.222 / 0.278)
    c = get(f, "table4", "+neg-train 0.1", "E-3")      # paper 4.00
    assert (c["value"], c["paper"], c["diff"]) == (4.0, 4.0, 0.0)
    c = get(f, "table8", "Seq2seq", "test_ppl")        # paper 42.81
    assert c["diff"] == pytest.approx(40.0 - 42.81)
    c = get(f, "table9", "Baseline", "BLEU-4 sent-avg")   # paper 0.476, beside the sentence average, not corpus
    assert c["paper"] == 0.476 and c["scale"] == "quick" and c["paper_dataset"] == "switchboard"
    assert "BLEU-4 corpus" not in set(f["column"])
    assert set(f["note"]) == {""}


def test_not_run_rows_stay_with_their_reason() -> None:
    f = cmp.compare(tables(), "switchboard", "quick")
    rows = f[(f["table"] == "table3") & (f["row"] == "+neg-tr(2.5k)")]
    assert list(rows["column"]) == list(cmp.LAYOUT["table3"][1])
    assert set(rows["status"]) == {"not run: no paraphrase corpus"}
    assert rows["value"].isna().all()
    assert list(rows["paper"]) == [0.013, 0.026, 43.51, 0.015, 0.016, 43.24]


def test_a_missing_number_beside_a_paper_value_is_not_run_not_compared() -> None:
    t = tables()
    t["table8"].loc[1, "test_nll"] = NAN                # Seq2seq ran ('ok') but wrote no NLL; the paper has 3.75
    c = get(cmp.compare(t, "switchboard", "quick"), "table8", "Seq2seq", "test_nll")
    assert c["status"] == "not run: no reproduced number" and c["paper"] == 3.75 and math.isnan(c["value"])


def test_paper_rows_this_run_lacks_and_rows_the_paper_lacks() -> None:
    f = cmp.compare(tables(), "switchboard", "quick")
    gan = f[(f["table"] == "table4") & (f["row"] == "+GAN")]         # in the paper, not produced here
    assert len(gan) == 4 and gan["status"].str.startswith("not run: this config produces no row").all()
    assert list(gan["paper"]) == [42.69, 0.49, 2.66, 2.35]
    ul = f[(f["table"] == "table4") & (f["row"] == "+UL")]           # produced here, not in the paper
    assert set(ul["status"]) == {"no paper value"} and ul["paper"].isna().all()
    # N/A on both sides (Test-set PPL, MMI PPL) is left out; MMI's other cells are compared
    assert f[(f["table"] == "table4") & (f["column"] == "PPL") & f["row"].isin(["Test-set", "+MMI"])].empty
    assert get(f, "table4", "+MMI", "M-ratio")["paper"] == 0.23
    # Table 4 has 5 produced rows x 4 columns - 2 N/A + 3 paper-only rows (+GAN, +neg-train 0.01) ...
    assert len(f[f["table"] == "table4"]) == 5 * 4 - 2 + 2 * 4


def test_chitchat_is_set_beside_switchboard_and_says_so() -> None:
    f = cmp.compare(tables(), "chitchat", "quick")
    assert set(f["paper_dataset"]) == {"switchboard"} and set(f["dataset"]) == {"chitchat"}
    assert set(f["note"]) == {cmp.CHITCHAT_NOTE}
    assert get(f, "table8", "LM", "test_nll")["paper"] == 3.79


def test_a_dataset_of_ones_own_is_set_beside_switchboard_and_says_so() -> None:
    f = cmp.compare(tables(), "mydata", "quick")
    assert set(f["paper_dataset"]) == {"switchboard"} and set(f["dataset"]) == {"mydata"}
    assert set(f["note"]) == {"mydata is not in the paper: the paper column holds its Switchboard numbers (mydata "
                              "runs the Switchboard recipe)"}


def test_other_hit_type_than_the_papers_is_noted() -> None:
    t = tables()
    t["table3"] = table3(hit_type="sample-min")            # Switchboard's paper column is sample-avg
    f = cmp.compare(t, "switchboard", "quick")
    assert "measured as sample-min-hit; the paper's column is sample-avg-hit" in get(f, "table3", "Baseline",
                                                                                       "o_test")["note"]
    assert get(f, "table3", "+neg-tr(1k)", "o_test")["note"] == ""     # a row that was not run has no measure


def test_write_comparison_csv_and_png(tmp_path: Path) -> None:
    paths = {}
    for name, df in tables().items():
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    frame = cmp.write_comparison(paths, tmp_path / "c.csv", tmp_path / "c.png", "ubuntu", "paper")
    back = pd.read_csv(tmp_path / "c.csv")
    assert list(back.columns) == cmp.COLUMNS
    text = ["note"]                                                   # written empty when there is no note
    pd.testing.assert_frame_equal(back.drop(columns=text), frame.drop(columns=text).reset_index(drop=True),
                                  check_dtype=False)
    assert back["note"].fillna("").tolist() == frame["note"].tolist()
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert get(frame, "table3", "Baseline", "o_ppl")["paper"] == 59.49      # Ubuntu's Table 3


# ------------------------------------------------------------------- typed-in numbers against the paper's text


def paper_text() -> str:
    if not PAPER_TEXT.is_file():
        pytest.skip(f"the paper's text is not available: {PAPER_TEXT} is absent")
    return PAPER_TEXT.read_text()


def numbers(line: str) -> list[float]:
    """The numbers of a table line, percentages as fractions ('N/A' as NaN)."""
    out = []
    for tok in line.split():
        if tok == "N/A":
            out.append(NAN)
        elif re.fullmatch(r"-?\d+(\.\d+)?%?", tok):
            out.append(float(tok.rstrip("%")) / (100 if tok.endswith("%") else 1))
    return out


def block(text: str, header: str, n: int) -> list[str]:
    """The n non-empty table lines after the line that starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(header))
    return [line for line in lines[start + 1:] if line.strip() and not line.startswith("Training")][:n]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("dataset, header", [("ubuntu", "Ubuntu o-sample-min-hit"),
                                             ("switchboard", "Switchboard o-sample-avg-hit"),
                                             ("opensubtitles", "OpenSub o-sample-min-hit")])
def test_table3_numbers_match_the_paper_text(dataset: str, header: str) -> None:
    lines = block(paper_text(), header, 4)
    for line, (label, typed) in zip(lines, cmp.PAPER_TABLE3[dataset].items(), strict=True):
        assert line.split()[0] == label, (line, label)
        assert all(same(a, b) for a, b in zip(numbers(line), typed, strict=True)), (line, typed)


@pytest.mark.parametrize("dataset, header", [("ubuntu", "Ubuntu rthres"), ("switchboard", "Switchboard rthres"),
                                             ("opensubtitles", "OpenSubtitles rthres")])
def test_table4_numbers_used_match_the_paper_text(dataset: str, header: str) -> None:
    lines = block(paper_text(), header, 6)
    for line, (label, typed) in zip(lines, PAPER_TABLE4[dataset].items(), strict=True):
        assert line.split()[0] == label.split()[0]
        assert all(same(a, b) for a, b in zip(numbers(line), typed, strict=True)), (line, typed)


def test_tables_8_and_9_numbers_used_match_the_paper_text() -> None:
    text = paper_text()
    _, lm_line, s2s_line = block(text, "Model Test-PPL(NLL)", 3)
    lm, s2s = (numbers(line.replace("(", " ").replace(")", " ")) for line in (lm_line, s2s_line))
    for i, d in enumerate(("ubuntu", "switchboard", "opensubtitles")):
        assert (lm[2 * i], lm[2 * i + 1]) == PAPER_TABLE8[d]["LM"]
        assert (s2s[2 * i], s2s[2 * i + 1]) == PAPER_TABLE8[d]["Seq2seq"]
    for d, header in (("ubuntu", "Ubuntu PPL BLEU-4"), ("switchboard", "Switchboard PPL BLEU-4"),
                      ("opensubtitles", "OpenSubtitles PPL BLEU-4")):
        base, neg = (numbers(line) for line in block(text, header, 2))
        (b_label, b), (n_label, n) = PAPER_TABLE9[d].items()
        assert len(b) == len(n) == 3, d                                 # PPL, BLEU-4, M-ratio
        assert all(same(x, y) for x, y in zip(base, b, strict=True)), d
        assert all(same(x, y) for x, y in zip(neg, n, strict=True)), d
