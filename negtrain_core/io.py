"""Atomic file output, and the check that an artifact read back is whole.

Output: write to a temporary name in the same folder (``.<name>.<random>.tmp``), then rename. A killed job never
leaves a half-written table, vocabulary or checkpoint under its final name; what a ``kill -9`` can leave is such a
temporary file, which ``remove_temporaries`` deletes before the next attempt writes the same output.

Input: Snakemake trusts any file that exists and is newer than its inputs, truncated or not (a disk that filled up,
a copy cut short). ``check_artifact`` reads a file just enough to know it is complete for its kind (a Parquet footer,
every CSV row, the whole JSON, a zip's central directory, UTF-8 text ending in a newline) and raises
``ArtifactError`` in one line naming the file and saying how to rebuild it.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

REBUILD = "delete it and rerun the workflow to rebuild it"


class ArtifactError(ValueError):
    """A pipeline artifact that is not whole (truncated or corrupt), stated in one line naming the file."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())                # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (serialise to memory first when the bytes must not depend on the
    file's name, as with ``torch.save``, which names an archive's root folder after the file)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_copy(src: str | Path, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        shutil.copyfile(src, tmp)


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def remove_temporaries(path: str | Path) -> list[Path]:
    """Delete what an interrupted ``atomic_path`` left beside ``path`` (``.<name>.*.tmp``, also those of files
    named after it, such as ``<name>.state``); returns the files removed."""
    path = Path(path)
    found = sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for tmp in found:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return found


def fingerprint(settings: dict, inputs: Iterable[str | Path]) -> str:
    """sha256 of a run's settings (JSON, keys sorted) and the bytes of its input files: a resumable state written
    under another fingerprint belongs to another run."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in inputs:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------- artifacts read back


def _check_parquet(path: Path) -> None:
    """The footer (at the end of the file: a truncated file has none) and the schema it describes."""
    import pyarrow.parquet as pq

    pq.read_metadata(path)


def _check_csv(path: Path) -> None:
    """Every row has the header's number of fields, and the file ends with a newline (pandas writes one)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f, strict=True)                 # strict: a quoted field cut short is an error
        width = len(next(rows))
        for n, row in enumerate(rows, start=2):
            if len(row) != width:
                raise ValueError(f"row {n} has {len(row)} fields, the header {width}")
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            raise ValueError("no newline at the end: cut short")


def _check_json(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def _check_zip(path: Path) -> None:
    """A checkpoint is a zip archive: its central directory sits at the end, so a truncated file has none (the
    loader, ``models.checkpoint``, also checks every record's CRC)."""
    with zipfile.ZipFile(path):
        pass


def _check_text(path: Path) -> None:
    """UTF-8, ending with a newline (vocabularies and target lists are written with one)."""
    if not path.read_text(encoding="utf-8").endswith("\n"):
        raise ValueError("no newline at the end: cut short")


# suffix -> (what the file is, its check)
ARTIFACT_CHECKS: dict[str, tuple[str, Callable[[Path], None]]] = {
    ".parquet": ("Parquet file", _check_parquet), ".csv": ("CSV file", _check_csv),
    ".json": ("JSON file", _check_json), ".pt": ("checkpoint", _check_zip), ".txt": ("text file", _check_text),
}


def check_artifact(path: str | Path) -> None:
    """Raise ``ArtifactError`` unless the file at ``path`` is whole for its suffix (``ARTIFACT_CHECKS``; other
    suffixes and missing files pass: Snakemake reports those)."""
    path = Path(path)
    kind, check = ARTIFACT_CHECKS.get(path.suffix, (None, None))
    if check is None or not path.is_file():
        return
    try:
        if path.stat().st_size == 0:
            raise ValueError("empty file")
        check(path)
    except (OSError, ValueError, csv.Error, zipfile.BadZipFile, StopIteration) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ArtifactError(f"{path}: truncated or corrupt {kind} ({reason}); {REBUILD}") from None


def check_artifacts(paths: Iterable[str | Path]) -> None:
    """``check_artifact`` on each of ``paths``, in order."""
    for path in paths:
        check_artifact(path)
