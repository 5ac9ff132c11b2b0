"""Corpus readers. ``READERS`` maps each ``datasets.<name>.reader`` value to the module that reads it; the module
defines ``read_<reader>(data: DataSettings) -> ReadResult``, or ``read`` when it reads one format only.

A reader turns one raw corpus into dialogues of raw utterance text (markup removed, not yet normalised);
``negtrain_core.data.preprocess`` normalises, splits, pairs and writes Parquet. Adding one: docs/architecture.md,
"Extending".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from negtrain_core.config import DataSettings


@dataclass(frozen=True)
class Dialogue:
    """One dialogue: an id and its utterances in order (each one turn of the (context, response) chain)."""

    id: str
    utterances: tuple[str, ...]


@dataclass
class ReadResult:
    """What a reader found.

    split: dialogue id -> "train" | "valid" | "test" when the corpus fixes the split (SwDA: the authors' files);
           None lets preprocessing split by the config's counts.
    records: raw records seen (an empty file or conversation counts as one record).
    malformed / empty: records dropped as malformed, and files or conversations dropped because they hold no record;
           malformed_examples: the first few of both, "file:line: reason".
    bad_bytes: records kept with undecodable bytes replaced by U+FFFD (normalisation then drops the U+FFFD, so
           ``café`` in latin-1 becomes ``caf``); bad_byte_examples: the first few, "file:line: reason".
    files: per raw file with a problem, {"malformed": n, "bad_bytes": n, "empty": n} (zero counts left out).
    notes: extra figures for the rule log and stats (e.g. agreement with the authors' processed files).
    """

    dialogues: list[Dialogue]
    split: dict[str, str] | None = None
    records: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    bad_bytes: int = 0
    empty: int = 0
    bad_byte_examples: list[str] = field(default_factory=list)
    files: dict[str, dict[str, int]] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The record counts as notes/stats keys: raw_records, malformed_records, bad_byte_records, empty_files,
        and problem_files (files with any problem; listed per file up to ``MAX_FILES_LISTED``)."""
        listed = dict(sorted(self.files.items())[:MAX_FILES_LISTED])
        return {"raw_records": self.records, "malformed_records": self.malformed,
                "bad_byte_records": self.bad_bytes, "empty_files": self.empty,
                "problem_files": len(self.files), "problem_files_listed": listed}


MAX_FILES_LISTED = 100          # per-file problem counts kept in notes.json and the log; the totals cover all


class MalformedRecords(ValueError):
    """Too many malformed raw records: one line naming the raw file, the counts and the first bad records."""


def check_share(result: ReadResult, max_share: float, source: str) -> None:
    """Raise ``MalformedRecords`` when the records dropped (malformed or empty), or those altered (bytes that are
    not UTF-8 replaced), exceed ``max_share`` of the records read; the line names ``source`` and the first bad
    records (file:line). Decisions that need clean input (e.g. SwDA's match with the authors' file) come after it."""
    n = max(result.records, 1)
    dropped = result.malformed + result.empty
    if result.records and result.empty == result.records:        # every file empty: a share says it in a roundabout way
        raise MalformedRecords(f"{source}: nothing to read ({'; '.join(result.malformed_examples[:3])})")
    if dropped / n > max_share:
        what = "malformed or empty" if result.empty else "malformed"
        raise MalformedRecords(
            f"{source}: {dropped} of {result.records} raw records {what} ({dropped / n:.2%} > malformed_max_share "
            f"{max_share:.2%}); first: {'; '.join(result.malformed_examples[:3]) or 'no example recorded'}")
    if result.bad_bytes / n > max_share:
        raise MalformedRecords(
            f"{source}: {result.bad_bytes} of {result.records} raw records hold bytes that are not UTF-8, replaced "
            f"({result.bad_bytes / n:.2%} > malformed_max_share {max_share:.2%}; convert the corpus to UTF-8); "
            f"first: {'; '.join(result.bad_byte_examples[:3])}")


READERS = {
    "chitchat": "negtrain_core.data.readers.chitchat",
    "swda_markup": "negtrain_core.data.readers.swda",
    "swda_plain": "negtrain_core.data.readers.swda",
    "udc_v1": "negtrain_core.data.readers.ubuntu",
    "irc_reply_links": "negtrain_core.data.readers.ubuntu",
    "opus_xml": "negtrain_core.data.readers.opensubtitles",
    "jsonl": "negtrain_core.data.readers.generic",        # a researcher's own dialogues: JSON Lines
    "csv": "negtrain_core.data.readers.generic",          # ... or CSV / TSV
}


class UnknownReader(ValueError):
    """A reader name the registry cannot resolve to a function, in one line naming what to add where."""


def reader(name: str) -> Callable[[DataSettings], ReadResult]:
    """The ``read_<name>`` (else ``read``) function of reader ``name``'s module (imported on demand)."""
    if name not in READERS:
        raise UnknownReader(f"reader '{name}' (config datasets.<name>.reader) is not in READERS of "
                            f"{__name__}: add it there with the module that reads it")
    module = importlib.import_module(READERS[name])
    found = getattr(module, f"read_{name}", None) or getattr(module, "read", None)
    if not callable(found):
        raise UnknownReader(f"reader '{name}': {module.__name__} defines neither read_{name} nor read")
    return found
