"""Uniform access to the files of a raw corpus, whatever container it comes in.

A raw corpus path may be a folder, a ``.zip``, a ``.tar`` / ``.tar.gz`` / ``.tgz`` archive, or a single (optionally
gzipped) file. Members are named by their path inside the container with ``/`` separators (a folder's files relative
to the folder, a single file by its base name). A member whose name ends in ``.gz`` is decompressed on the fly; its
name keeps the suffix, so a reader can match ``x.xml`` and ``x.xml.gz`` with one pattern.

Archives are streamed: a tar.gz is read once, front to back, and a reader that stops early stops the decompression.
A truncated or corrupt container raises ``CorruptArchive`` and a broken gzip member ``CorruptMember``, each in one
line naming the corpus file and the member. ``Tally`` is the readers' shared bookkeeping of records read and of
every record dropped (malformed, empty) or altered (undecodable bytes replaced), per file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from negtrain_core.data.raw import RawInputError
from negtrain_core.data.readers import Dialogue, ReadResult

Keep = Callable[[str], bool]


def _keep_all(name: str) -> bool:
    return True


class CorruptArchive(RawInputError):
    """A raw corpus archive that cannot be read to the end (truncated download, bad CRC), in one line."""


class CorruptMember(RawInputError):
    """A gzipped member (or file) of a raw corpus that does not decompress, in one line."""


CONTAINER_ERRORS = (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile)
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


@contextlib.contextmanager
def corrupt_errors(path: str | Path, member: str | None = None) -> Iterator[None]:
    """Turn container and gzip errors raised inside into ``CorruptArchive`` / ``CorruptMember`` naming the files."""
    where = f"{path}" + (f" (member {member})" if member else "")
    try:
        yield
    except CONTAINER_ERRORS as err:
        raise CorruptArchive(f"{where}: truncated or corrupt archive ({type(err).__name__}: {err}); "
                             f"download it again") from err
    except GZIP_ERRORS as err:
        # no gzip header at all: a file named .gz that was never compressed, rather than a broken one
        hint = ("; if it is not compressed, drop the .gz from its name" if str(err).startswith("Not a gzipped file")
                else "; download or compress it again")
        raise CorruptMember(f"{where}: not a readable gzip file ({type(err).__name__}: {err}){hint}") from err


class _Guarded(io.RawIOBase):
    """A member's byte stream whose container and gzip errors name the corpus file and the member."""

    def __init__(self, f: BinaryIO, path: str | Path, member: str) -> None:
        self._f, self._path, self._member = f, path, member

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        with corrupt_errors(self._path, self._member):
            data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)


def guarded(f: BinaryIO, path: str | Path, member: str) -> BinaryIO:
    """``f`` buffered, with read errors turned into one line naming ``path`` and ``member`` (see ``corrupt_errors``)."""
    return io.BufferedReader(_Guarded(f, path, member), buffer_size=1 << 20)  # type: ignore[return-value]


def kind(path: str | Path) -> str:
    """``"folder"``, ``"zip"``, ``"tar"`` or ``"file"`` (a ``.zip`` that is not a zip file is ``"zip"``, and fails
    on opening with ``CorruptArchive``)."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if zipfile.is_zipfile(path) or path.name.endswith(".zip"):
        return "zip"
    if path.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return "file"


def _maybe_gunzip(name: str, f: BinaryIO) -> BinaryIO:
    return gzip.GzipFile(fileobj=f, mode="rb") if name.endswith(".gz") else f  # type: ignore[return-value]


def iter_members(path: str | Path, keep: Keep = _keep_all) -> Iterator[tuple[str, BinaryIO]]:
    """Yield ``(name, binary file)`` for each regular file whose name ``keep`` accepts, in container order.

    Container order: tar and zip in archive order, a folder in sorted path order. The file object is only valid
    until the next item is requested (tar members are streamed). A truncated or corrupt container raises
    ``CorruptArchive``, a member that is a broken gzip ``CorruptMember``, both naming ``path`` and the member.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"raw input not found: {path}")
    members = {"folder": _folder_members, "zip": _zip_members, "tar": _tar_members}.get(kind(path), _file_member)
    with corrupt_errors(path):
        for name, f in members(path, keep):
            yield name, guarded(_maybe_gunzip(name, f), path, name)


def _folder_members(path: Path, keep: Keep) -> Iterator[tuple[str, BinaryIO]]:
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        name = p.relative_to(path).as_posix()
        if keep(name):
            with open(p, "rb") as f:
                yield name, f


def _zip_members(path: Path, keep: Keep) -> Iterator[tuple[str, BinaryIO]]:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.is_dir() and keep(info.filename):
                with z.open(info) as f:
                    yield info.filename, f  # type: ignore[misc]


def _tar_members(path: Path, keep: Keep) -> Iterator[tuple[str, BinaryIO]]:
    with tarfile.open(path, mode="r|*") as t:
        for m in t:
            if m.isfile() and keep(m.name.removeprefix("./")):
                f = t.extractfile(m)
                assert f is not None
                yield m.name.removeprefix("./"), f  # type: ignore[misc]
        _check_stream_end(t)


