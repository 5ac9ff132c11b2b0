"""Table 6 support: the blind A/B sheet (seeded draw and sides, key that unblinds it), the ratings reader (refusals
with file:line), Table 6 shares by hand, and rules rating_sheet + table6 through Snakemake on synthetic responses."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from negtrain_core.tables import rating
from snakemake_cli import snakemake, stderr_lines


def greedy(n: int, prefix: str) -> pd.DataFrame:
    """A greedy.parquet-like table: n test inputs, response '<prefix> <i>' (item 0 answered identically)."""
    return pd.DataFrame({"dialogue_id": [f"d{i // 3}" for i in range(n)], "turn": [i % 3 + 1 for i in range(n)],
                         "source": [f"input {i}" for i in range(n)], "target": [f"ref {i}" for i in range(n)],
                         "response": ["same" if i == 0 else f"{prefix} {i}" for i in range(n)]})


def sheet_and_key(n: int = 40, items: int = 30, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    return rating.ab_sheet(greedy(n, "base"), greedy(n, "neg"), items, 4, seed, ("baseline", "freq-0.01"))


def test_sheet_draws_items_and_sides_with_the_seed_and_the_key_unblinds_it() -> None:
    sheet, key = sheet_and_key()
    assert len(sheet) == 30 and list(sheet["item"]) == list(range(1, 31))
    assert sheet["input"].is_unique and set(sheet["rating"]) == {""}
    by_input = greedy(40, "x").set_index("source")
    for (_, s), (_, k) in zip(sheet.iterrows(), key.iterrows()):
        i = int(s["input"].split()[1])
        assert (k["dialogue_id"], k["turn"]) == tuple(by_input.loc[s["input"], ["dialogue_id", "turn"]])
        expect = {"baseline": "same" if i == 0 else f"base {i}", "neg-train": "same" if i == 0 else f"neg {i}"}
        assert (s["response_a"], s["response_b"]) == (expect[k["a"]], expect[k["b"]])
        assert {k["a"], k["b"]} == {"baseline", "neg-train"} and k["identical"] == (i == 0)
    assert 5 <= (key["a"] == "neg-train").sum() <= 25                      # sides are drawn, not fixed
    again, key2 = sheet_and_key()
    assert again.equals(sheet) and key2.equals(key)                        # same seed, same sheet
    other, _ = sheet_and_key(seed=2)
    assert list(other["input"]) != list(sheet["input"])


def test_items_are_dealt_to_raters_evenly_and_capped_by_the_test_set() -> None:
    sheet, _ = sheet_and_key(items=30)
    assert list(sheet["rater"][:6]) == [1, 2, 3, 4, 1, 2]
    assert sheet["rater"].value_counts().to_dict() == {1: 8, 2: 8, 3: 7, 4: 7}
    small, _ = sheet_and_key(n=12, items=300)                             # quick scale: fewer inputs exist
    assert len(small) == 12 and sorted(small["input"]) == sorted(f"input {i}" for i in range(12))


def test_write_sheet_takes_items_and_raters_from_config_human_eval(tmp_path: Path) -> None:
    """human_eval items 10, raters 3 (not the paper's 300 and 4): 10 of the 25 inputs, dealt to raters 1, 2, 3."""
    import dataclasses

    from negtrain_core import config as ncfg

    s = ncfg.settings({**ncfg.load("config.yaml"), "scale": "quick"}, "chitchat")
    s = dataclasses.replace(s, human_eval=dataclasses.replace(s.human_eval, items=10, raters=3))
    for model, prefix in (("baseline", "base"), ("neg", "neg")):
        greedy(25, prefix).to_parquet(tmp_path / f"{model}.parquet", index=False)
    out = {k: tmp_path / f"sheet.{k}" for k in ("csv", "html", "key")}
    rating.write_sheet(tmp_path / "baseline.parquet", tmp_path / "neg.parquet", out["csv"], out["html"], out["key"], s)
    sheet = pd.read_csv(out["csv"], keep_default_na=False)
    assert list(sheet["item"]) == list(range(1, 11)) and len(pd.read_csv(out["key"])) == 10
    assert list(sheet["rater"]) == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]
    assert out["html"].read_text().count('<option value="') == 1 + 3          # all raters, then raters 1..3


