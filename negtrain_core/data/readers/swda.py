"""Switchboard (SwDA) readers, the authors' split, and agreement with the authors' processed files.

Two raw formats:

- ``swda_markup``: Potts' SwDA csv release (``swda.zip`` of cgpotts/swda: ``swda/sw00utt/sw_0001_4325.utt.csv``; a
  tar.gz of it; or an unpacked folder), read in place (zip/tar streaming, nothing extracted). The disfluency markup
  is filtered the way He & Glass's processed files show it (``strip_markup``, ``utterances``); every rule below was
  chosen by measuring agreement with their processed valid/test file, see ``tests/test_swda.py``.
- ``swda_plain``: NathanDuran's ``speaker|text|DA-tag`` files (markup already gone, ``+`` rows already joined);
  fillers, discourse and conjunction markers are removed by word lists, an approximation (``strip_plain``).

The authors' processed file (``data.split["authors_file"]``: one dialogue a line, utterances ending in ``<eou>``)
fixes the split: each of its lines is matched to one conversation by token-bigram containment; the first
``valid_dialogues`` lines are valid, the last ``test_dialogues`` are test, every other conversation is train.
The match needs clean input, so it runs only after the malformed-record check (``readers.check_share``), and its
errors name the authors' file and line.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import Dialogue, ReadResult, check_share
from negtrain_core.data.readers.archive import Tally, corrupt_errors
from negtrain_core.data.text import normalize

MARKUP_MEMBER = re.compile(r"(?:^|/)sw\d+utt/sw_\d+_\d+\.utt\.csv$")   # not macOS '._sw_...' shadows
PLAIN_MEMBER = re.compile(r"(?:^|/)(?:train|val|test)/(\d+)\.txt$")
HEADER = ("swda_filename", "ptb_basename", "conversation_no", "transcript_index", "act_tag", "caller",
          "utterance_index", "subutterance_index", "text")
FIELDS_OK = (10, 11, 12)           # 10/11: rows without a treebank alignment (no trees / ptb_treenumbers)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
AUTHORS_SOURCE = "data/swda_dialogue/process_oneline/test/test.txt of cloudygoose/negativetraining_acl2020"
MIN_CONTAINMENT = 0.5              # an authors' dialogue must share this share of its token bigrams with its match
MIN_MARGIN = 0.2                   # ... and beat the second-best conversation by this much

# Markup filtering, in this order (each step measured against the authors' processed files):
_MARKUP_STEPS = (
    (re.compile(r"\*\[\[.*?\]\]"), " "),          # transcriber notes *[[...]]: not speech (the authors keep them)
    (re.compile(r"<<[^>]*>>|<[^<>]*>"), " "),     # non-verbal events <laughter>, <<pause>>, </noise>
    (re.compile(r"\(\(.*\)\)"), " "),             # uncertain transcription: greedy, first (( to last )), as theirs
    (re.compile(r"\[[^\]]*?\+"), " "),            # reparandum: a '[' up to the next '+' with no ']' between
    (re.compile(r"\{[FDCEA].*?\}"), " "),         # {F filler} {D discourse} {C conjunction} {E edit} {A aside}
    (re.compile(r"[\[\]+/#{}]"), " "),            # leftover brackets, '+', slash units, overlap marks
    (re.compile(r"\b([A-Z]) -([a-z])"), r"\1\2"),   # suffix of a spelled acronym: 'A -s' -> 'As', 'T I -er' -> 'T Ier'
    (re.compile(r"(^|\s)-+(?=\s|$)"), " "),       # interruption points '-', '--'
)
_HAS_WORD = re.compile(r"[A-Za-z0-9]")

# Word lists for the plain format (the markup's most frequent {F}, {D}, {E} and leading {C} contents).
_FILLERS = r"uh|um|huh|oh|ooh|hm|eh|ah"
_MARKERS = r"you know|i mean|well|like|see|actually|anyway|now|so"
_PLAIN_STEPS = (
    (re.compile(r"\b((?:[\w'-]+ ){0,2}[\w'-]+), (?=\1\b)", re.I), ""),   # repeats 'do you, do you' -> 'do you'
    (re.compile(rf"(?<![\w'-])(?:{_FILLERS})(?![\w'-])[,.]?", re.I), " "),
    (re.compile(rf"(^|[,.?!]\s*)(?:{_MARKERS})\s*(,|$)", re.I), r"\1"),
    (re.compile(r"^\W*(?:and then|and so|but then|and|but|so|or|because)\b,?", re.I), " "),
)


@dataclass(frozen=True)
class Row:
    """The fields of one SwDA csv row that the reader uses."""

    transcript_index: int
    act_tag: str
    caller: str
    text: str


# ----------------------------------------------------------------------------------------------- archive access

def members(path: Path, pattern: re.Pattern[str]) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, binary stream) of each file under ``path`` (a .zip, a .tar[.gz] or a folder) whose name matches.

    Archives are read in place (tar in streaming mode); names are yielded in sorted order for zip and folder,
    in archive order for tar (the shared tar.gz is sorted). Each member is read whole (they are small), so a
    truncated or corrupt archive raises ``archive.CorruptArchive`` naming ``path`` here.
    """
    if not path.exists():
        raise FileNotFoundError(f"SwDA raw input not found: {path}")
    with corrupt_errors(path):
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if pattern.search(p.as_posix())):
                yield file.relative_to(path).as_posix(), io.BytesIO(file.read_bytes())
        elif zipfile.is_zipfile(path) or path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                for name in sorted(n for n in zf.namelist() if pattern.search(n)):
                    yield name, io.BytesIO(zf.read(name))
        elif tarfile.is_tarfile(path) or path.name.endswith(TAR_SUFFIXES):
            with tarfile.open(path, "r|*") as tf:
                for member in tf:
                    if member.isfile() and pattern.search(member.name):
                        yield member.name, io.BytesIO(tf.extractfile(member).read())   # one small member in memory
        else:
            raise ValueError(f"SwDA raw input {path} is not a folder, a .zip or a .tar(.gz)")


