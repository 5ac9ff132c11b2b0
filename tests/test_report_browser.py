"""The HTML report and the A/B rating form in a real browser: headless Chromium (Debian's ``chromium`` package),
offline (no network: host resolution mapped to nothing), a new empty profile per run.

- ``test_report_renders_tables_and_images`` (slow): builds ``snakemake --report`` for the quick chitchat run (the
  repository's finished ``results/chitchat`` copied into a scratch directory, or the whole quick pipeline run there
  when there is none), checks the embedded results (every table and plot, captions, stages; the hidden rating key
  left out), then opens it in Chromium. Snakemake's report is a React app that reads embedded JSON, so a small
  driver script appended to a copy of the page shows one result the way clicks would and records what rendered
  (``--dump-dom``): the PNG decoded at its true size, the table view in its frame, the caption; the Table 3 view
  itself in the paper's form (readable headers, ours / paper / diff, Figure 1 under it). Screenshots of the
  figure, the Table 3 and the Table 4 views in the report (docs/report_table3.png, docs/report_table4.png) are kept
  under ``results/report/``.
- ``test_table_views_render_in_the_papers_form``: the Table 3 and Table 4 views of tiny inputs as Chromium renders
  them: the headers, cells in the paper's form beside the paper's values, the reason of a row not run, the plot.
- ``test_rating_form_downloads_what_was_clicked``: the A/B form's own JavaScript turns checked radio buttons into
  the ratings CSV, which rule table6's reader unblinds into the expected shares.

Chromium missing: installed with apt-get when running as root, else the tests skip and say why.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import struct
import subprocess
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest

from conftest import QUICK_SMALL
from negtrain_core.tables import rating
from snakemake_cli import ROOT, snakemake

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000"]
SHOTS = ROOT / "results" / "report"
TABLES = ["table3", "table4", "table8", "table9"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium binary; installed from Debian's archive when missing and root, else a skip with the reason."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed and installing it needs root: apt-get install -y chromium")
    for cmd in (["apt-get", "install", "-y", "--no-install-recommends", "chromium"], ["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ,
                                                                                "DEBIAN_FRONTEND": "noninteractive"})
        if shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip("chromium could not be installed with apt-get (no package archive reachable?)")


def browse(binary: str, page: Path, profile: Path, *args: str, fragment: str = "", attempts: int = 2) -> str:
    """Open ``page`` (file://, optional #fragment) in headless Chromium with a new empty profile; its stdout.

    Headless Chromium now and then never exits after a page has loaded (its virtual-time budget not expiring, e.g.
    Szpadel/chrome-headless-render-pdf#29): a run that outlives its timeout is killed and started once more on a
    fresh profile. A page that hangs it every time still fails, and so does any run that exits non-zero."""
    url = page.resolve().as_uri() + (f"#{urllib.parse.quote(fragment)}" if fragment else "")
    for attempt in range(1, attempts + 1):
        user_dir = profile.with_name(f"{profile.name}-{attempt}")
        user_dir.mkdir(parents=True)
        try:
            run = subprocess.run([binary, *FLAGS, f"--user-data-dir={user_dir}", *args, url], capture_output=True,
                                 text=True, timeout=120)
            break
        except subprocess.TimeoutExpired:
            if attempt == attempts:
                raise
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def with_script(page: str, script: str) -> str:
    """The page with ``script`` appended before ``</body>``."""
    at = page.rfind("</body>")
    return page[:at] + f"<script>{script}</script>" + page[at:]


# ------------------------------------------------------------------------------------------------ the report

DRIVER = """
(function () {
  // navbarMode|category|subcategory|result path, from the URL fragment
  var want = decodeURIComponent(location.hash.slice(1)).split("|");
  function probe(kind) {
    var img = document.querySelector("#app img[src^='data:image/png']");
    var frame = document.querySelector("#app iframe");
    var pre = document.createElement("pre");
    pre.id = "probe";
    pre.textContent = JSON.stringify({content: kind, img_width: img ? img.naturalWidth : -1,
      img_height: img ? img.naturalHeight : -1, iframe: frame ? frame.getAttribute("src").slice(0, 40) : null,
      nav_rows: document.querySelectorAll("nav table tbody tr").length,
      nav_text: document.querySelector("nav").innerText});
    document.body.appendChild(pre);
  }
  function show() {
    if (typeof app === "undefined" || !app) { setTimeout(show, 50); return; }   // React has not mounted yet
    var entry = results[want[3]];
    var kind = entry.mime_type.indexOf("image/") === 0 ? "img" : "html";
    app.setView({navbarMode: want[0], category: want[1], subcategory: want[2], resultPath: want[3],
                 content: kind, contentPath: entry.data_uri});
    setTimeout(function () { probe(kind); }, 1000);
  }
  window.addEventListener("load", show);
})();
"""


def embedded(page: str, name: str) -> dict:
    """The JSON the report embeds as ``var <name> = {...};``."""
    match = re.search(rf"var {name} = (\{{.*?\}});\n", page, re.S)
    assert match, name
    return json.loads(match.group(1))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def probe(dom: str) -> dict:
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, "the driver did not run: the report's app did not mount"
    return json.loads(html.unescape(match.group(1)))


def check_screenshot(path: Path, left: int = 700) -> None:
    """A 1600x1000 PNG whose content area (right of ``left``: the report's navbar) is not one flat colour."""
    import matplotlib.image

    assert png_size(path.read_bytes()) == (1600, 1000)
    pixels = matplotlib.image.imread(path)[:, left:, :3]
    assert pixels.std() > 0.05


@pytest.mark.slow
def test_report_renders_tables_and_images(tmp_path: Path, chromium: str, quick_run: Path) -> None:
    work = quick_run
    built = snakemake(work, "--config", "scale=quick", "--report", "report.html", overlays=[QUICK_SMALL])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    page = (work / "report.html").read_text()
    results, categories = embedded(page, "results"), embedded(page, "categories")

    d = "results/chitchat"
    expected = ([f"{d}/{t}.csv" for t in TABLES] + [f"{d}/report/{t}.html" for t in [*TABLES, "paper_comparison"]]
                + [f"{d}/figure1.png", f"{d}/paper_comparison.csv", f"{d}/paper_comparison.png", f"{d}/curves.png",
                   f"{d}/curves.csv", f"{d}/rating/sheet.csv", f"{d}/rating/sheet.html", f"{d}/data/stats.csv",
                   f"{d}/models/seq2seq_curve.csv", f"{d}/models/lm_curve.csv", f"{d}/eval/beam_overlap.csv"])
    assert set(expected) <= set(results), set(expected) - set(results)
    assert not any("rating_key" in p for p in results)                                # the key stays hidden
    assert all(r["caption"].strip() for r in results.values())                         # every result has one
    assert list(categories) == ["chitchat"]
    assert sorted(categories["chitchat"]) == ["1 data", "2 baselines (Table 8)", "3 malicious targets (Table 3)",
                                              "4 frequent responses (Tables 4, 9)", "5 paper comparison",
                                              "6 curves", "7 human evaluation (Table 6)"]

    probe_page = work / "probe.html"
    probe_page.write_text(with_script(page, DRIVER))
    SHOTS.mkdir(parents=True, exist_ok=True)
    views = {"figure": ("subcategory", "5 paper comparison", f"{d}/paper_comparison.png"),
             "table": ("resultinfo", "3 malicious targets (Table 3)", f"{d}/report/table3.html"),
             "table4": ("resultinfo", "4 frequent responses (Tables 4, 9)", f"{d}/report/table4.html")}
    seen = {}
    for name, (mode, sub, path) in views.items():
        fragment = f"{mode}|chitchat|{sub}|{path}"
        seen[name] = probe(browse(chromium, probe_page, tmp_path / f"dom-{name}", "--dump-dom", fragment=fragment))
        shot = tmp_path / f"report_{name}.png"
        browse(chromium, probe_page, tmp_path / f"shot-{name}", "--window-size=1600,1000", f"--screenshot={shot}",
               fragment=fragment)
        check_screenshot(shot)
        shutil.copy(shot, SHOTS / shot.name)

    width, height = png_size((work / d / "paper_comparison.png").read_bytes())
    assert (seen["figure"]["img_width"], seen["figure"]["img_height"]) == (width, height)   # decoded, true size
    assert seen["figure"]["nav_rows"] == len(categories["chitchat"]["5 paper comparison"]) == 3
    assert seen["table"]["iframe"].startswith("data:text/html")
    assert "Table 3 of chitchat (scale quick) as the paper prints it" in seen["table"]["nav_text"]    # the caption

    # what that frame shows: the embedded Table 3 view in the paper's form, a row per CSV row, with Figure 1
    view = tmp_path / "table3_view.html"
    view.write_text(with_script(base64.b64decode(results[f"{d}/report/table3.html"]["data_uri"].split(",", 1)[1])
                                .decode("utf-8"), VIEW_PROBE))
    shown = probe(browse(chromium, view, tmp_path / "dom-view", "--dump-dom"))
    labels = pd.read_csv(work / d / "table3.csv")["training"].tolist()
    assert shown["labels"] == labels * 2 and "+neg-tr(0.5k)" in labels                   # the o- and io-blocks
    assert {"o-sample-avg hit rate, training list", "io-sample-avg hit rate, test list", "ours", "paper",
            "diff"} <= set(shown["headers"]) and "o_train" not in shown["headers"]
    assert shown["images"] == [list(png_size((work / d / "figure1.png").read_bytes()))]


# --------------------------------------------------------------------------------------------- the table views

VIEW_PROBE = """
window.addEventListener("load", function () {
  // what the browser shows of a table view: header texts, rows (label, cells: block after block), the reason
  // lines, the sizes of the plots, the table's width
  function text(el) { return el.innerText.trim(); }
  var rows = Array.from(document.querySelectorAll("#table tr:not(.head):not(.reason)"));
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({
    headers: Array.from(document.querySelectorAll("#table tr.head th")).map(text),
    labels: rows.map(function (tr) { return text(tr.querySelector("th")); }),
    rows: rows.map(function (tr) { return Array.from(tr.querySelectorAll("td")).map(text); }),
    reasons: Array.from(document.querySelectorAll("#table tr.reason")).map(text),
    images: Array.from(document.querySelectorAll("figure img")).map(function (i) {
      return [i.naturalWidth, i.naturalHeight]; }),
    table_width: document.querySelector("#table").getBoundingClientRect().width});
  document.body.appendChild(pre);
});
"""


def test_table_views_render_in_the_papers_form(tmp_path: Path, chromium: str) -> None:
    """Tables 3 and 4 of tiny inputs: the readable headers, ours / paper / diff in the paper's form, the reason of a
    row not run in words and the embedded plot, as Chromium renders them; screenshots kept under results/report/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from negtrain_core.tables import report
    from test_report import NOT_RUN, table3_frame, table4_frame

    plot = tmp_path / "figure1.png"
    plt.figure(figsize=(4, 2)).savefig(plot, dpi=50)
    plt.close("all")
    shown: dict[str, dict] = {}
    SHOTS.mkdir(parents=True, exist_ok=True)
    for table, frame, figures in (("table3", table3_frame(), [plot]), ("table4", table4_frame(), [])):
        frame.to_csv(tmp_path / f"{table}.csv", index=False)
        page = tmp_path / f"{table}.html"
        report.write_table_view(tmp_path / f"{table}.csv", figures, page, table, "switchboard")
        probed = tmp_path / f"{table}_probe.html"
        probed.write_text(with_script(page.read_text(), VIEW_PROBE))
        shown[table] = probe(browse(chromium, probed, tmp_path / f"dom-{table}", "--dump-dom"))
        shot = tmp_path / f"view_{table}.png"
        browse(chromium, page, tmp_path / f"shot-{table}", "--window-size=1600,1000", f"--screenshot={shot}")
        check_screenshot(shot, left=0)
        shutil.copy(shot, SHOTS / shot.name)

    t3 = shown["table3"]
    assert t3["headers"][:4] == ["Training", "o-sample-avg hit rate, training list", "o-sample-avg hit rate, test list",
                                 "test PPL, model trained on o-hits"]
    assert t3["headers"].count("ours") == t3["headers"].count("paper") == t3["headers"].count("diff") == 6
    assert t3["labels"] == ["Baseline", "+neg-tr(0.5k)", "+neg-tr(1k)", "+neg-tr(2.5k)"] * 2   # o-, io-block
    assert t3["rows"][0][:3] == ["53.8%", "27.8%", "+26.0 pp"] and t3["rows"][2][:2] == ["not run", "2.4%"]
    assert t3["rows"][4][:3] == ["50.0%", "19.6%", "+30.4 pp"] and len(t3["rows"][4]) == 9
    assert t3["headers"][13:17] == ["Training", "io-sample-avg hit rate, training list",
                                   "io-sample-avg hit rate, test list", "test PPL, model trained on io-hits"]
    assert t3["reasons"][1] == NOT_RUN and t3["reasons"][0].startswith("not run: this config produces no row")
    assert t3["images"] == [list(png_size(plot.read_bytes()))] and 0 < t3["table_width"] < 1600
    t4 = shown["table4"]
    assert {"test PPL", "max-ratio (M-ratio)", "Ent-2 (E-2)", "Ent-3 (E-3)"} <= set(t4["headers"])
    assert t4["labels"] == ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1", "+neg-train 0.01"]
    assert t4["rows"][-1][1:3] == ["not run", "44.32"]
    assert t4["rows"][0][4:7] == ["0.6%", "10.0%", "-9.4 pp"] and t4["images"] == []


# ---------------------------------------------------------------------------------------- the A/B rating form

CLICKER = """
document.querySelectorAll("tbody tr").forEach(function (tr, i) {
  if (i === 0) { return; }                                   // item of the first row: left unrated
  var pick = ["A", "B", "tie"][i % 3];
  tr.querySelector('input[value="' + pick + '"]').click();
});
var pre = document.createElement("pre");
pre.id = "csv";
pre.textContent = window.ratingsCsv();
document.body.appendChild(pre);
"""


def test_rating_form_downloads_what_was_clicked(tmp_path: Path, chromium: str) -> None:
    n = 12
    base = pd.DataFrame({"dialogue_id": "d", "turn": range(n), "source": [f"in {i}" for i in range(n)],
                         "response": [f"base {i}" for i in range(n)]})
    sheet, key = rating.ab_sheet(base, base.assign(response=[f"neg {i}" for i in range(n)]), n, 4, 3,
                                 ("baseline", "freq-0.01"))
    assert (sheet["response_a"].str.startswith("base") == (key["a"] == "baseline")).all()    # the key unblinds it
    form = tmp_path / "sheet.html"
    form.write_text(with_script(rating.sheet_html(sheet, "Which response is better? (test)", "k"), CLICKER))
    dom = browse(chromium, form, tmp_path / "profile", "--dump-dom")
    csv_text = html.unescape(re.search(r'<pre id="csv">(.*?)</pre>', dom, re.S).group(1))
    assert csv_text.splitlines()[0] == "item,rater,rating" and len(csv_text.splitlines()) == n + 1
    assert f"{sheet['item'][0]},{sheet['rater'][0]}," == csv_text.splitlines()[1]             # unrated: blank
    assert 'class="done"' in dom and f"{n - 1} of {n} rated" in dom

    (tmp_path / "ratings.csv").write_text(csv_text)
    got = rating.read_ratings(tmp_path / "ratings.csv", set(key["item"]))
    picks = {int(item): ["A", "B", "tie"][i % 3] for i, item in enumerate(sheet["item"]) if i > 0}
    assert dict(zip(got["item"], got["rating"])) == picks
    side = key.set_index("item")
    winners = [p if p == "tie" else side.at[i, p.lower()] for i, p in picks.items()]
    t = rating.table6(got, key, "switchboard", "quick").iloc[0]
    assert t["n"] == n - 1 and t["unrated"] == 1
    for w, col in (("tie", "tie"), ("baseline", "baseline"), ("neg-train", "neg-train")):
        assert t[col] == pytest.approx(winners.count(w) / (n - 1))
