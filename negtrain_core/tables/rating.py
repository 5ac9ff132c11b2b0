"""Table 6 (human evaluation, paper §4.3): a blind, shuffled A/B sheet for raters, and their ratings -> Table 6.

The paper gives 300 test inputs with the baseline's and the negatively trained model's response to 4 raters, who
pick the preferred response or a tie. This module cannot rate; it prepares and scores the rating:

- ``ab_sheet``: ``items`` test inputs drawn with the seed (all of them where the test set has fewer), in random
  order, each with the two greedy responses on sides A and B, the side of each model drawn with the seed; items
  are dealt to the raters in turn (item i -> rater ``(i - 1) % raters + 1``). The sheet (item, rater, input,
  response_a, response_b, rating) goes to the raters as CSV and as a static HTML form (``sheet_html``); the key
  (item -> which model is A, which is B) stays with the experimenter.
- The neg-train model is Algorithm 2 at the SMALLEST r_thres of Table 4 (``freq-<min r_thres>``), the model the
  paper's Table 9 calls "Neg-train"; the paper does not say which r_thres its Table 6 rated.
- ``read_ratings``: a filled-in CSV with columns ``item`` and ``rating`` (A, B or tie, any case; blank = not rated
  yet), separated by commas, semicolons or tabs. Anything else is refused in one line naming the file and line.
- ``table6``: unblinds the ratings with the key: the shares of tie / baseline / neg-train among the rated items,
  with the counts and the paper's shares.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from negtrain_core.config import Settings
from negtrain_core.io import atomic_write_text, write_csv

log = logging.getLogger(__name__)

SIDES = ("A", "B")
CHOICES = ("A", "B", "tie")
DELIMITERS = (",", ";", "\t")        # of a filled-in ratings file, as spreadsheets save it
BASELINE, NEGTRAIN = "baseline", "neg-train"
SHEET_COLUMNS = ["item", "rater", "input", "response_a", "response_b", "rating"]
KEY_COLUMNS = ["item", "dialogue_id", "turn", "a", "b", "baseline_model", "negtrain_model", "identical"]
# Table 6 of the paper: (tie, baseline, neg-train) shares.
PAPER_TABLE6 = {"ubuntu": (0.646, 0.140, 0.213), "switchboard": (0.451, 0.183, 0.364),
                "opensubtitles": (0.583, 0.190, 0.226)}


class RatingError(ValueError):
    """A ratings file that cannot be scored, in one line naming the file (and line)."""


def negtrain_model(r_thres: Sequence[float]) -> str:
    """The neg-train model of the sheet: Algorithm 2 at the smallest r_thres (``freq-<r:g>``)."""
    return f"freq-{min(r_thres):g}"


def _aligned(baseline: pd.DataFrame, negtrain: pd.DataFrame) -> None:
    """Both greedy tables must answer the same test inputs in the same order."""
    keys = ["dialogue_id", "turn", "source"]
    if len(baseline) != len(negtrain) or not baseline[keys].reset_index(drop=True).equals(
            negtrain[keys].reset_index(drop=True)):
        raise ValueError("the baseline's and the neg-train model's greedy.parquet answer different test inputs")


def ab_sheet(baseline: pd.DataFrame, negtrain: pd.DataFrame, items: int, raters: int, seed: int,
             models: tuple[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The blind sheet and its key from the two greedy tables (columns dialogue_id, turn, source, response).

    models: (baseline model name, neg-train model name), written into the key. Returns (sheet, key).
    """
    _aligned(baseline, negtrain)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(baseline))[: min(items, len(baseline))]          # drawn and shuffled at once
    negtrain_is_a = rng.integers(0, 2, size=len(rows)).astype(bool)
    base, neg = baseline.iloc[rows].reset_index(drop=True), negtrain.iloc[rows].reset_index(drop=True)
    item = np.arange(1, len(rows) + 1)
    a = np.where(negtrain_is_a, neg["response"], base["response"])
    b = np.where(negtrain_is_a, base["response"], neg["response"])
    sheet = pd.DataFrame({"item": item, "rater": (item - 1) % raters + 1, "input": base["source"],
                          "response_a": a, "response_b": b, "rating": ""})
    key = pd.DataFrame({"item": item, "dialogue_id": base["dialogue_id"], "turn": base["turn"],
                        "a": np.where(negtrain_is_a, NEGTRAIN, BASELINE),
                        "b": np.where(negtrain_is_a, BASELINE, NEGTRAIN),
                        "baseline_model": models[0], "negtrain_model": models[1],
                        "identical": base["response"].to_numpy() == neg["response"].to_numpy()})
    return sheet[SHEET_COLUMNS], key[KEY_COLUMNS]


# ------------------------------------------------------------------------------------------- the HTML form


def _text_html(text: object) -> str:
    """Escaped text; an empty response (the model ended at once) said so, not left as a blank cell."""
    return html.escape(str(text)) if str(text).strip() else '<em class="empty">(empty response)</em>'