def undecodable_lines(data: bytes) -> list[int]:
    """1-based numbers of the ``\\n``-separated lines of ``data`` that are not UTF-8 (``\\n`` never occurs inside
    a UTF-8 multi-byte character, so splitting first is safe)."""
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError:
        pass
    out = []
    for n, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            out.append(n)
    return out


def _text(name: str, stream: IO[bytes], tally: Tally) -> io.TextIOWrapper:
    """The member as text (bytes that are not UTF-8 replaced by U+FFFD, each such line counted in ``tally``)."""
    data = stream.read()
    for line in undecodable_lines(data):
        tally.replaced(name, line)
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")


def read(data: DataSettings) -> ReadResult:
    """The reader named by ``data.reader``: ``swda_plain``, else ``swda_markup`` (the registry's contract)."""
    return read_swda_plain(data) if data.reader == "swda_plain" else read_swda_markup(data)


# ----------------------------------------------------------------------------------------------- markup format

def parse_rows(name: str, stream: IO[bytes], tally: Tally) -> tuple[str | None, list[Row]]:
    """(conversation_no, rows in transcript order) of one ``*.utt.csv``; bad rows, an empty file or one without
    rows, and lines with undecodable bytes go to ``tally``."""
    reader = csv.reader(_text(name, stream, tally))
    header = next(reader, None)
    if header is None:
        tally.empty_file(name)
        return None, []
    if tuple(header[: len(HEADER)]) != HEADER:
        tally.bad(f"{name}:1", "not a SwDA utt.csv header")
        return None, []
    conversation, rows, seen = None, [], False
    try:
        for fields in reader:
            seen, where = True, f"{name}:{reader.line_num}"
            if len(fields) not in FIELDS_OK:
                tally.bad(where, f"{len(fields)} fields, expected {'/'.join(map(str, FIELDS_OK))}")
            elif not fields[3].isdigit() or (conversation or fields[2]) != fields[2]:
                tally.bad(where, f"bad transcript_index {fields[3]!r} or conversation_no {fields[2]!r}")
            else:
                tally.ok()
                conversation = fields[2]
                rows.append(Row(int(fields[3]), fields[4], fields[5], fields[8]))
    except csv.Error as err:                       # unparsable from here on (e.g. a NUL byte): the rest is lost
        seen = True
        tally.bad(f"{name}:{reader.line_num}", f"csv error, rest of file skipped: {err}")
    if not seen:
        tally.empty_file(name, "header without rows")
    return conversation, sorted(rows, key=lambda r: r.transcript_index)


