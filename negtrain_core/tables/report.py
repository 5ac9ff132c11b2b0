"""Pieces of the Snakemake HTML report (``snakemake --report report.html``) that are not Snakemake's own.

Snakemake's report shows images and HTML files in the browser but offers CSV files only as downloads, so each
paper table also gets a small self-contained HTML view (rule table_view: ``write_table_view``) that the report
displays; the CSV stays beside it, unchanged and at full precision. A view prints the table in the paper's form:

- ``VIEWS`` declares, per table, its row label and columns: the paper's columns in the paper's order (``main``),
  then what the run adds (``details``, a second table) and text columns with one value per table (``notes``).
  Each column has a readable header and a kind of value (``formats.KINDS``: rate, ppl, entropy, bleu, ...), which
  alone decides how its numbers are printed (53.8%, 166.82, 8.15, 0.234).
- A column the paper has (``compared``) is shown as three: ours, the paper's value and the difference ours - paper
  (percentage points for rates). The paper's values of Tables 3, 4, 8 and 9 come from ``comparison.compare`` (so
  chitchat is set beside the paper's Switchboard numbers, as in the comparison table), those of Table 6 from its
  own ``paper_*`` columns. Paper rows this run did not produce are listed too.
- A row that was not run says so in its cells, with its reason in words in a line under it; a cell the paper
  leaves empty (N/A) says N/A; a paper value the paper does not have is a dash.
- The plots that belong to a table (``FIGURES``) are embedded under it.

``STAGES`` names the report's subcategory of each table, ``TITLES`` its heading.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from negtrain_core.io import atomic_write_text
from negtrain_core.tables import comparison
from negtrain_core.tables.formats import format_diff, format_value, is_missing, relative

# Subcategories of the report, one per stage of the pipeline (numbered so they sort in pipeline order).
DATA, BASELINES, MALICIOUS, FREQUENT = "1 data", "2 baselines (Table 8)", "3 malicious targets (Table 3)", \
    "4 frequent responses (Tables 4, 9)"
COMPARISON, CURVES, HUMAN = "5 paper comparison", "6 curves", "7 human evaluation (Table 6)"
STAGES = {"table3": MALICIOUS, "table4": FREQUENT, "table8": BASELINES, "table9": FREQUENT,
          "paper_comparison": COMPARISON, "table6": HUMAN}
TITLES = {"table3": "Table 3: hit rates of the malicious targets before/after negative training",
          "table4": "Table 4: negative training against frequent responses (PPL, max-ratio, Ent-n)",
          "table8": "Table 8: test perplexity and NLL of the baselines",
          "table9": "Table 9: BLEU-4 of negative training against frequent responses",
          "paper_comparison": "Tables 3, 4, 8, 9 beside the paper's numbers",
          "table6": "Table 6: human evaluation (shares of tie / baseline / neg-train)"}
# The plots shown under a table's view (files of results/{dataset}/), with what they show.
FIGURES: dict[str, dict[str, str]] = {
    "table3": {"figure1.png": "Figure 1 (paper App. D): per-word NLL of test-list malicious targets under their "
                              "triggers and of test references, before and after negative training."},
    "table4": {"curves.png": "Training curves: hit rate per epoch of Algorithm 1, test max-ratio and PPL per epoch "
                             "of Algorithm 2 (epoch 0 = the baseline), the baselines' PPL per epoch."},
    "paper_comparison": {"paper_comparison.png": "Reproduced (blue) and paper (grey) values, one panel per table "
                                                 "column; rows that were not run are marked in red."},
}


@dataclass(frozen=True)
class Col:
    """One column of a view: the CSV's column ``name``, the ``header`` a reader sees ("{hit_type}" is filled in
    from the table), the kind of its values (``formats.KINDS`` or "text") and whether the paper has it."""

    name: str
    header: str
    kind: str
    compared: bool = False

    def title(self, hit_type: str) -> str:
        return self.header.replace("{hit_type}", hit_type)


@dataclass(frozen=True)
class TableView:
    """The layout of one table's view: the column naming the rows, the paper's columns (``main``), the run's own
    columns (``details``) and text columns printed once under the table (``notes``). ``block`` > 0 stacks the
    paper's columns in blocks of that many, each under its own header (Table 3: the o-columns above the
    io-columns, where the paper has them side by side), so that the table fits the report's half-page frame."""

    label: Col
    main: tuple[Col, ...]
    details: tuple[Col, ...] = ()
    notes: tuple[Col, ...] = ()
    block: int = 0

    def blocks(self) -> list[tuple[Col, ...]]:
        n = self.block or len(self.main)
        return [self.main[i:i + n] for i in range(0, len(self.main), n)]