def _check_stream_end(t: tarfile.TarFile) -> None:
    """Raise ``tarfile.ReadError`` unless a streamed, compressed tar's compressed data ended with its end marker.

    In stream mode tarfile takes a header cut short by the end of the data for the end of the archive, so a
    download truncated near a member boundary would otherwise read as a smaller, whole archive. Only reached when
    every member was read (a reader that stops early closes the generator before this)."""
    stream = t.fileobj
    while stream.read(1 << 20):                    # what follows the archive's last block (the record padding)
        pass
    decompressor = getattr(stream, "cmp", None)    # zlib / bz2 / lzma decompressor; None for a plain tar
    if decompressor is not None and not getattr(decompressor, "eof", True):
        raise tarfile.ReadError("the compressed data ends before its end marker")


def _file_member(path: Path, keep: Keep) -> Iterator[tuple[str, BinaryIO]]:
    if keep(path.name):
        with open(path, "rb") as f:
            yield path.name, f


def member_names(path: str | Path, keep: Keep = _keep_all) -> list[str]:
    """Names of the regular files ``iter_members`` would yield, without reading their contents (except for tar)."""
    path = Path(path)
    k = kind(path) if path.exists() else "missing"
    with corrupt_errors(path):
        if k == "zip":
            with zipfile.ZipFile(path) as z:
                return [i.filename for i in z.infolist() if not i.is_dir() and keep(i.filename)]
        if k == "tar":
            with tarfile.open(path, mode="r|*") as t:
                names = [m.name.removeprefix("./") for m in t if m.isfile() and keep(m.name.removeprefix("./"))]
                _check_stream_end(t)
                return names
    return [name for name, _ in iter_members(path, keep)]


def decoded_lines(f: Iterable[bytes], bad: Callable[[int], None] | None = None,
                  encoding: str = "utf-8") -> Iterator[str]:
    """Each binary line of ``f`` decoded, line end kept; bytes that do not decode are replaced (U+FFFD) and
    ``bad(line number)`` (1-based) is called once for each such line, so that no replacement goes uncounted."""
    for n, raw in enumerate(f, start=1):
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError:
            if bad is not None:
                bad(n)
            yield raw.decode(encoding, errors="replace")


def text_lines(f: BinaryIO, encoding: str = "utf-8", bad: Callable[[int], None] | None = None) -> Iterator[str]:
    """Lines of a binary file split on ``\\n`` only (a stray ``\\r`` never starts a line), without the line end.

    A trailing ``\\r`` (CRLF files) is removed; a ``\\r`` inside a line becomes a space. A UTF-8 byte-order mark at
    the start is dropped. Bytes that do not decode are replaced (U+FFFD) and reported to ``bad`` (``decoded_lines``).
    """
    first = True
    for line in decoded_lines(f, bad, encoding):
        line = line.rstrip("\n")
        if line.endswith("\r"):
            line = line[:-1]
        if first:
            line, first = line.removeprefix("\ufeff"), False
        yield line.replace("\r", " ")


MAX_EXAMPLES = 5


def _file_of(where: str) -> str:
    """The file part of ``"file:line"`` (``where`` itself when it ends in no line number)."""
    head, _, tail = where.rpartition(":")
    return head if head and tail.isdigit() else where


@dataclass
class Tally:
    """Raw records read, and every record dropped or altered, per file, with the first few as ``"where: reason"``.

    records: raw records seen; malformed: dropped as malformed; empty: files or conversations that hold no record
    (each also one record); bad_bytes: records kept with undecodable bytes replaced. files: per file with a
    problem, the count of each kind. See ``ReadResult``.
    """

    records: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)
    bad_bytes: int = 0
    empty: int = 0
    byte_examples: list[str] = field(default_factory=list)
    files: dict[str, dict[str, int]] = field(default_factory=dict)

    def _count(self, file: str, kind: str) -> None:
        counts = self.files.setdefault(file, {})
        counts[kind] = counts.get(kind, 0) + 1

    def ok(self, n: int = 1) -> None:
        self.records += n

    def bad(self, where: str, reason: str, file: str | None = None) -> None:
        """One malformed record at ``where`` ("file:line"), dropped."""
        self.records += 1
        self.malformed += 1
        self._count(file or _file_of(where), "malformed")
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {reason}")

    def empty_file(self, where: str, what: str = "empty file", file: str | None = None) -> None:
        """A file or conversation (at ``where``) without a single record: one record, dropped."""
        self.records += 1
        self.empty += 1
        self._count(file or where, "empty")
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{where}: {what}")

    def replaced(self, file: str, line: int) -> None:
        """One record of ``file`` (at ``line``) kept with bytes that are not UTF-8 replaced by U+FFFD."""
        self.bad_bytes += 1
        self._count(file, "bad_bytes")
        if len(self.byte_examples) < MAX_EXAMPLES:
            self.byte_examples.append(f"{file}:{line}: bytes that are not UTF-8 replaced")

    def replacer(self, file: str) -> Callable[[int], None]:
        """``replaced`` for ``file``, as the ``bad`` callback of ``text_lines`` / ``decoded_lines``."""
        return lambda line: self.replaced(file, line)

    def result(self, dialogues: list[Dialogue], split: dict[str, str] | None = None,
               notes: dict[str, Any] | None = None) -> ReadResult:
        """A ``ReadResult`` carrying these counts."""
        return ReadResult(dialogues, split, self.records, self.malformed, list(self.examples), dict(notes or {}),
                          self.bad_bytes, self.empty, list(self.byte_examples),
                          {f: dict(c) for f, c in self.files.items()})