def strip_markup(text: str) -> str:
    """The words of one SwDA ``text`` field with the LDC disfluency markup filtered out as the authors did.

    ``[ X + Y ]`` keeps Y, but nested reparanda are resolved once, left to right, so ``[ [ that, + that, ] + that ]``
    gives ``that, that`` (the authors' files say ``that that``); fillers, discourse/conjunction markers, edit terms
    and asides are removed with their words; uncertain ``(( ... ))`` spans too.
    """
    for pattern, repl in _MARKUP_STEPS:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def utterances(rows: Iterable[Row]) -> list[str]:
    """One conversation's utterances: one per SwDA row, as the authors' processed files show.

    Rows whose act tag has ``@`` (segmentation problems) are dropped; rows with no word left are dropped;
    a ``+`` continuation row is appended to its caller's previous kept utterance (the other caller's
    utterances in between keep their places); consecutive utterances of one caller are NOT merged.
    """
    units: list[str] = []
    last: dict[str, int] = {}
    for row in rows:
        text = strip_markup(row.text)
        if "@" in row.act_tag or not _HAS_WORD.search(text):
            continue
        if row.act_tag.startswith("+") and row.caller in last:
            units[last[row.caller]] += " " + text
        else:
            last[row.caller] = len(units)
            units.append(text)
    return units


def markup_dialogues(path: Path, tally: Tally) -> list[Dialogue]:
    """Every conversation under ``path`` as a ``Dialogue`` (id = conversation_no), in file-name order."""
    found: dict[str, tuple[str, Dialogue]] = {}
    for name, stream in members(path, MARKUP_MEMBER):
        conversation, rows = parse_rows(name, stream, tally)
        if conversation is None:
            continue
        if conversation in found:
            raise ValueError(f"{path}: {name}: conversation {conversation} is also in {found[conversation][0]}")
        found[conversation] = (name, Dialogue(conversation, tuple(utterances(rows))))
    return [d for _, d in sorted(found.values(), key=lambda item: Path(item[0]).name)]


def read_swda_markup(data: DataSettings) -> ReadResult:
    """Read Potts' SwDA csv release at ``data.raw['path']`` and attach the authors' split and agreement."""
    tally = Tally()
    dialogues = markup_dialogues(Path(data.raw["path"]), tally)
    return _result(dialogues, data, tally)


# ----------------------------------------------------------------------------------------------- plain format

def strip_plain(text: str) -> str:
    """NathanDuran's text (markup already removed, filler words kept) with fillers and markers removed by word lists.

    An approximation: reparanda are gone from the markup, so only a phrase of up to 3 words repeated after a comma
    (``do you, do you think``) is collapsed.
    """
    for pattern, repl in _PLAIN_STEPS:
        text = pattern.sub(repl, text)
    return " ".join(text.split())