def _hits(mode: str, model: str) -> tuple[Col, ...]:
    """Table 3's three paper columns of one hit mode (o or io)."""
    return (Col(f"{mode}_train", f"{mode}-{{hit_type}} hit rate, training list", "rate", True),
            Col(f"{mode}_test", f"{mode}-{{hit_type}} hit rate, test list", "rate", True),
            Col(f"{mode}_ppl", f"test PPL, {model}", "ppl", True))


VIEWS: dict[str, TableView] = {
    "table3": TableView(
        Col("training", "Training", "text"),
        _hits("o", "model trained on o-hits") + _hits("io", "model trained on io-hits"),
        (Col("model_o", "model, o-columns", "text"), Col("model_io", "model, io-columns", "text"),
         Col("o_beam_overlap", "beam k-best overlap with the baseline, o-model", "rate"),
         Col("io_beam_overlap", "beam k-best overlap with the baseline, io-model", "rate"),
         Col("list_size", "negative-training list size", "count"),
         Col("train_targets", "targets searched, training list", "count"),
         Col("test_targets", "targets searched, test list", "count"),
         Col("train_skipped", "targets skipped (out of vocabulary), training list", "count"),
         Col("test_skipped", "targets skipped (out of vocabulary), test list", "count")), block=3),
    "table4": TableView(
        Col("row", "Model", "text"),
        (Col("r_thres", "r_thres", "rate"), Col("PPL", "test PPL", "ppl", True),
         Col("M-ratio", "max-ratio (M-ratio)", "rate", True), Col("E-2", "Ent-2 (E-2)", "entropy", True),
         Col("E-3", "Ent-3 (E-3)", "entropy", True))),
    "table8": TableView(
        Col("model", "Model", "text"),
        (Col("test_ppl", "test PPL", "ppl", True), Col("test_nll", "test NLL per word (nats)", "nll", True))),
    "table9": TableView(
        Col("row", "Model", "text"),
        (Col("PPL", "test PPL", "ppl", True), Col("BLEU-4 sent-avg", "BLEU-4 (sentence average)", "bleu", True),
         Col("M-ratio", "max-ratio (M-ratio)", "rate", True)),
        (Col("BLEU-4 corpus", "BLEU-4 corpus (sacrebleu)", "bleu"),),
        (Col("bleu", "How BLEU-4 is computed", "text"),)),
    "table6": TableView(
        Col("dataset", "Data-set", "text"),
        (Col("tie", "tie", "rate", True), Col("baseline", "baseline better", "rate", True),
         Col("neg-train", "neg-train better", "rate", True)),
        (Col("n", "rated items", "count"), Col("n_tie", "ties", "count"), Col("n_baseline", "baseline better",
                                                                               "count"),
         Col("n_neg-train", "neg-train better", "count"), Col("unrated", "not rated", "count"),
         Col("identical_pairs", "pairs with identical responses", "count"),
         Col("baseline_model", "baseline model", "text"), Col("negtrain_model", "neg-train model", "text"))),
}
# What a cell without a value says: ours in a row that was not run, ours or the paper's where the paper prints
# N/A (e.g. the PPL of the Test-set row), the paper's where the paper has no such row or column (e.g. +UL).
NOT_RUN, NA, NO_PAPER = "not run", "N/A", "\u2014"


# ------------------------------------------------------------------------------------------- the paper's side


