"""Text normalisation and tokenisation shared by every reader.

The paper (Appendix B) lower-cases text and removes punctuation; the authors' processed Switchboard files
(docs/data.md) show PTB-style clitic splitting: ``do n't``, ``we 're``, ``i 'm``, ``ca n't``.
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'})
_NT = re.compile(r"(?<=[a-z0-9])n't\b")                     # don't -> do n't, can't -> ca n't
_CLITIC = re.compile(r"(?<=[a-z0-9])'(s|re|ve|ll|d|m)\b")   # we're -> we 're, he'd've -> he 'd 've
_KEEP = re.compile(r"[^a-z0-9' .\-]")                       # everything else is punctuation
_NON_DECIMAL_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")           # a dot survives only between digits
_LONE_QUOTE = re.compile(r"(^|\s)'(?!(s|re|ve|ll|d|m|t)\b)|'(?=\s|$)")
_LONE_HYPHEN = re.compile(r"(^|\s)-+|(?<![a-z])-+(?=\s|$)")  # a cut-off word keeps its hyphen: "whi-"
_CANNOT = re.compile(r"\bcannot\b")                          # PTB: cannot -> can not


def _fold(text: str) -> str:
    """Compatibility forms unfolded (NFKD: ``ﬁ`` -> ``fi``) and accents dropped (``café`` -> ``cafe``)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _strip_lone_marks(text: str) -> str:
    """Quotes and hyphens that are not inside a word (or a clitic's quote) removed, until none is left: removing
    one can leave another alone (``''x`` -> ``'x`` -> ``x``), and ``normalize`` must be idempotent."""
    while True:
        stripped = _LONE_HYPHEN.sub(" ", _LONE_QUOTE.sub(" ", text))
        if stripped == text:
            return text
        text = stripped


def normalize(text: str) -> str:
    """Lower-case, fold unicode (accents dropped), split clitics and drop punctuation; returns space-joined tokens.

    Numbers keep their digits: ``1,000`` -> ``1000`` and ``2.5`` -> ``2.5`` (a dot between digits is kept as part
    of the token; a comma between digits is dropped). Intra-word hyphens survive (``uh-huh``), and so does the
    hyphen of a cut-off word (``whi-``, as in the authors' Switchboard files); other hyphens, quotes and punctuation
    become spaces. ``cannot`` becomes ``can not`` (PTB). A plural possessive's quote (``doctors'``) is dropped,
    unlike the authors' files (``doctors '``): a lone quote after an s is too often a closing quotation mark.
    """
    text = _fold(text).translate(_QUOTES).lower()
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    text = _CANNOT.sub("can not", text)
    text = _NT.sub(" n't", text)
    text = _CLITIC.sub(r" '\1", text)
    text = _NON_DECIMAL_DOT.sub(" ", _KEEP.sub(" ", text))
    return " ".join(_strip_lone_marks(text).split())


def tokenize(text: str) -> list[str]:
    """Tokens of ``normalize(text)``."""
    return normalize(text).split()