def _row_html(r: pd.Series) -> str:
    e = _text_html
    radios = " ".join(f'<label><input type="radio" name="item-{r["item"]}" value="{c}"> {c}</label>'
                      for c in CHOICES)
    return (f'<tr data-item="{r["item"]}" data-rater="{r["rater"]}"><td>{r["item"]}</td><td>{r["rater"]}</td>'
            f'<td>{e(str(r["input"]))}</td><td>{e(str(r["response_a"]))}</td><td>{e(str(r["response_b"]))}</td>'
            f'<td class="choice">{radios}</td></tr>')


def sheet_html(sheet: pd.DataFrame, title: str, storage_key: str) -> str:
    """A static, self-contained HTML form of the sheet: radio buttons A / B / tie per item, a rater filter, and a
    button that downloads the answers as CSV (item, rater, rating); plain JS, no network. Answers are kept in the
    browser's localStorage under ``storage_key`` where the browser allows it."""
    raters = sorted(set(int(r) for r in sheet["rater"]))
    options = "".join(f'<option value="{r}">rater {r}</option>' for r in raters)
    rows = "\n".join(_row_html(r) for _, r in sheet.iterrows())
    return (FORM_TEMPLATE.replace("%TITLE%", html.escape(title)).replace("%OPTIONS%", options)
            .replace("%ROWS%", rows).replace("%N%", str(len(sheet))).replace("%KEY%", json.dumps(storage_key)))