@dataclass(frozen=True)
class Paper:
    """The paper's side of one table: (row label, column) -> its value (NaN where the paper prints N/A), the rows
    only the paper has (label -> why this run has none) and, in words, which numbers the paper column holds."""

    values: Mapping[tuple[str, str], float]
    missing_rows: Mapping[str, str]
    against: str


def paper_side(table: str, frame: pd.DataFrame, dataset: str) -> Paper:
    """Tables 3, 4, 8, 9: the paper's numbers as the comparison table sets them beside this dataset's (chitchat
    and a dataset of one's own: Switchboard's); Table 6: its own ``paper_*`` columns."""
    label = VIEWS[table].label.name
    if table not in comparison.TABLES:
        values = {(str(rec[label]), c.name): rec.get(f"paper_{c.name}", float("nan"))
                  for rec in frame.to_dict("records") for c in VIEWS[table].main if c.compared}
        known = any(not is_missing(v) for v in values.values())
        return Paper(values if known else {}, {}, f"the paper's {name(dataset)} numbers" if known
                     else f"none (the paper has no {dataset} numbers)")
    paper_dataset = comparison.paper_dataset_of(dataset)       # as in paper_comparison.csv: Switchboard's for others
    cells = comparison.compare({table: frame}, dataset, "")
    produced = set(frame[label].astype(str))
    missing = {r: s for r, s in zip(cells["row"], cells["status"]) if r not in produced}
    return Paper(comparison.paper_cells(table, paper_dataset), missing, against(dataset, paper_dataset))


def against(dataset: str, paper_dataset: str) -> str:
    """Which numbers the paper column holds, in words."""
    return f"the paper's {name(paper_dataset)} numbers" + (
        "" if paper_dataset == dataset else f" ({dataset} is not in the paper; it runs the {name(paper_dataset)} "
                                            "recipe)")


# ------------------------------------------------------------------------------------------------- the cells


@dataclass(frozen=True)
class Row:
    """One row of a view: its label, the CSV's values, its status in words ("" when ok) and whether it was run."""

    label: str
    values: Mapping[str, object]
    note: str = ""
    not_run: bool = False


def view_rows(frame: pd.DataFrame, view: TableView, paper: Paper) -> list[Row]:
    """The CSV's rows in their order, and the rows only the paper has (not run here, with the comparison's reason),
    each after the row that precedes it in the paper."""
    rows = []
    for rec in frame.to_dict("records"):
        status = rec.get("status")
        note = "" if is_missing(status) or status == "ok" else str(status)
        rows.append(Row(str(rec[view.label.name]), rec, note, note.startswith("not run")))
    paper_order = list(dict.fromkeys(label for label, _ in paper.values))
    for label, why in paper.missing_rows.items():
        labels = [r.label for r in rows]
        before = paper_order[:paper_order.index(label)] if label in paper_order else labels
        rows.insert(max((labels.index(b) + 1 for b in before if b in labels), default=0), Row(label, {}, why, True))
    return rows


def compared_cells(col: Col, row: Row, paper: Paper) -> tuple[str, str, str]:
    """(ours, paper, diff) of a column the paper has, as text: the value's kind decides the form; ours says why
    it is missing (not run, N/A), the paper's says N/A where the paper does or a dash where it has no such row."""
    ours = row.values.get(col.name)
    theirs = paper.values.get((row.label, col.name))
    diff = None if is_missing(ours) or is_missing(theirs) else float(ours) - float(theirs)
    return (format_value(ours, col.kind, NOT_RUN if row.not_run else NA),
            format_value(theirs, col.kind, NA if (row.label, col.name) in paper.values else NO_PAPER),
            format_diff(diff, col.kind))


def own_cell(col: Col, row: Row) -> str:
    """A column only the run has: its value in the form of its kind (not run / N/A where there is none)."""
    return format_value(row.values.get(col.name), col.kind, NOT_RUN if row.not_run else NA)


def td(text: str, cls: str) -> str:
    return f'<td class="{cls}">{html.escape(text)}</td>'


