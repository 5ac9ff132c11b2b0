"""Uniform access to the files of a raw corpus, whatever container it comes in.

A raw corpus path may be a folder, a ``.zip``, a ``.tar`` / ``.tar.gz`` / ``.tgz`` archive, or a single (optionally
gzipped) file. Members are named by their path inside the container with ``/`` separators (a folder's files relative
to the folder, a single file by its base name). A member whose name ends in ``.gz`` is decompressed on the fly; its
name keeps the suffix, so a reader can match ``x.xml`` and ``x.xml.gz`` with one pattern.

Archives are streamed: a tar.gz is read once, front to back, and a reader that stops early stops the decompression.
``Tally`` is the readers' shared bookkeeping of records read and malformed records rejected.
"""

from __future__ import annotations

import gzip
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from negtrain_core.data.readers import Dialogue, ReadResult

Keep = Callable[[str], bool]


def _keep_all(name: str) -> bool:
    return True


def kind(path: str | Path) -> str:
    """``"folder"``, ``"zip"``, ``"tar"`` or ``"file"``."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if zipfile.is_zipfile(path):
        return "zip"
    if path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return "file"


def _maybe_gunzip(name: str, f: BinaryIO) -> BinaryIO:
    return gzip.GzipFile(fileobj=f, mode="rb") if name.endswith(".gz") else f  # type: ignore[return-value]


def iter_members(path: str | Path, keep: Keep = _keep_all) -> Iterator[tuple[str, BinaryIO]]:
    """Yield ``(name, binary file)`` for each regular file whose name ``keep`` accepts, in container order.

    Container order: tar and zip in archive order, a folder in sorted path order. The file object is only valid
    until the next item is requested (tar members are streamed).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"raw input not found: {path}")
    k = kind(path)
    if k == "folder":
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            name = p.relative_to(path).as_posix()
            if keep(name):
                with open(p, "rb") as f:
                    yield name, _maybe_gunzip(name, f)
    elif k == "zip":
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir() and keep(info.filename):
                    with z.open(info) as f:
                        yield info.filename, _maybe_gunzip(info.filename, f)  # type: ignore[arg-type]
    elif k == "tar":
        with tarfile.open(path, mode="r|*") as t:
            for m in t:
                if m.isfile() and keep(m.name.removeprefix("./")):
                    f = t.extractfile(m)
                    assert f is not None
                    yield m.name.removeprefix("./"), _maybe_gunzip(m.name, f)
    else:
        if keep(path.name):
            with open(path, "rb") as f:
                yield path.name, _maybe_gunzip(path.name, f)


def member_names(path: str | Path, keep: Keep = _keep_all) -> list[str]:
    """Names of the regular files ``iter_members`` would yield, without reading their contents (except for tar)."""
    path = Path(path)
    k = kind(path) if path.exists() else "missing"
    if k == "zip":
        with zipfile.ZipFile(path) as z:
            return [i.filename for i in z.infolist() if not i.is_dir() and keep(i.filename)]
    if k == "tar":
        with tarfile.open(path, mode="r|*") as t:
            return [m.name.removeprefix("./") for m in t if m.isfile() and keep(m.name.removeprefix("./"))]
    return [name for name, _ in iter_members(path, keep)]


def text_lines(f: BinaryIO, encoding: str = "utf-8") -> Iterator[str]:
    """Lines of a binary file split on ``\\n`` only (a stray ``\\r`` never starts a line), without the line end.

    A trailing ``\\r`` (CRLF files) is removed; a ``\\r`` inside a line becomes a space. A UTF-8 byte-order mark at
    the start is dropped. Bytes that do not decode are replaced (U+FFFD).
    """
    first = True
    for raw in f:
        line = raw.decode(encoding, errors="replace").rstrip("\n")
        if line.endswith("\r"):
            line = line[:-1]
        if first:
            line, first = line.removeprefix("\ufeff"), False
        yield line.replace("\r", " ")


MAX_EXAMPLES = 5


@dataclass
class Tally:
    """Counts of raw records read and rejected, with the first few rejects as ``"where: reason"``."""

    records: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def ok(self, n: int = 1) -> None:
        self.records += n

    def bad(self, where: str, reason: str) -> None:
        self.records += 1
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def result(self, dialogues: list[Dialogue], split: dict[str, str] | None = None,
               notes: dict[str, Any] | None = None) -> ReadResult:
        """A ``ReadResult`` carrying these counts."""
        return ReadResult(dialogues, split, self.records, self.malformed, list(self.examples), dict(notes or {}))
