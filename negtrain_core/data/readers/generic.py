"""Readers for a researcher's own dialogues: JSON Lines (``reader: jsonl``) and CSV / TSV (``reader: csv``).

``raw.path`` is one file (read whatever its name; ``.gz`` decompressed), or a folder / .zip / .tar.gz whose
``*.jsonl`` / ``*.ndjson`` (reader jsonl) or ``*.csv`` / ``*.tsv`` (reader csv) files, optionally gzipped, are read
in order (``archive.iter_members``). Text must be UTF-8; undecodable bytes are replaced and counted, and a file that
starts with a UTF-16 byte-order mark, or a spreadsheet workbook (.xlsx, .ods), is refused in one line.

JSON Lines (``read_jsonl``): one dialogue per line, in one of two shapes (both may be mixed in one file):

- an array of turns: ``["Hi, is the kitchen still open?", "Yes, until ten."]``; the dialogue id is ``<file>:<line>``;
- an object ``{"id": ..., "turns": [...]}``: ``turns`` (required) an array of turns, ``id`` (optional) a non-empty
  string or an integer, unique across the files (absent: ``<file>:<line>``).

A turn is a string, or an object ``{"text": ..., "speaker": ...}`` with ``text`` a string (required) and ``speaker``
a string or integer (optional). These are the only keys read: other keys of a dialogue or turn object are ignored.
Consecutive turns of one speaker are merged into one utterance (texts joined by a space), as the UDC reader does.
A record is a line. Malformed (the line dropped, counted with ``file:line``): not JSON, neither shape, a turn of
neither form, a speaker or id of another type, an id already used. Empty (dropped, counted): a dialogue without
turns, a file without a non-blank line. Blank lines are skipped.

CSV / TSV (``read_csv``): a header row naming the columns, then one row per utterance. Columns read:
``datasets.<name>.csv.id_column`` (default ``dialogue_id``) and ``text_column`` (default ``text``), and
``speaker_column`` when set (default none); other columns are ignored. The delimiter is ``csv.delimiter``, or when
unset a tab for ``*.tsv`` / ``*.tsv.gz`` files and a comma otherwise; fields are quoted the CSV way (a field that
starts with ``"`` runs to its closing ``"``, as Python, pandas and spreadsheets write them). A dialogue is the rows
of one id in row order; rows of different dialogues may interleave (they are grouped by id, keeping order; notes
count the dialogues whose rows were not together). A record is a row. Malformed: a field count other than the
header's, an empty id, unreadable CSV. Empty: a file without a row under its header. A header without the
configured columns stops the read in one line naming the file and the config key.

Both readers count per file (``archive.Tally``); the first few problems go to the rule log as ``file:line: reason``,
and past ``preprocess.malformed_max_share`` of the records preprocessing stops in one line (``readers.check_share``).

Split (``datasets.<name>.split``): ``valid_dialogues`` / ``test_dialogues`` are counts, or fractions below 1 of the
dialogues that hold a (context, response) pair after normalisation. Counts: preprocessing splits (``split.order``:
``file``, ``sorted_id_hash``, or ``random`` with the config's seed). Fractions: the reader resolves them to counts
(rounded, at least 1) and fixes the same split ``preprocess.split_ids`` would make with those counts.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from negtrain_core.config import CSV_FORMAT, DataSettings
from negtrain_core.data.preprocess import few_pairs_note, normalized_dialogues, source, split_ids
from negtrain_core.data.raw import RawInputError
from negtrain_core.data.readers import Dialogue, ReadResult, check_share
from negtrain_core.data.readers.archive import Tally, decoded_lines, iter_members, kind, text_lines

JSONL_FILE = re.compile(r"\.(jsonl|ndjson)(\.gz)?$")
CSV_FILE = re.compile(r"\.(csv|tsv)(\.gz)?$")
TSV_FILE = re.compile(r"\.tsv(\.gz)?$")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
WORKBOOK = re.compile(r"\.(xlsx|xlsm|xls|ods|numbers)$", re.IGNORECASE)   # an .xlsx would be opened as a zip
HELD_OUT = ("valid_dialogues", "test_dialogues")

Turn = tuple[Any, str]   # (speaker or None, text)


class BadRecord(ValueError):
    """One malformed record; the message is the reason (the caller adds ``file:line``)."""


def merge_speaker_runs(turns: Iterable[Turn]) -> tuple[str, ...]:
    """Utterances of a turn sequence: consecutive turns of one (non-None) speaker joined by a space."""
    out: list[str] = []
    last = None
    for speaker, text in turns:
        if out and speaker is not None and speaker == last:
            out[-1] = f"{out[-1]} {text}"
        else:
            out.append(text)
        last = speaker
    return tuple(out)


def raw_files(data: DataSettings, pattern: re.Pattern[str], what: str) -> Iterator[tuple[str, BinaryIO]]:
    """``(member name, binary file)`` of the files this reader reads under ``data.raw["path"]``: the file itself,
    or a container's files whose names match ``pattern``; one line when the path is unset or holds none."""
    path = data.raw.get("path")
    if not path:
        raise RawInputError(f"datasets.{data.name}.raw.path is not set: name the file of your dialogues ({what})")
    if WORKBOOK.search(str(path)):
        raise RawInputError(f"{path}: a spreadsheet workbook, not text; save its sheet as CSV UTF-8 (one row an "
                            f"utterance) and name that file in datasets.{data.name}.raw.path, with reader: csv")
    single = kind(path) == "file"
    found = False
    for name, f in iter_members(path, lambda n: single or bool(pattern.search(n))):
        found = True
        if f.peek(2)[:2] in UTF16_BOMS:   # read as UTF-8 no line would parse: say why, not 'malformed' per line
            where = path if single else f"{path} (member {name})"
            raise RawInputError(f"{where}: UTF-16 text (it starts with a UTF-16 byte-order mark, as Excel's "
                                f"'Unicode Text' and Windows PowerShell write it); save it as UTF-8, e.g. "
                                f"iconv -f UTF-16 -t UTF-8")
        yield name, f
    if not found:
        raise RawInputError(f"{path}: no {what} files inside (a folder or archive is searched for them by suffix)")