def tr(row: Row, cells: str) -> str:
    """A table row: the row's label as its header cell, then ``cells``; greyed when the row was not run."""
    cls = ' class="notrun"' if row.not_run else ""
    return f'<tr{cls}><th scope="row">{html.escape(row.label)}</th>{cells}</tr>'


# ------------------------------------------------------------------------------------------------ the tables


def header(text: str) -> str:
    """A header cell's text, escaped, with its hyphenated words kept on one line ("o-hits", not "o-" / "hits")."""
    return re.sub(r"(\S*-\S*)", r'<span class="nw">\1</span>', html.escape(text))


def block_head(label: Col, block: Sequence[Col], hit_type: str) -> str:
    """Two header rows: each paper column over its ours / paper / diff, the run's own columns over both rows."""
    top = [f'<th rowspan="2" class="label">{header(label.header)}</th>']
    sub = []
    for col in block:
        name = header(col.title(hit_type))
        if col.compared:
            top.append(f'<th colspan="3" class="grp">{name}</th>')
            sub += ['<th class="grp sub">ours</th>', '<th class="sub">paper</th>', '<th class="sub">diff</th>']
        else:
            top.append(f'<th rowspan="2" class="grp">{name}</th>')
    return f'<tr class="head">{"".join(top)}</tr>\n<tr class="head">{"".join(sub)}</tr>'


def block_row(block: Sequence[Col], row: Row, paper: Paper, with_note: bool) -> str:
    """A row of the paper's columns; ``with_note``: a status other than ok follows in words in a line under it."""
    cells = []
    for col in block:
        if col.compared:
            ours, theirs, diff = compared_cells(col, row, paper)
            cells += [td(ours, "num grp"), td(theirs, "num paper"), td(diff, "num diff")]
        else:
            cells.append(td(own_cell(col, row), "num grp"))
    line = tr(row, "".join(cells))
    if row.note and with_note:
        width = sum(3 if c.compared else 1 for c in block)
        line += f'\n<tr class="reason"><td></td><td colspan="{width}">{html.escape(row.note)}</td></tr>'
    return line


def main_table(view: TableView, rows: Sequence[Row], paper: Paper, hit_type: str) -> str:
    """The paper's columns, block under block in one table (the rows' reasons under the first block)."""
    parts = []
    for i, block in enumerate(view.blocks()):
        head = block_head(view.label, block, hit_type)
        parts.append(f"<thead>\n{head}\n</thead>" if i == 0 else f'<tbody class="block">\n{head}\n</tbody>')
        parts.append("<tbody>\n" + "\n".join(block_row(block, r, paper, i == 0) for r in rows) + "\n</tbody>")
    return f'<table id="table" class="paper">{"".join(parts)}</table>'


def details_table(view: TableView, rows: Sequence[Row]) -> str:
    """The run's own columns of the rows it produced, transposed: a line per column, a column per row (many
    columns still fit the report's frame); none: no table."""
    produced = [r for r in rows if r.values]
    if not view.details or not produced:
        return ""
    head = "".join(f'<th class="{"notrun" if r.not_run else ""}">{header(r.label)}</th>' for r in produced)
    lines = []
    for col in view.details:
        kind = "text" if col.kind == "text" else "num"
        cells = "".join(td(own_cell(col, r), kind + (" notrun" if r.not_run else "")) for r in produced)
        lines.append(f'<tr><th scope="row">{header(col.header)}</th>{cells}</tr>')
    return (f'<h3>Details of the run</h3>\n<table id="details"><thead><tr class="head"><th>'
            f'{header(view.label.header)}</th>{head}</tr></thead><tbody>\n' + "\n".join(lines) + "\n</tbody></table>")


def notes_html(view: TableView, frame: pd.DataFrame) -> str:
    """The text columns with one value per table, as lines under it (several values: each once)."""
    lines = []
    for col in view.notes:
        values = [v for v in dict.fromkeys(frame.get(col.name, pd.Series(dtype=object))) if not is_missing(v)]
        lines += [f"<p class=\"note\">{html.escape(col.header)}: {html.escape(str(v))}</p>" for v in values]
    return "\n".join(lines)