def test_misaligned_responses_are_refused() -> None:
    with pytest.raises(ValueError, match="different test inputs"):
        rating.ab_sheet(greedy(10, "b"), greedy(9, "n"), 5, 4, 1, ("baseline", "freq-0.01"))


def test_negtrain_model_is_the_smallest_r_thres() -> None:
    assert rating.negtrain_model([0.1, 0.01]) == "freq-0.01"
    assert rating.negtrain_model([0.001, 0.01]) == "freq-0.001"


def test_html_form_has_one_radio_group_per_item_and_escapes_text() -> None:
    sheet, _ = sheet_and_key(items=5)
    sheet.loc[0, "response_a"] = "i 'm a <unk> & co"
    sheet.loc[1, "response_b"] = ""                                     # the model ended at once
    page = rating.sheet_html(sheet, "Which response is better? (chitchat)", "k")
    assert page.count('type="radio"') == 15 and page.count("<tr data-item=") == 5
    assert "i &#x27;m a &lt;unk&gt; &amp; co" in page and "<unk>" not in page
    assert page.count("(empty response)") == 1
    assert 'id="download"' in page and "http" not in page.replace("http-equiv", "")    # no network


# -------------------------------------------------------------------------------------- ratings -> Table 6


KEY = pd.DataFrame({"item": [1, 2, 3, 4, 5, 6], "a": ["baseline", "neg-train", "baseline", "neg-train",
                                                      "baseline", "neg-train"],
                    "b": ["neg-train", "baseline", "neg-train", "baseline", "neg-train", "baseline"],
                    "baseline_model": "baseline", "negtrain_model": "freq-0.01",
                    "identical": [False, False, True, False, False, False]})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    return path


def test_table6_shares_by_hand(tmp_path: Path) -> None:
    # item 1: A = baseline; 2: A = neg-train; 3: tie; 4: B = baseline; 5: b = neg-train; 6: not rated yet
    path = write(tmp_path, "item,rater,rating\n1,1,A\n2,2,a\n3,3,Tie\n4,4,B\n5,1, b \n6,2,\n")
    ratings = rating.read_ratings(path, set(KEY["item"]))
    assert list(rating.unblind(ratings, KEY)) == ["baseline", "neg-train", "tie", "baseline", "neg-train"]
    t = rating.table6(ratings, KEY, "switchboard", "quick").iloc[0]
    assert (t["n"], t["n_tie"], t["n_baseline"], t["n_neg-train"], t["unrated"]) == (5, 1, 2, 2, 1)
    assert (t["tie"], t["baseline"], t["neg-train"]) == (0.2, 0.4, 0.4)
    assert t["identical_pairs"] == 1 and t["negtrain_model"] == "freq-0.01"
    assert (t["paper_tie"], t["paper_baseline"], t["paper_neg-train"]) == (0.451, 0.183, 0.364)


def test_identical_pairs_count_only_the_rated_items(tmp_path: Path) -> None:
    key = KEY.assign(identical=[False, False, True, False, False, True])     # item 6: identical, not rated
    ratings = rating.read_ratings(write(tmp_path, "item,rating\n1,A\n3,tie\n6,\n"), set(key["item"]))
    t = rating.table6(ratings, key, "chitchat", "quick").iloc[0]
    assert (t["n"], t["unrated"], t["identical_pairs"]) == (2, 4, 1)


