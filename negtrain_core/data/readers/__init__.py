"""Corpus readers. Each reader module has ``read(data: DataSettings) -> ReadResult``.

A reader turns one raw corpus into dialogues of raw utterance text (markup removed, not yet normalised);
``negtrain_core.data.preprocess`` normalises, splits, pairs and writes Parquet.
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
    records / malformed: raw records seen and rejected; malformed_examples: the first few, "file:line: reason".
    notes: extra figures for the rule log and stats (e.g. agreement with the authors' processed files).
    """

    dialogues: list[Dialogue]
    split: dict[str, str] | None = None
    records: int = 0
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


READERS = {
    "chitchat": "negtrain_core.data.readers.chitchat",
    "swda_markup": "negtrain_core.data.readers.swda",
    "swda_plain": "negtrain_core.data.readers.swda",
    "udc_v1": "negtrain_core.data.readers.ubuntu",
    "irc_reply_links": "negtrain_core.data.readers.ubuntu",
    "opus_xml": "negtrain_core.data.readers.opensubtitles",
}


def reader(name: str) -> Callable[[DataSettings], ReadResult]:
    """The ``read`` function of reader ``name`` (modules are imported on demand)."""
    module = importlib.import_module(READERS[name])
    return getattr(module, f"read_{name}", None) or module.read
