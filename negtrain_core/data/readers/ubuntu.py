"""Ubuntu readers: the official Ubuntu Dialogue Corpus v1 release, and #ubuntu IRC logs with gold reply links.

``read_udc_v1`` (config ``reader: udc_v1``; Lowe et al. 2015, the corpus of the paper) reads either layout of the
v1 release:

- ``ubuntu_dialogs.tgz``: ``dialogs/<folder>/<n>.tsv``, one message per line, tab-separated
  ``timestamp, sender, recipient, utterance``; the dialogue id is ``<folder>/<n>.tsv``.
- the flattened csv files ``dialogueText*.csv`` (header ``folder,dialogueID,date,from,to,text``, one row per tsv
  line, the rows of one dialogue contiguous), alone, gzipped, in a folder or inside a .tar.gz / .zip.

Consecutive messages of one sender are merged into one turn (texts joined by a space), and each turn is one
utterance. Dialogues keep file order (archive member order; csv row order); the reader stops after
``train + valid + test`` dialogues when ``split.train_dialogues`` is set, and preprocessing takes the first 200k
for training, the next 5k for validation and the next 5k for test, as the paper does (Appendix B).

``read_irc_reply_links`` (config ``reader: irc_reply_links``; the substitute that exists here) reads the
Kummerfeld et al. (2019) disentanglement release: per log, ``<stem>.ascii.txt`` (line i = message i) and
``<stem>.annotation.txt`` (``parent child -`` reply links) in the folders ``train/``, ``dev/``, ``test/``, which
fix the split (dev = valid). Dialogues are rebuilt from the links by ``two_party_dialogues``: see there.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import Dialogue, ReadResult
from negtrain_core.data.readers.archive import Tally, decoded_lines, iter_members, text_lines

UDC_TSV = re.compile(r"(?:^|/)([^/]+)/([^/]+\.tsv)(?:\.gz)?$")
UDC_CSV = re.compile(r"(?:^|/)dialogueText[^/]*\.csv(?:\.gz)?$")
CSV_HEADER = ["folder", "dialogueID", "date", "from", "to", "text"]

IRC_FILE = re.compile(r"(?:^|/)(train|dev|test)/([^/]+)\.(ascii|annotation)\.txt$")
IRC_MESSAGE = re.compile(r"^\[\d\d:\d\d\] <([^>\s]+)> ?(.*)$")
IRC_ACTION = re.compile(r"^\[\d\d:\d\d\]\s+\* (\S+) ?(.*)$")
ADDRESSEE = re.compile(r"^\s*([^\s:,]+)\s*[:,]\s*")
FOLDER_SPLIT = {"train": "train", "dev": "valid", "test": "test"}

Message = tuple[str, str]   # (speaker, text)


def merge_turns(messages: Iterable[Message]) -> tuple[str, ...]:
    """Utterances of a message sequence: runs of one speaker joined by a space."""
    turns: list[list[str]] = []
    last = None
    for speaker, text in messages:
        if turns and speaker == last:
            turns[-1].append(text)
        else:
            turns.append([text])
        last = speaker
    return tuple(" ".join(t) for t in turns)


def dialogue_limit(split: dict) -> int | None:
    """How many dialogues the paper's file-order split uses (None: all of them)."""
    if split.get("train_dialogues") is None:
        return None
    return split["train_dialogues"] + split["valid_dialogues"] + split["test_dialogues"]


# ---------------------------------------------------------------------------------------------- UDC v1


def tsv_messages(name: str, f: BinaryIO, tally: Tally) -> list[Message]:
    """``(sender, utterance)`` of each line of one v1 ``.tsv`` dialogue; a line with < 4 fields is malformed,
    a file without a non-blank line is empty (both counted in ``tally``, as are lines with undecodable bytes)."""
    messages, seen = [], False
    for n, line in enumerate(text_lines(f, bad=tally.replacer(name)), start=1):
        if not line.strip():
            continue
        seen = True
        fields = line.split("\t")
        if len(fields) < 4:
            tally.bad(f"{name}:{n}", f"{len(fields)} tab-separated fields, expected 4")
            continue
        tally.ok()
        messages.append((fields[1], "\t".join(fields[3:])))
    if not seen:
        tally.empty_file(name, "empty dialogue file")
    return messages