def parse_plain(name: str, stream: IO[bytes], tally: Tally) -> list[str]:
    """Utterances of one ``<conv>.txt`` (``speaker|text|DA-tag`` lines); bad lines, an empty file and lines with
    undecodable bytes go to ``tally``."""
    units, seen = [], False
    for line, raw in enumerate(_text(name, stream, tally), start=1):
        raw = raw.rstrip("\r\n")
        if not raw:
            continue
        seen = True
        fields = raw.split("|")
        if len(fields) < 3 or not fields[0]:
            tally.bad(f"{name}:{line}", f"{len(fields)} '|'-separated fields, expected speaker|text|tag")
            continue
        tally.ok()
        text = strip_plain("|".join(fields[1:-1]))
        if _HAS_WORD.search(text):
            units.append(text)
    if not seen:
        tally.empty_file(name)
    return units


def read_swda_plain(data: DataSettings) -> ReadResult:
    """Read NathanDuran's SwDA text files at ``data.raw['path']`` and attach the authors' split and agreement."""
    tally = Tally()
    found = {}
    for name, stream in members(Path(data.raw["path"]), PLAIN_MEMBER):
        found[PLAIN_MEMBER.search(name).group(1)] = parse_plain(name, stream, tally)
    dialogues = [Dialogue(c, tuple(found[c])) for c in sorted(found, key=int)]
    return _result(dialogues, data, tally)


# ----------------------------------------------------------------------------------------------- authors' split

def read_authors_file(path: str | Path | None) -> list[list[str]]:
    """The authors' processed dialogues: one a line, each utterance followed by ``<eou>``; (dialogues, utterances)."""
    if path is None:
        raise ValueError(f"split.authors_file is not set: the SwDA readers take the split from {AUTHORS_SOURCE}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"authors' processed SwDA file not found: {path} (expected {AUTHORS_SOURCE})")
    data = path.read_bytes()
    bad = undecodable_lines(data)
    if bad:
        raise ValueError(f"{path}:{bad[0]}: the authors' processed SwDA file holds bytes that are not UTF-8 "
                         f"({len(bad)} lines)")
    lines = [line for line in data.decode("utf-8").splitlines() if line.strip()]
    return [[u.strip() for u in line.split("<eou>") if u.strip()] for line in lines]


def _bigrams(utts: Iterable[str]) -> set[tuple[str, str]]:
    tokens = " ".join(utts).split()
    return set(zip(tokens, tokens[1:]))


def match_dialogues(authors: list[list[str]], ours: dict[str, list[str]], source: str | Path) -> list[str]:
    """For each authors' dialogue, the id of the one conversation of ``ours`` (normalised utterances) it comes from.

    Score: the share of the authors' token bigrams found in the conversation. The best must reach
    ``MIN_CONTAINMENT``, beat the second best by ``MIN_MARGIN``, and no conversation may be matched twice.
    Errors name ``source`` (the authors' file) and its line.
    """
    index: dict[tuple[str, str], int] = {}     # bigram -> int: int sets intersect ~3x faster than tuple sets
    bags = {cid: {index.setdefault(g, len(index)) for g in _bigrams(utts)} for cid, utts in ours.items()}
    matched: dict[str, int] = {}
    for line, dialogue in enumerate(authors, start=1):
        grams = _bigrams(dialogue)
        theirs, n = {index[g] for g in grams if g in index}, max(len(grams), 1)
        scores = sorted(((len(theirs & bag) / n, cid) for cid, bag in bags.items()), reverse=True)
        (best, cid), (second, other) = scores[0], scores[1] if len(scores) > 1 else (0.0, None)
        if best < MIN_CONTAINMENT or best - second < MIN_MARGIN:
            raise ValueError(f"{source}:{line}: no unique conversation of the corpus matches this dialogue (best "
                             f"{cid} {best:.2f}, second {other} {second:.2f})")
        if cid in matched:
            raise ValueError(f"{source}: lines {matched[cid]} and {line} both match conversation {cid}")
        matched[cid] = line
    return list(matched)


def authors_split(ids: Iterable[str], matched: list[str], valid: int, test: int,
                  source: str | Path) -> dict[str, str]:
    """id -> split: the first ``valid`` matched ids valid, the last ``test`` test, all other ids train."""
    if valid + test != len(matched):
        raise ValueError(f"{source} has {len(matched)} dialogues, but split.valid_dialogues + "
                         f"split.test_dialogues = {valid} + {test}")
    split = {cid: "train" for cid in ids}
    split.update({cid: "valid" for cid in matched[:valid]})
    split.update({cid: "test" for cid in matched[valid:]})
    return split


# ----------------------------------------------------------------------------------------------- agreement

def agreement(ours: list[list[str]], authors: list[list[str]]) -> dict[str, float | int]:
    """How closely our processed dialogues reproduce the authors', dialogue by dialogue (parallel lists).

    Each dialogue is a list of utterances (space-joined tokens). ``token_agreement`` = authors' tokens matched,
    in order, by difflib on the dialogue's whole token sequence / authors' tokens; ``exact_utterance_rate`` =
    authors' utterances matched exactly and in order (difflib on the utterance sequence) / authors' utterances;
    ``token_precision`` = the same matched tokens / our tokens (extra words on our side lower it, not the agreement).
    """
    if len(ours) != len(authors):
        raise ValueError(f"agreement needs parallel lists: {len(ours)} dialogues vs {len(authors)}")
    matched_tokens = exact = 0
    for mine, theirs in zip(ours, authors):
        a, b = " ".join(mine).split(), " ".join(theirs).split()
        matched_tokens += _matched(a, b)
        exact += _matched(mine, theirs)
    n_tokens = sum(len(" ".join(d).split()) for d in authors)
    n_ours = sum(len(" ".join(d).split()) for d in ours)
    n_utts = sum(map(len, authors))
    return {
        "dialogues": len(authors),
        "authors_utterances": n_utts, "our_utterances": sum(map(len, ours)),
        "exact_utterances": exact, "exact_utterance_rate": exact / max(n_utts, 1),
        "authors_tokens": n_tokens, "our_tokens": n_ours,
        "matched_tokens": matched_tokens, "token_agreement": matched_tokens / max(n_tokens, 1),
        "token_precision": matched_tokens / max(n_ours, 1),
    }


def _matched(a: list[str], b: list[str]) -> int:
    return sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())