def figures_html(table: str, figures: Sequence[str | Path]) -> str:
    """The plots of a table, embedded (the view is one self-contained file), each with what it shows."""
    out = []
    for path in figures:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = FIGURES.get(table, {}).get(Path(path).name, Path(path).name)
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(Path(path).name)}">'
                   f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------- the pages

FORM = ("Rates, max-ratio and shares in percent with one decimal, PPL, NLL and Ent-n with two decimals, BLEU-4 with "
        "three, as the paper prints them (the CSV keeps fractions at full precision); diff = ours \u2212 paper, in "
        "percentage points (pp) for percentages. N/A: no such number (as in the paper); \u2014: the paper has no "
        "such row.")
DATASET_NAMES = {"ubuntu": "Ubuntu", "switchboard": "Switchboard", "opensubtitles": "OpenSubtitles"}
QUICK = ("A quick-scale run trains CPU-sized models on CPU-sized data: its numbers show that the pipeline works, "
         "they are not comparable with the paper's.")


def first(frame: pd.DataFrame, column: str, default: str) -> str:
    """The first value of a column that holds one value per table (scale, hit type), else ``default``."""
    values = [v for v in frame.get(column, pd.Series(dtype=object)) if not is_missing(v)]
    return str(values[0]) if values else default


def intro(dataset: str, scale: str, against: str, extra: Sequence[str] = ()) -> str:
    """The lines above a table: what was run, which numbers the paper column holds, what they can be compared
    with."""
    lines = [f"{html.escape(name(dataset))}, scale {html.escape(scale)}. Paper column: {html.escape(against)}.",
             *map(html.escape, extra)] + ([QUICK] if scale == "quick" else [])
    return "\n".join(f'<p class="intro">{line}</p>' for line in lines)


def form_note() -> str:
    return f'<p class="note">{html.escape(FORM)}</p>'


def name(dataset: str) -> str:
    """A dataset as the paper writes it (Switchboard, OpenSubtitles); another as it is."""
    return DATASET_NAMES.get(dataset, dataset)


def table_page(table: str, frame: pd.DataFrame, dataset: str, source: str,
               figures: Sequence[str | Path] = ()) -> str:
    """The view of one paper table (``VIEWS[table]``): the paper's columns beside the paper's values, the run's
    own columns, notes and plots."""
    view, paper = VIEWS[table], paper_side(table, frame, dataset)
    paper_type = comparison.PAPER_HIT_TYPE[comparison.paper_dataset_of(dataset)]
    hit_type = first(frame, "hit_type", paper_type)
    extra = [f"Hit rates measured as {hit_type}-hits; the paper's columns are {paper_type}-hits."] \
        if table == "table3" and hit_type != paper_type else []
    rows = view_rows(frame, view, paper)
    parts = [intro(dataset, first(frame, "scale", "?"), paper.against, extra),
             main_table(view, rows, paper, hit_type), form_note(),
             details_table(view, rows), notes_html(view, frame), figures_html(table, figures)]
    return page(TITLES[table], parts, f"{source}: {len(frame)} rows")


def comparison_row(rec: Mapping[str, object], hit_type: str, common_note: str) -> str:
    """One cell of the comparison: the quantity by its view's header, ours / paper / diff in its kind's form."""
    col = next((c for c in VIEWS[str(rec["table"])].main if c.name == rec["column"]),
               Col(str(rec["column"]), str(rec["column"]), "text"))
    status = str(rec["status"])
    note = "" if is_missing(rec.get("note")) else str(rec["note"]).replace(common_note, "").strip("; ")
    not_run = status.startswith("not run")
    row = Row(str(rec["row"]), {}, not_run=not_run)
    cells = [td(col.title(hit_type), "text"),
             td(format_value(rec["value"], col.kind, NOT_RUN if not_run else NA), "num grp"),
             td(format_value(rec["paper"], col.kind, NO_PAPER), "num paper"),
             td(format_diff(rec["diff"], col.kind), "num diff"), td(relative(rec["rel_diff"]), "num diff"),
             td("; ".join(s for s in (status, note) if s), "text grp")]
    return tr(row, "".join(cells))