# ---------------------------------------------------------------------------------------------- JSON Lines


def json_turn(turn: Any, i: int) -> Turn:
    """``(speaker, text)`` of turn ``i`` (0-based): a string, or an object with string ``text`` and optional
    string / integer ``speaker``; else ``BadRecord``."""
    if isinstance(turn, str):
        return None, turn
    if not isinstance(turn, dict) or not isinstance(turn.get("text"), str):
        raise BadRecord(f"turn {i + 1} is not a string or an object with a string 'text'")
    speaker = turn.get("speaker")
    if speaker is not None and (isinstance(speaker, bool) or not isinstance(speaker, (str, int))):
        raise BadRecord(f"turn {i + 1}: 'speaker' is not a string or integer")
    return speaker, turn["text"]


def json_dialogue(line: str, where: str) -> tuple[str, list[Turn]]:
    """``(dialogue id, turns)`` of one JSON line (``where`` = ``file:line``, the id when the line gives none)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise BadRecord(f"not JSON ({err.msg}, column {err.colno})") from None
    if isinstance(value, dict):
        did, turns = value.get("id", where), value.get("turns")
        if isinstance(did, bool) or not isinstance(did, (str, int)) or did == "":
            raise BadRecord("'id' is not a non-empty string or an integer")
        if not isinstance(turns, list):
            raise BadRecord("an object without a 'turns' array")
    elif isinstance(value, list):
        did, turns = where, value
    else:
        raise BadRecord(f"a JSON {type(value).__name__}: expected an array of turns or an object with 'turns'")
    return str(did), [json_turn(t, i) for i, t in enumerate(turns)]


def jsonl_file(name: str, f: BinaryIO, tally: Tally, seen: dict[str, str]) -> Iterator[tuple[str, list[Turn]]]:
    """``(id, turns)`` of each dialogue line of one JSON Lines file; malformed lines, dialogues without turns,
    a file without a non-blank line and lines with undecodable bytes are counted in ``tally``. ``seen`` maps the
    ids used so far (in every file) to their ``file:line``."""
    blank = True
    for n, line in enumerate(text_lines(f, bad=tally.replacer(name)), start=1):
        if not line.strip():
            continue
        blank, where = False, f"{name}:{n}"
        try:
            did, turns = json_dialogue(line, where)
            if did in seen:
                raise BadRecord(f"dialogue id '{did}' already used at {seen[did]}")
        except BadRecord as err:
            tally.bad(where, str(err))
            continue
        seen[did] = where
        if not turns:
            tally.empty_file(where, "dialogue without turns", file=name)
            continue
        tally.ok()
        yield did, turns
    if blank:
        tally.empty_file(name)


def read_jsonl(data: DataSettings) -> ReadResult:
    """The dialogues of the JSON Lines file(s) at ``data.raw["path"]``, in file and line order."""
    tally, dialogues, seen, files = Tally(), [], {}, 0
    for name, f in raw_files(data, JSONL_FILE, "*.jsonl / *.ndjson"):
        files += 1
        for did, turns in jsonl_file(name, f, tally, seen):
            dialogues.append(Dialogue(did, merge_speaker_runs(turns)))
    notes = {"format": "jsonl", "files_read": files, "dialogues_read": len(dialogues)}
    return finish(tally, dialogues, data, notes)


# ---------------------------------------------------------------------------------------------- CSV / TSV


def csv_columns(name: str, header: list[str], options: dict[str, Any], dataset: str) -> list[int | None]:
    """Indices of the id, text and speaker columns (speaker None when unset) in ``header``; one line naming the
    file and the config key when a configured column is absent."""
    header = [h.lstrip("\ufeff").strip() for h in header]
    out: list[int | None] = []
    for key in ("id_column", "text_column", "speaker_column"):
        column = options[key]
        if column is not None and column not in header:
            # a header read as one field holding another separator: the delimiter is what is wrong, not the name
            other = next((c for c in ",;\t|" if len(header) == 1 and c in header[0]), None)
            fix = (f"the header is one field: if the file is separated by {other!r}, set "
                   f"datasets.{dataset}.csv.delimiter" if other
                   else f"name the column in datasets.{dataset}.csv.{key}")
            raise RawInputError(f"{name}:1: no column '{column}' in the header {header}; {fix}")
        out.append(None if column is None else header.index(column))
    return out


def csv_rows(name: str, f: BinaryIO, tally: Tally, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank row of one CSV file, the header first; rows the csv module
    cannot parse (strict quoting) are counted malformed. The line number is the row's last line; a row that cannot
    be parsed is named by its first line, where a quote that is never closed opened (the row runs to the end of
    the file)."""
    rows = csv.reader(decoded_lines(f, tally.replacer(name)), delimiter=delimiter, strict=True)
    while True:
        first = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as err:
            runs = f"; the row runs from line {first} to line {rows.line_num}" if rows.line_num > first else ""
            tally.bad(f"{name}:{first}", f"not readable as CSV ({err}{runs})")
            continue
        if row:
            yield rows.line_num, row