def _result(dialogues: list[Dialogue], data: DataSettings, tally: Tally) -> ReadResult:
    """ReadResult with the authors' split and the valid/test agreement figures in ``notes``.

    The malformed-record check runs first: a damaged corpus fails on its bad records, not on the split match.
    """
    if not dialogues:
        raise ValueError(f"no SwDA conversations found in {data.raw['path']} (reader {data.reader})")
    result = tally.result(dialogues)
    check_share(result, data.malformed_max_share, data.raw["path"])
    authors_file = data.split["authors_file"]
    authors = read_authors_file(authors_file)
    ours = {d.id: [normalize(u) for u in d.utterances] for d in dialogues}
    matched = match_dialogues(authors, ours, authors_file)
    valid = data.split["valid_dialogues"]
    split = authors_split(list(ours), matched, valid, data.split["test_dialogues"], authors_file)
    notes: dict[str, float | int | list[str]] = {}
    for name, ids, theirs in (("valid", matched[:valid], authors[:valid]), ("test", matched[valid:], authors[valid:])):
        figures = agreement([ours[cid] for cid in ids], theirs)
        notes[f"{name}_conversations"] = list(ids)
        notes[f"authors_{name}_utterances"] = figures["authors_utterances"]
        notes[f"our_{name}_utterances"] = figures["our_utterances"]
        notes[f"authors_{name}_token_agreement"] = round(figures["token_agreement"], 4)
        notes[f"authors_{name}_token_precision"] = round(figures["token_precision"], 4)
        notes[f"authors_{name}_exact_utterance_rate"] = round(figures["exact_utterance_rate"], 4)
    result.split, result.notes = split, notes
    return result