@pytest.mark.parametrize("text, line", [
    ("item,rating\n1,A\n2,maybe\n", "{p}:3: rating 'maybe' of item 2 is not one of A, B, tie"),
    ("item,rating\n1,A\n1,B\n", "{p}:3: item 1 is rated twice (first on line 2)"),
    ("item,rating\n1,A\n7,B\n", "{p}:3: item '7' is not an item of the sheet (1..6)"),
    ("item,rating\nx,A\n", "{p}:2: item 'x' is not an item of the sheet (1..6)"),
    ("item,choice\n1,A\n", "{p}:1: no column 'rating' (a ratings file needs columns item, rating)"),
])
def test_malformed_ratings_are_refused_with_file_and_line(tmp_path: Path, text: str, line: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(rating.RatingError) as err:
        rating.read_ratings(path, set(KEY["item"]))
    assert str(err.value) == line.format(p=path)


def test_a_sheet_saved_by_a_spreadsheet_with_semicolons_is_read(tmp_path: Path) -> None:
    """A spreadsheet in a locale whose decimal mark is a comma saves the filled-in sheet.csv separated by semicolons
    (with a byte-order mark and CRLF): its ratings are read, not refused for a missing column 'item'."""
    path = tmp_path / "filled.csv"
    path.write_bytes(b"\xef\xbb\xbfitem;rater;input;response_a;response_b;rating\r\n"
                     b'1;1;hi;"yes; sure";no;a\r\n2;2;bye;ok;fine;\r\n3;1;x;y;z;Tie\r\n')
    got = rating.read_ratings(path, set(KEY["item"]))
    assert got.to_dict("list") == {"item": [1, 3], "rating": ["A", "tie"], "line": [2, 4]}


def test_a_ratings_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "filled.csv"
    path.write_bytes("item,rating\n1,A\n2,B\n3,égal\n".encode("cp1252"))        # a spreadsheet's legacy encoding
    with pytest.raises(rating.RatingError) as err:
        rating.read_ratings(path, set(KEY["item"]))
    assert str(err.value) == f"{path}: not UTF-8 (a byte 0xe9); save it as CSV UTF-8"


def test_no_rated_item_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key.csv"
    KEY.to_csv(key, index=False)
    path = write(tmp_path, "item,rating\n1,\n2,\n")
    with pytest.raises(rating.RatingError, match="no item is rated yet"):
        rating.write_table6(path, key, tmp_path / "t6.csv", "chitchat", "quick")


# ---------------------------------------------------------------------------- the two rules, through Snakemake


def test_rules_rating_sheet_and_table6_through_snakemake(tmp_path: Path) -> None:
    """Synthetic greedy responses of the baseline and freq-0.01 (chitchat's smallest r_thres); the sheet's CSV
    filled in by 'raters' who always prefer the neg-train side except every fifth item (a tie)."""
    for model, prefix in (("baseline", "base"), ("freq-0.01", "neg")):
        out = tmp_path / f"results/chitchat/eval/{model}/greedy.parquet"
        out.parent.mkdir(parents=True)
        greedy(25, prefix).to_parquet(out, index=False)
    sheet_only = snakemake(tmp_path, "--cores", "1", "--config", "scale=quick", "--",
                           "results/chitchat/rating/sheet.html", "results/chitchat/rating_key.csv")
    assert sheet_only.returncode == 0, sheet_only.stdout[-3000:]
    sheet = pd.read_csv(tmp_path / "results/chitchat/rating/sheet.csv", keep_default_na=False)
    key = pd.read_csv(tmp_path / "results/chitchat/rating_key.csv")
    assert len(sheet) == 25 and set(key["negtrain_model"]) == {"freq-0.01"}       # 25 < 300 test inputs
    neg_side = dict(zip(key["item"], key["a"].map({"neg-train": "A", "baseline": "B"})))
    sheet["rating"] = [("tie" if i % 5 == 0 else neg_side[i]) for i in sheet["item"]]
    sheet.to_csv(tmp_path / "filled.csv", index=False)
    overlay = tmp_path / "ratings.yaml"
    overlay.write_text(yaml.safe_dump({"human_eval": {"ratings": {"chitchat": str(tmp_path / "filled.csv")}}}))
    done = snakemake(tmp_path, "--cores", "1", "--config", "scale=quick", "--", "results/chitchat/table6.csv",
                     overlays=[overlay])
    assert done.returncode == 0, done.stdout[-3000:]
    t = pd.read_csv(tmp_path / "results/chitchat/table6.csv").iloc[0]
    assert (t["n"], t["n_tie"], t["n_neg-train"], t["n_baseline"]) == (25, 5, 20, 0)
    assert (t["tie"], t["neg-train"], t["baseline"]) == (0.2, 0.8, 0.0)


def test_table6_without_ratings_is_refused_in_one_line(tmp_path: Path) -> None:
    run = snakemake(tmp_path, "-n", "--config", "scale=quick", "--", "results/chitchat/table6.csv")
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [
        "negtrain: no ratings for 'chitchat': fill in results/chitchat/rating/sheet.html (or sheet.csv) and set "
        "human_eval.ratings.chitchat to the file"]