def csv_dialogues(name: str, f: BinaryIO, tally: Tally) -> Iterator[tuple[str, list[Message]]]:
    """``(folder/dialogueID, messages)`` of a flattened ``dialogueText*.csv``, in row order.

    Malformed rows: a field count other than 6, or a row of a dialogue whose rows ended earlier (not contiguous).
    An empty file is counted empty; lines with undecodable bytes are counted.
    """
    rows = csv.reader(decoded_lines(f, tally.replacer(name)))   # binary lines keep their ends
    header = next(rows, None)
    if header is None:
        tally.empty_file(name)
        return
    if [h.lstrip("\ufeff") for h in header] != CSV_HEADER:
        raise ValueError(f"{name}:1: header {header} is not the UDC csv header {','.join(CSV_HEADER)}")
    current, messages, done = None, [], set()
    for row in rows:
        where = f"{name}:{rows.line_num}"
        if len(row) != len(CSV_HEADER):
            tally.bad(where, f"{len(row)} fields, expected {len(CSV_HEADER)}")
            continue
        key = f"{row[0]}/{row[1]}"
        if key != current:
            if key in done:
                tally.bad(where, f"row of dialogue {key} after its rows ended (rows not contiguous)")
                continue
            if current is not None:
                yield current, messages
                done.add(current)
            current, messages = key, []
        tally.ok()
        messages.append((row[3], row[5]))
    if current is not None:
        yield current, messages


def udc_dialogues(path: str, tally: Tally) -> Iterator[tuple[str, list[Message]]]:
    """``(dialogue id, messages)`` of a UDC v1 release (tsv files or flattened csv), in file order."""
    found = False
    keep = lambda name: bool(UDC_CSV.search(name) or UDC_TSV.search(name))  # noqa: E731
    for name, f in iter_members(path, keep):
        found = True
        if UDC_CSV.search(name):
            yield from csv_dialogues(name, f, tally)
        else:
            m = UDC_TSV.search(name)
            yield f"{m[1]}/{m[2]}", tsv_messages(name, f, tally)
    if not found:
        raise ValueError(f"{path}: no dialogs/<folder>/<n>.tsv and no dialogueText*.csv inside: not a UDC v1 release")


def read_udc_v1(data: DataSettings) -> ReadResult:
    """Dialogues of the UDC v1 release at ``data.raw["path"]``, turns merged, in file order (split by preprocessing)."""
    tally, dialogues = Tally(), []
    limit = dialogue_limit(data.split)
    for did, messages in udc_dialogues(data.raw["path"], tally):
        dialogues.append(Dialogue(did, merge_turns(messages)))
        if limit is not None and len(dialogues) >= limit:
            break
    notes = {"format": "udc_v1", "dialogues_read": len(dialogues), "stopped_after": limit}
    return tally.result(dialogues, notes=notes)


# ---------------------------------------------------------------------------------------------- IRC reply links


def parse_log_line(line: str) -> Message | None | str:
    """``(nick, text)`` of a message or ``/me`` action line; None for a ``===`` system line; else the line itself."""
    if line.startswith("==="):
        return None
    m = IRC_MESSAGE.match(line) or IRC_ACTION.match(line)
    return (m[1], m[2].strip()) if m else line


def strip_addressee(text: str, nicks: set[str]) -> str:
    """``text`` without a leading ``nick:`` / ``nick,`` when ``nick`` is a speaker of the log (case-insensitive)."""
    m = ADDRESSEE.match(text)
    return text[m.end():] if m and m[1].lower() in nicks else text


def log_messages(name: str, lines: Iterable[str], tally: Tally) -> list[Message | None]:
    """Message i of an ``.ascii.txt`` log (None for system lines and unparsable lines, which are counted malformed).

    Timestamps and ``<nick>`` prefixes are removed, and so is an addressee prefix naming a speaker of the log.
    """
    parsed = [parse_log_line(line) for line in lines]
    nicks = {p[0].lower() for p in parsed if isinstance(p, tuple)}
    out: list[Message | None] = []
    for n, p in enumerate(parsed):
        if isinstance(p, str):
            tally.bad(f"{name}:{n + 1}", f"not a message, action or === system line: {p[:60]!r}")
            out.append(None)
        else:
            tally.ok()
            out.append(None if p is None else (p[0], strip_addressee(p[1], nicks)))
    return out


