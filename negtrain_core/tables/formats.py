"""How the report prints a number: the paper's form for each kind of value (the CSVs keep full precision).

The paper prints hit rates, max-ratio and shares as percentages with at most one decimal (27.8%), perplexities and
NLLs with two decimals (42.81), Ent-n with two (8.61) and BLEU-4 on the 0-1 scale with three (0.476). ``KINDS``
holds one ``Kind`` per such kind of value and ``format_value`` / ``format_diff`` are the only functions that turn a
number into text, so every view of every table prints a kind the same way.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """How one kind of value is printed: ``value * scale`` with ``decimals`` decimals, then ``unit``; a difference
    of two such values gets an explicit sign and ``diff_unit`` (percentage points for percentages)."""

    scale: float
    decimals: int
    unit: str = ""
    diff_unit: str = ""


KINDS: dict[str, Kind] = {
    "rate": Kind(100.0, 1, "%", " pp"),   # hit rates, max-ratio, r_thres, overlaps, shares: fractions in the CSVs
    "ppl": Kind(1.0, 2),                  # perplexity
    "nll": Kind(1.0, 2),                  # per-word negative log-likelihood, nats
    "entropy": Kind(1.0, 2),              # Ent-2, Ent-3 (nats)
    "bleu": Kind(1.0, 3),                 # BLEU-4 on the paper's 0-1 scale
    "count": Kind(1.0, 0),                # list sizes, targets, items (floats in the CSVs where a row has none)
    "seconds": Kind(1.0, 1),              # wall times (Snakemake's benchmark files)
}


def is_missing(value: object) -> bool:
    """None, NaN, an empty string or pandas' NA: a cell without a value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(value != value)     # NaN and pd.NA are the values unequal to themselves
    except TypeError:                   # pd.NA refuses bool(): it is missing
        return True


def format_value(value: object, kind: str, missing: str = "") -> str:
    """``value`` in the paper's form for ``kind`` (a key of ``KINDS``, or "text": printed as it is); ``missing``
    where there is no value (e.g. the reason a row was not run). 0.5384615 as "rate" -> "53.8%"."""
    if is_missing(value):
        return missing
    if kind == "text" or not isinstance(value, numbers.Real) or isinstance(value, bool):
        return str(value)
    k = KINDS[kind]
    return f"{float(value) * k.scale:.{k.decimals}f}{k.unit}"


def format_diff(diff: object, kind: str, missing: str = "") -> str:
    """A difference (ours - paper) with its sign, in the unit of ``kind``: 0.2604615 as "rate" -> "+26.0 pp"."""
    if is_missing(diff):
        return missing
    k = KINDS[kind]
    scaled = float(diff) * k.scale
    scaled = 0.0 if round(scaled, k.decimals) == 0 else scaled     # no "-0.0"
    return f"{scaled:+.{k.decimals}f}{k.diff_unit}"


def relative(rel_diff: object, missing: str = "") -> str:
    """A relative difference (diff / |paper|) as a signed percentage without decimals: 2.8968 -> "+290%"."""
    if is_missing(rel_diff) or math.isinf(float(rel_diff)):
        return missing
    return f"{float(rel_diff) * 100:+.0f}%"