def comparison_page(frame: pd.DataFrame, source: str, figures: Sequence[str | Path] = ()) -> str:
    """The view of the paper comparison: one row per cell, grouped by table, each quantity in its table's form."""
    dataset = first(frame, "dataset", "?")
    paper_dataset = first(frame, "paper_dataset", dataset)
    common = comparison.CHITCHAT_NOTE if paper_dataset != dataset else ""
    hit_type = comparison.PAPER_HIT_TYPE.get(paper_dataset, "sample")
    head = "".join(f"<th>{h}</th>" for h in ("Row", "Quantity", "ours", "paper", "diff", "relative diff",
                                               "status"))
    body = []
    for table, group in frame.groupby("table", sort=False):
        body.append(f'<tr class="group"><th colspan="7">{html.escape(TITLES.get(str(table), str(table)))}</th></tr>')
        body += [comparison_row(rec, hit_type, common) for rec in group.to_dict("records")]
    parts = [intro(dataset, first(frame, "scale", "?"), against(dataset, paper_dataset)),
             f'<table id="table" class="long"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
             + "\n</tbody></table>", form_note(),
             figures_html("paper_comparison", figures)]
    return page(TITLES["paper_comparison"], parts, f"{source}: {len(frame)} rows")


def page(title: str, parts: Sequence[str], source: str) -> str:
    return PAGE.format(title=html.escape(title), heading=header(title), body="\n".join(p for p in parts if p),
                       source=html.escape(source))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:"DejaVu Sans",sans-serif;margin:1em;color:#222;background:#fff;font-size:14px}}
h2{{font-size:20px;margin:0 0 .4em}}h3{{font-size:15px;margin:1.4em 0 .4em}}
p.intro{{margin:.2em 0;max-width:70em;color:#333}}p.note,p.src{{color:#555;font-size:12px;max-width:70em}}
table{{border-collapse:collapse;font-size:12px;margin-top:.6em}}
th,td{{border:1px solid #d0d0d0;padding:2px 4px}}
tr.head th{{background:#eef0f3;text-align:center;vertical-align:bottom;font-weight:600}}
tr.head th.sub{{font-weight:normal;font-size:11px;color:#444}}
th[scope=row]{{text-align:left;font-weight:normal;white-space:nowrap;background:#fafafa}}
td.num{{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}}td.text{{text-align:left}}
#details td.text{{white-space:nowrap}}
td.paper,td.diff{{color:#555}}td.diff{{font-size:11px}}
.grp{{border-left:2px solid #888}}.nw{{white-space:nowrap}}
tr.notrun td,tr.notrun th,td.notrun,tr.head th.notrun{{color:#999;background:#f5f5f5}}
tr.reason td{{border-top:none;color:#666;font-style:italic;font-size:11px;padding-top:0}}
tr.group th{{text-align:left;background:#e4e7ec}}tbody.block tr:first-child th{{border-top:2px solid #888}}
table.long td.text{{max-width:36em}}
figure{{margin:1.5em 0}}figure img{{max-width:100%;border:1px solid #ddd}}
figcaption{{color:#555;font-size:12px;max-width:70em}}
</style></head><body>
<h2>{heading}</h2>
{body}
<p class="src">Made from {source}.</p>
</body></html>
"""


def write_table_view(csv_path: str | Path, figure_paths: Sequence[str | Path], out: str | Path, table: str,
                     dataset: str) -> None:
    """Rule table_view: ``results/{dataset}/{table}.csv`` (and the table's plots, ``FIGURES``) -> its HTML view."""
    frame = pd.read_csv(csv_path)
    text = comparison_page(frame, str(csv_path), figure_paths) if table == "paper_comparison" else \
        table_page(table, frame, dataset, str(csv_path), figure_paths)
    atomic_write_text(out, text)
