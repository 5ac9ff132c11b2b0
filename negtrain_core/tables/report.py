"""Pieces of the Snakemake HTML report (``snakemake --report report.html``) that are not Snakemake's own.

Snakemake's report shows images and HTML files in the browser but offers CSV files only as downloads, so each
paper table also gets a small self-contained HTML view (``table_view_html``) that the report displays; the CSV
stays beside it. ``STAGES`` names the report's subcategory of each table, ``TITLES`` its heading.
"""

from __future__ import annotations

import html
import math
import numbers
from pathlib import Path

import pandas as pd

from negtrain_core.io import atomic_write_text

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


def format_cell(value: object) -> str:
    """Numbers with 4 significant digits (integers as they are), NaN/None as an empty cell, text escaped."""
    if value is None or (isinstance(value, numbers.Real) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, numbers.Integral)):
        return str(value)
    if isinstance(value, numbers.Real):
        return f"{value:.4g}"
    return html.escape(str(value))


def table_view_html(frame: pd.DataFrame, title: str, source: str) -> str:
    """A standalone HTML page: heading, the CSV's path, and the table (rows whose status says 'not run' greyed)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for rec in frame.to_dict("records"):
        status = str(rec.get("status", ""))
        cls = ' class="notrun"' if status.startswith("not run") else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{format_cell(v)}</td>" for v in rec.values()) + "</tr>")
    return VIEW_TEMPLATE.format(title=html.escape(title), source=html.escape(source), head=head,
                                body="\n".join(body), n=len(frame))


VIEW_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:sans-serif;margin:1em;color:#222;background:#fff}}
table{{border-collapse:collapse;font-size:13px}}th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}}
th{{background:#eee}}tr.notrun td{{color:#888;background:#f7f7f7}}p.src{{color:#555;font-size:12px}}
</style></head><body>
<h2>{title}</h2>
<p class="src">{source}: {n} rows; empty cells have no value (not run, or N/A in the paper)</p>
<table id="table"><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
</body></html>
"""


def write_table_view(csv_path: str | Path, out: str | Path, table: str) -> None:
    """Rule table_view: ``results/{dataset}/{table}.csv`` -> its HTML view."""
    frame = pd.read_csv(csv_path)
    atomic_write_text(out, table_view_html(frame, TITLES[table], str(csv_path)))