FORM_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%TITLE%</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eee}tr.done td{background:#f3fbf3}td.choice{white-space:nowrap}em.empty{color:#888}
.bar{position:sticky;top:0;background:#fff;padding:.5em 0;z-index:1}
</style></head><body>
<h1>%TITLE%</h1>
<p>For each input, read the two responses and pick the one you prefer as a reply (grammar, sense, relevance), or
<b>tie</b> when neither is better. The sides are random: A is not always the same system. Then press
<b>Download ratings CSV</b> and send the file back. Your answers stay in this browser until you download them.</p>
<div class="bar"><label>Show: <select id="rater"><option value="">all raters</option>%OPTIONS%</select></label>
<span id="progress"></span> <button type="button" id="download">Download ratings CSV</button></div>
<form id="sheet"><table><thead><tr><th>item</th><th>rater</th><th>input</th><th>response A</th><th>response B</th>
<th>preferred</th></tr></thead><tbody>
%ROWS%
</tbody></table></form>
<script>
(function () {
  "use strict";
  var KEY = %KEY%, N = %N%;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tbody tr"));
  function choice(tr) {
    var c = tr.querySelector("input:checked");
    return c ? c.value : "";
  }
  function answers() {
    return rows.map(function (tr) {
      return {item: tr.dataset.item, rater: tr.dataset.rater, rating: choice(tr)};
    });
  }
  function ratingsCsv() {
    return "item,rater,rating\\n" + answers().map(function (a) {
      return a.item + "," + a.rater + "," + a.rating;
    }).join("\\n") + "\\n";
  }
  function refresh() {
    var done = 0;
    rows.forEach(function (tr) {
      var d = choice(tr) !== "";
      tr.className = d ? "done" : "";
      done += d ? 1 : 0;
    });
    document.getElementById("progress").textContent = done + " of " + N + " rated";
    try { localStorage.setItem(KEY, JSON.stringify(answers())); } catch (err) { /* file:// or data: */ }
  }
  function restore() {
    var saved = null;
    try { saved = JSON.parse(localStorage.getItem(KEY) || "null"); } catch (err) { saved = null; }
    (saved || []).forEach(function (a) {
      var box = a.rating && document.querySelector('input[name="item-' + a.item + '"][value="' + a.rating + '"]');
      if (box) { box.checked = true; }
    });
  }
  function download() {
    var blob = new Blob([ratingsCsv()], {type: "text/csv"});
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "ratings.csv";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
  }
  document.getElementById("sheet").addEventListener("change", refresh);
  document.getElementById("download").addEventListener("click", download);
  document.getElementById("rater").addEventListener("change", function (ev) {
    rows.forEach(function (tr) {
      tr.style.display = (!ev.target.value || tr.dataset.rater === ev.target.value) ? "" : "none";
    });
  });
  window.ratingsCsv = ratingsCsv;
  restore();
  refresh();
})();
</script>
</body></html>
"""


def write_sheet(baseline_path: str | Path, negtrain_path: str | Path, csv_out: str | Path, html_out: str | Path,
                key_out: str | Path, s: Settings) -> pd.DataFrame:
    """Rule rating_sheet: the greedy tables of the baseline and of ``negtrain_model`` -> the sheet (CSV and HTML
    form, ``human_eval.items`` items for ``human_eval.raters`` raters) and the hidden key."""
    model, (items, raters) = negtrain_model([f.r_thres for f in s.frequent]), (s.human_eval.items, s.human_eval.raters)
    sheet, key = ab_sheet(pd.read_parquet(baseline_path), pd.read_parquet(negtrain_path), items, raters, s.seed,
                          ("baseline", model))
    title = f"Which response is better? ({s.data.name})"
    write_csv(sheet, csv_out)
    atomic_write_text(html_out, sheet_html(sheet, title, f"negtrain-ratings:{title}"))
    write_csv(key, key_out)
    log.info("%d items for %d raters; neg-train model %s (smallest r_thres)", len(sheet), raters, model)
    return sheet


# ------------------------------------------------------------------------------------------ ratings -> Table 6


def read_ratings(path: str | Path, items: set[int]) -> pd.DataFrame:
    """The rated items of a filled-in sheet: columns item (int), rating (A | B | tie), line (in the file).

    Blank ratings are items not rated yet and are skipped. Refused, in one line ``path:line: why``: an unknown or
    repeated item, a rating other than A / B / tie, a missing column; a file that is not UTF-8 (a spreadsheet's
    legacy encoding), naming the file.
    """
    try:
        return _read_ratings(path, items)
    except UnicodeDecodeError as err:
        raise RatingError(f"{path}: not UTF-8 (a byte 0x{err.object[err.start]:02x}); save it as CSV UTF-8") from None


def _read_ratings(path: str | Path, items: set[int]) -> pd.DataFrame:
    out, seen = [], {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline().strip()
        # a spreadsheet set to a locale whose decimal mark is a comma saves "CSV" separated by semicolons
        delimiter = next((d for d in DELIMITERS if {"item", "rating"} <= set(first.split(d))), ",")
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = [c for c in ("item", "rating") if c not in (reader.fieldnames or [])]
        if missing:
            raise RatingError(f"{path}:1: no column {missing[0]!r} (a ratings file needs columns item, rating)")
        for rec in reader:
            line = reader.line_num
            item_text, rating = (rec["item"] or "").strip(), (rec["rating"] or "").strip()
            if not item_text.isdigit() or int(item_text) not in items:
                raise RatingError(f"{path}:{line}: item {item_text!r} is not an item of the sheet (1..{len(items)})")
            item = int(item_text)
            if item in seen:
                raise RatingError(f"{path}:{line}: item {item} is rated twice (first on line {seen[item]})")
            seen[item] = line
            if not rating:
                continue
            norm = {"a": "A", "b": "B", "tie": "tie"}.get(rating.lower())
            if norm is None:
                raise RatingError(f"{path}:{line}: rating {rating!r} of item {item} is not one of A, B, tie")
            out.append({"item": item, "rating": norm, "line": line})
    return pd.DataFrame(out, columns=["item", "rating", "line"])


def unblind(ratings: pd.DataFrame, key: pd.DataFrame) -> pd.Series:
    """Per rated item, the winner: 'tie', 'baseline' or 'neg-train' (side A/B looked up in the key)."""
    k = key.set_index("item")
    winner = [r if r == "tie" else k.at[i, "a" if r == "A" else "b"] for i, r in zip(ratings["item"],
                                                                                      ratings["rating"])]
    return pd.Series(winner, index=ratings["item"].to_numpy(), name="winner", dtype=object)


def table6(ratings: pd.DataFrame, key: pd.DataFrame, dataset: str, scale: str) -> pd.DataFrame:
    """One row: shares of tie / baseline / neg-train among the rated items, counts, and the paper's shares."""
    winner = unblind(ratings, key)
    n = len(winner)
    counts = {w: int((winner == w).sum()) for w in ("tie", BASELINE, NEGTRAIN)}
    identical = key.set_index("item").loc[winner.index, "identical"].astype(bool)
    paper = PAPER_TABLE6.get(dataset, (math.nan,) * 3)
    return pd.DataFrame([{
        "dataset": dataset, "tie": counts["tie"] / n, "baseline": counts[BASELINE] / n,
        "neg-train": counts[NEGTRAIN] / n, "n": n, "n_tie": counts["tie"], "n_baseline": counts[BASELINE],
        "n_neg-train": counts[NEGTRAIN], "unrated": len(key) - n, "identical_pairs": int(identical.sum()),
        "paper_tie": paper[0], "paper_baseline": paper[1], "paper_neg-train": paper[2],
        "baseline_model": key["baseline_model"].iloc[0], "negtrain_model": key["negtrain_model"].iloc[0],
        "scale": scale}])


def write_table6(ratings_path: str | Path, key_path: str | Path, out: str | Path, dataset: str,
                 scale: str) -> pd.DataFrame:
    """Rule table6: the filled-in ratings and the key -> ``table6.csv``; no rated item is refused."""
    key = pd.read_csv(key_path)
    ratings = read_ratings(ratings_path, set(int(i) for i in key["item"]))
    if ratings.empty:
        raise RatingError(f"{ratings_path}: no item is rated yet (ratings are A, B or tie)")
    table = table6(ratings, key, dataset, scale)
    write_csv(table, out)
    log.info("Table 6:\n%s", table.to_string(index=False))
    return table