def reply_links(name: str, lines: Iterable[str], n_messages: int, tally: Tally) -> list[tuple[int, int]]:
    """``(parent, child)`` message indices of an ``.annotation.txt`` (``parent child -``); bad lines are malformed."""
    links = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        ok = len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit()
        if not ok or max(int(fields[0]), int(fields[1])) >= n_messages:
            tally.bad(f"{name}:{n}", f"not 'parent child -' with indices below {n_messages}: {line[:60]!r}")
            continue
        tally.ok()
        links.append((int(fields[0]), int(fields[1])))
    return links


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


def two_party_dialogues(messages: list[Message | None], links: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Message indices of each two-party dialogue rebuilt from reply links, dialogues ordered by first message.

    1. Links between two real messages (not system lines, not self-links) are kept, read as undirected edges.
    2. A link between two messages of the SAME speaker (a message continued over several lines) joins them into
       one block; blocks are closed transitively.
    3. A link between blocks of speakers A != B is a reply edge of the speaker pair {A, B}. A dialogue is a
       connected component of (block, pair) nodes joined by the reply edges of that pair: it follows the reply
       chains between A and B, so it holds only A's and B's messages. A block answered by two people (A asks,
       B and C reply) starts two dialogues, {A, B} and {A, C}, both beginning with A's block.
    4. The dialogue's messages are its blocks' messages in log order; ``merge_turns`` then merges runs of one speaker.
    """
    real = [(a, b) for a, b in links if a != b and messages[a] is not None and messages[b] is not None]
    blocks = _UnionFind()
    for a, b in real:
        if messages[a][0] == messages[b][0]:
            blocks.union(a, b)
    members: dict[int, list[int]] = defaultdict(list)
    for i in {i for link in real for i in link}:
        members[blocks.find(i)].append(i)
    pairs = _UnionFind()
    for a, b in real:
        if messages[a][0] != messages[b][0]:
            pair = frozenset((messages[a][0], messages[b][0]))
            pairs.union((blocks.find(a), pair), (blocks.find(b), pair))
    components: dict = defaultdict(set)
    for node in list(pairs.parent):
        components[pairs.find(node)].update(members[node[0]])
    return sorted((sorted(c) for c in components.values()), key=lambda c: (c[0], c))


def irc_files(path: str, tally: Tally) -> dict[tuple[str, str], dict[str, tuple[str, list[str]]]]:
    """``{(folder, stem): {"ascii": (name, lines), "annotation": (name, lines)}}`` of the train/dev/test logs under
    ``path``; lines with undecodable bytes and files without a non-blank line are counted in ``tally``."""
    files: dict = defaultdict(dict)
    for name, f in iter_members(path, lambda n: bool(IRC_FILE.search(n))):
        m = IRC_FILE.search(name)
        lines = list(text_lines(f, bad=tally.replacer(name)))
        if not any(line.strip() for line in lines):
            tally.empty_file(name)
        files[(m[1], m[2])][m[3]] = (name, lines)
    if not files:
        raise ValueError(f"{path}: no train|dev|test/<log>.ascii.txt files inside: not the Kummerfeld 2019 release")
    return files


def read_irc_reply_links(data: DataSettings) -> ReadResult:
    """Two-party dialogues of the #ubuntu reply-link corpus at ``data.raw["path"]``; the split is its folders."""
    tally, dialogues, split = Tally(), [], {}
    counts: dict[str, int] = defaultdict(int)
    for (folder, stem), parts in sorted(irc_files(data.raw["path"], tally).items()):
        if set(parts) != {"ascii", "annotation"}:
            tally.bad(f"{folder}/{stem}", f"has only {', '.join(parts)}: log and annotation needed")
            continue
        messages = log_messages(*parts["ascii"], tally)
        links = reply_links(*parts["annotation"], len(messages), tally)
        for ids in two_party_dialogues(messages, links):
            did = f"{folder}/{stem}:{ids[0]}:{'+'.join(sorted({messages[i][0] for i in ids}))}"
            dialogues.append(Dialogue(did, merge_turns(messages[i] for i in ids)))
            split[did] = FOLDER_SPLIT[folder]
            counts[f"{FOLDER_SPLIT[folder]}_dialogues"] += 1
        counts["links"] += len(links)
    notes = {"format": "irc_reply_links", "rebuilt": "two-party reply chains", **counts}
    return tally.result(dialogues, split=split, notes=notes)


def read(data: DataSettings) -> ReadResult:
    """``read_udc_v1`` or ``read_irc_reply_links``, as ``data.reader`` says."""
    return read_irc_reply_links(data) if data.reader == "irc_reply_links" else read_udc_v1(data)
