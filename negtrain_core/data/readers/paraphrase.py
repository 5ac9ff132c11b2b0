"""Paraphrase pair readers for the paraphraser of paper §4.2 (config ``paraphrase.corpora``).

Formats (``format`` in a ``paraphrase.corpora`` entry):

- ``paranmt``: ParaNMT-50M / para-nmt-5m (Wieting & Gimpel 2018): one pair per line,
  ``sentence1<TAB>sentence2`` with an optional third field, the similarity score (a float).
- ``mrpc``: Microsoft Research Paraphrase Corpus TSV: header ``Quality #1 ID #2 ID #1 String #2 String``
  (UTF-8 BOM, CRLF); only pairs labelled 1 (paraphrase) are kept. Lines are split on tabs only: MRPC strings
  hold unbalanced double quotes, so csv quoting must not be applied.
- ``parallel``: two line-aligned files (``path``: sources, ``path2``: paraphrases), e.g. ParaGEN's ``*.q1/*.q2``.

Every file is split on ``\\n`` only, a trailing ``\\r`` dropped and a stray ``\\r`` inside a line read as a space
(``archive.text_lines``), so CR characters never shift the line alignment. Files may be gzipped. Pairs are raw
text (stripped, not normalised). A malformed line (wrong field count, empty side, bad label or score) is counted
with ``file:line`` and skipped, and a line whose bytes are not UTF-8 (replaced by U+FFFD) is counted too;
``read_pairs`` fails when either exceeds ``max_malformed_share`` of the lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from negtrain_core.data.readers.archive import MAX_EXAMPLES, corrupt_errors, text_lines

log = logging.getLogger(__name__)
FORMATS = ("paranmt", "mrpc", "parallel")
MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]

Pair = tuple[str, str]


@dataclass
class PairsRead:
    """Pairs of one corpus with its line counts and the first malformed lines as ``"file:line: reason"``."""

    pairs: list[Pair] = field(default_factory=list)
    records: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    bad_bytes: int = 0
    bad_byte_examples: list[str] = field(default_factory=list)

    def replacer(self, path: str | Path) -> Callable[[int], None]:
        """Counts each line of ``path`` whose undecodable bytes were replaced (``text_lines``' ``bad`` callback)."""
        def replaced(line: int) -> None:
            self.bad_bytes += 1
            if len(self.bad_byte_examples) < MAX_EXAMPLES:
                self.bad_byte_examples.append(f"{path}:{line}: bytes that are not UTF-8 replaced")
        return replaced

    def bad(self, where: str, reason: str) -> None:
        self.records += 1
        self.malformed += 1
        if len(self.malformed_examples) < MAX_EXAMPLES:
            self.malformed_examples.append(f"{where}: {reason}")

    def add(self, a: str, b: str, where: str) -> None:
        """Keep ``(a, b)`` when both sides are non-empty after stripping, else count the line malformed."""
        a, b = a.strip(), b.strip()
        if not a or not b:
            self.bad(where, "empty sentence")
        else:
            self.records += 1
            self.pairs.append((a, b))


def lines(path: str | Path, out: PairsRead | None = None) -> Iterator[str]:
    """Lines of a (possibly gzipped) text file, split on ``\\n`` only; a final empty line is not yielded. Lines with
    undecodable bytes are counted in ``out``; a broken gzip file raises ``CorruptMember`` naming it."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f, corrupt_errors(path):
        yield from text_lines(f, bad=out.replacer(path) if out is not None else None)


def _score_ok(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_paranmt(path: str | Path, out: PairsRead) -> None:
    """``sentence1<TAB>sentence2[<TAB>score]`` lines into ``out``."""
    for n, line in enumerate(lines(path, out), start=1):
        fields = line.split("\t")
        if len(fields) not in (2, 3) or (len(fields) == 3 and not _score_ok(fields[2])):
            out.bad(f"{path}:{n}", f"expected 'sentence1<TAB>sentence2[<TAB>score]', got {len(fields)} fields")
        else:
            out.add(fields[0], fields[1], f"{path}:{n}")


def read_mrpc(path: str | Path, out: PairsRead) -> None:
    """MRPC TSV lines labelled 1 into ``out`` (label-0 lines are read, counted as records, and dropped)."""
    rows = lines(path, out)
    header = next(rows, "").split("\t")
    if header != MRPC_HEADER:
        raise ValueError(f"{path}:1: header {header} is not the MRPC header {MRPC_HEADER}")
    for n, line in enumerate(rows, start=2):
        fields = line.split("\t")
        if len(fields) != 5 or fields[0] not in ("0", "1"):
            out.bad(f"{path}:{n}", f"expected 5 tab-separated fields with Quality 0|1, got {len(fields)} fields")
        elif fields[0] == "1":
            out.add(fields[3], fields[4], f"{path}:{n}")
        else:
            out.records += 1


def read_parallel(path: str | Path, path2: str | Path, out: PairsRead) -> None:
    """Line i of ``path`` with line i of ``path2``; files of different lengths are refused."""
    left, right = list(lines(path, out)), list(lines(path2, out))
    if len(left) != len(right):
        raise ValueError(f"{path} has {len(left)} lines but {path2} has {len(right)}: not line-aligned")
    for n, (a, b) in enumerate(zip(left, right), start=1):
        out.add(a, b, f"{path}:{n}")


def load_pairs(format: str, path: str | Path, path2: str | Path | None = None) -> PairsRead:
    """All well-formed pairs of one corpus, with counts (see the module docstring for the formats)."""
    out = PairsRead()
    if format == "paranmt":
        read_paranmt(path, out)
    elif format == "mrpc":
        read_mrpc(path, out)
    elif format == "parallel":
        if path2 is None:
            raise ValueError(f"parallel paraphrase corpus {path}: path2 (the paraphrase side) is missing")
        read_parallel(path, path2, out)
    else:
        raise ValueError(f"unknown paraphrase format '{format}' (expected one of {', '.join(FORMATS)})")
    return out


def read_pairs(format: str, path: str | Path, path2: str | Path | None = None,
               max_malformed_share: float = 0.01) -> list[Pair]:
    """``(sentence, paraphrase)`` pairs of one corpus; malformed lines are logged, and fail above the share."""
    got = load_pairs(format, path, path2)
    if got.malformed:
        log.warning("%s: %d of %d lines malformed, first: %s", path, got.malformed, got.records,
                    "; ".join(got.malformed_examples))
    if got.bad_bytes:
        log.warning("%s: %d of %d lines hold bytes that are not UTF-8 (replaced), first: %s", path, got.bad_bytes,
                    got.records, "; ".join(got.bad_byte_examples))
    if got.records and got.malformed / got.records > max_malformed_share:
        raise ValueError(f"{path}: {got.malformed} of {got.records} lines malformed "
                         f"(more than {max_malformed_share:.2%}); first: {got.malformed_examples[0]}")
    if got.records and got.bad_bytes / got.records > max_malformed_share:
        raise ValueError(f"{path}: {got.bad_bytes} of {got.records} lines hold bytes that are not UTF-8 "
                         f"(more than {max_malformed_share:.2%}); first: {got.bad_byte_examples[0]}")
    if not got.pairs:
        raise ValueError(f"{path}: no paraphrase pairs in it ({got.records} lines read)")
    return got.pairs