def csv_file(name: str, f: BinaryIO, tally: Tally, data: DataSettings,
             dialogues: dict[str, list[Turn]]) -> set[str]:
    """Add one CSV / TSV file's rows to ``dialogues`` (id -> turns, in row order); return the ids whose rows
    were not together. Malformed rows, an empty file and lines with undecodable bytes are counted in ``tally``."""
    options = {**CSV_FORMAT, **data.csv}
    delimiter = options["delimiter"] or ("\t" if TSV_FILE.search(name) else ",")
    rows = csv_rows(name, f, tally, delimiter)
    header = next(rows, None)
    if header is None:
        tally.empty_file(name)
        return set()
    n_fields, (id_at, text_at, speaker_at) = len(header[1]), csv_columns(name, header[1], options, data.name)
    interleaved, last, n_rows = set(), None, 0
    for n, row in rows:
        n_rows += 1
        if len(row) != n_fields:
            tally.bad(f"{name}:{n}", f"{len(row)} fields, expected {n_fields} (delimiter {delimiter!r})")
            continue
        did = row[id_at].strip()
        if not did:
            tally.bad(f"{name}:{n}", f"empty {options['id_column']}")
            continue
        tally.ok()
        if did != last and did in dialogues:
            interleaved.add(did)
        dialogues.setdefault(did, []).append((None if speaker_at is None else row[speaker_at], row[text_at]))
        last = did
    if not n_rows:
        tally.empty_file(name, "no row under the header")
    return interleaved


def read_csv(data: DataSettings) -> ReadResult:
    """The dialogues of the CSV / TSV file(s) at ``data.raw["path"]``, in order of their first row."""
    tally, by_id, interleaved, files = Tally(), {}, set(), 0
    for name, f in raw_files(data, CSV_FILE, "*.csv / *.tsv"):
        files += 1
        interleaved |= csv_file(name, f, tally, data, by_id)
    dialogues = [Dialogue(did, merge_speaker_runs(turns)) for did, turns in by_id.items()]
    notes = {"format": "csv", "files_read": files, "dialogues_read": len(dialogues),
             "dialogues_with_rows_apart": len(interleaved)}
    return finish(tally, dialogues, data, notes)


# ---------------------------------------------------------------------------------------------- split


def held_out_counts(split: dict[str, Any], usable: int) -> dict[str, int]:
    """``valid_dialogues`` and ``test_dialogues`` as counts: a fraction below 1 of ``usable`` dialogues, rounded,
    at least 1; a count as it is."""
    return {k: max(1, round(split[k] * usable)) if split[k] < 1 else int(split[k]) for k in HELD_OUT}


def finish(tally: Tally, dialogues: list[Dialogue], data: DataSettings, notes: dict[str, Any]) -> ReadResult:
    """The ``ReadResult``: no split when the held-out sizes are counts (preprocessing splits), else the split
    of the fractions resolved to counts over the dialogues that hold a pair after normalisation."""
    split = None
    if any(data.split[k] < 1 for k in HELD_OUT):
        # too many malformed records is the better reason to stop than too few dialogues for the split
        check_share(tally.result(dialogues), data.malformed_max_share, source(data))
        dropped: Counter = Counter()
        usable = [d.id for d in normalized_dialogues(dialogues, dropped)]
        counts = held_out_counts(data.split, len(usable))
        split = split_ids(usable, {**data.split, **counts}, data.seed, source(data), f"datasets.{data.name}.split",
                          few_pairs_note(dialogues, dropped["empty_utterances"]))
        notes.update({"usable_dialogues": len(usable), **{f"split_{k}": v for k, v in counts.items()}})
    return tally.result(dialogues, split=split, notes=notes)


READERS: dict[str, Callable[[DataSettings], ReadResult]] = {"jsonl": read_jsonl, "csv": read_csv}


def read(data: DataSettings) -> ReadResult:
    """``read_jsonl`` or ``read_csv``, as ``data.reader`` says."""
    return READERS[data.reader](data)
