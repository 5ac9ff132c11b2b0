"""Where each dataset's raw corpus lives, how a missing one is fetched, and a one-line instruction otherwise.

A raw input that is missing is either fetched by the DAG (``download: true`` and ``datasets.<name>.raw.url`` set:
rule ``fetch_raw`` takes the URL through Snakemake's HTTP storage plugin and ``install`` checks and places it) or
stops the workflow with one line naming the file expected, where to get it and where to put it.
Archives are kept as downloaded (the readers open zip / tar.gz directly); ``install`` only checks they open.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from negtrain_core.config import CSV_FORMAT
from negtrain_core.io import atomic_path

log = logging.getLogger(__name__)

SWDA = "Potts' SwDA csv release (swda.zip, https://github.com/cgpotts/swda), as a zip/tar.gz or unpacked folder"
HOW_TO_GET = {  # by config datasets.<name>.reader
    "swda_markup": SWDA,
    "swda_plain": SWDA,
    "udc_v1": "the Ubuntu Dialogue Corpus v1 (ubuntu_dialogs.tgz, Lowe et al. 2015) or its flattened dialogueText*.csv",
    "irc_reply_links": "the #ubuntu IRC data with gold reply links (Kummerfeld et al. 2019, "
                       "https://github.com/jkkummerfeld/irc-disentanglement) as a tar.gz",
    "opus_xml": "OPUS OpenSubtitles English XML (en.zip, https://opus.nlpl.eu/OpenSubtitles.php)",
}
SPLIT_FILE_READERS = ("swda_markup", "swda_plain")  # take the split from split.authors_file (readers/swda.py)
OWN_DATA = {  # by config datasets.<name>.reader: a researcher's own dialogues (docs/data.md, "Your own dialogues")
    "jsonl": 'your dialogues as JSON Lines (one dialogue a line: ["utterance", ...] or {{"id": ..., "turns": [...]}})',
    "csv": "your dialogues as CSV or TSV (a header, then one row an utterance, with columns {id_column} and "
           "{text_column})",
}
AUTHORS_FILE = (
    "the authors' processed SwDA test file (data/swda_dialogue/process_oneline/test/test.txt of "
    "https://github.com/cloudygoose/negativetraining_acl2020)"
)
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
NEVER_MATCHES = "(?!x)x"


class RawInputError(ValueError):
    """A raw input problem, stated in one line that names the file."""


class MissingRawInput(RawInputError, FileNotFoundError):
    """A raw corpus is not where the config says; the message says what to download and where to put it."""


@dataclass(frozen=True)
class RawSource:
    """Where a missing raw file comes from: its dataset, official URL and expected SHA-256 (None: not pinned)."""

    dataset: str
    path: str
    url: str
    sha256: str | None


def archive_kind(name: str) -> str | None:
    """'zip' | 'tar' for an archive file name (or URL path), None for anything else."""
    name = name.lower()
    if name.endswith(".zip"):
        return "zip"
    return "tar" if name.endswith((".tar.gz", ".tgz", ".tar")) else None


def _missing_line(config: dict[str, Any], dataset: str, path: str) -> str:
    """The one line shown when ``path`` (a raw input of ``dataset``) is absent and will not be fetched."""
    ds = config["datasets"][dataset]
    raw = ds["raw"]
    if path != raw["path"]:
        return (
            f"negtrain: split file for '{dataset}' not found: {path} -- download {AUTHORS_FILE} and put it at "
            f"{path}, or set datasets.{dataset}.split.authors_file in the config"
        )
    if ds["reader"] in OWN_DATA:
        columns = {**CSV_FORMAT, **ds.get("csv", {})}
        what = OWN_DATA[ds["reader"]].format(**columns)
        return (f"negtrain: raw input for '{dataset}' not found: {path} -- put {what} at {path}, or set "
                f"datasets.{dataset}.raw.path in the config")
    where = HOW_TO_GET.get(ds["reader"], "the raw corpus")
    fetch = f" from {raw['url']}" if raw["url"] else ""
    auto = " (or run with --config download=True to let the workflow fetch it)" if raw["url"] else ""
    return (
        f"negtrain: raw input for '{dataset}' not found: {path} -- download {where}{fetch} and put it at {path}{auto}, "
        f"or set datasets.{dataset}.raw.path in the config"
    )


def downloads(config: dict[str, Any]) -> dict[str, RawSource]:
    """Raw files the DAG fetches: missing ``raw.path`` with a ``raw.url``, when ``download`` is on. Path -> source."""
    if not config.get("download", False):
        return {}
    out = {}
    for name, ds in config["datasets"].items():
        raw = ds.get("raw") or {}
        if raw.get("path") and raw.get("url") and not Path(raw["path"]).exists():
            out[raw["path"]] = RawSource(name, raw["path"], raw["url"], raw.get("sha256"))
    return out


def download_pattern(config: dict[str, Any]) -> str:
    """Regex for the ``raw_path`` wildcard of rule fetch_raw: exactly the files ``downloads`` lists."""
    paths = sorted(downloads(config))
    return "|".join(re.escape(p) for p in paths) if paths else NEVER_MATCHES


def source(config: dict[str, Any], path: str) -> RawSource:
    """The download source of the missing raw file ``path`` (a key of ``downloads``)."""
    found = downloads(config).get(path)
    if found is None:
        raise RawInputError(f"negtrain: no download configured for {path} (download: true and a raw.url needed)")
    return found


def unreachable(url: str, timeout: float = 30.0) -> str | None:
    """Why ``url`` cannot be downloaded from here (its host does not resolve or answer, or an HTTP error), or None.
    Asked before the HTTP storage plugin asks the same, whose failure is a traceback of the connection error, or a
    missing-input report for an HTTP error, naming neither the cause nor what to do."""
    import requests  # the HTTP storage plugin's own dependency: only downloads need it

    host = urlparse(url).hostname
    try:
        reply = requests.head(url, timeout=timeout, allow_redirects=True)
    except requests.Timeout:
        return f"{host}: no answer in {timeout:g} s"
    except requests.RequestException as err:
        found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))          # the OS's reason, e.g. Connection refused
        return f"{host}: {found.group(1).strip() if found else type(err).__name__}"
    return f"HTTP {reply.status_code} {reply.reason}" if reply.status_code >= 400 else None


def unreachable_line(source: RawSource, reason: str) -> str:
    """The one line shown when the raw file ``source`` names cannot be downloaded (``unreachable``'s ``reason``)."""
    return (f"negtrain: cannot download {source.url} for '{source.dataset}' ({reason}) -- check the URL "
            f"(datasets.{source.dataset}.raw.url) and the network, or download it elsewhere and put it at "
            f"{source.path}")


def raw_inputs(config: dict[str, Any], dataset: str) -> list[str]:
    """Paths of the raw files a dataset's preprocessing reads (empty for the packaged chitchat corpus).

    A missing file that ``downloads`` lists is returned (rule fetch_raw makes it); any other missing file raises
    ``MissingRawInput`` with one line. A download whose URL and path are different archive types is refused.
    """
    ds = config["datasets"][dataset]
    fetched = downloads(config)
    split_file = ds["split"].get("authors_file") if ds["reader"] in SPLIT_FILE_READERS else None
    paths = [p for p in (ds["raw"]["path"], split_file) if p]  # another reader's block may keep one, merged in
    for p in paths:
        if p in fetched:
            if archive_kind(urlparse(fetched[p].url).path) != archive_kind(p):
                raise RawInputError(
                    f"negtrain: datasets.{dataset}.raw.path {p} and raw.url {fetched[p].url} are different file "
                    f"types; a download is saved as is, so give raw.path the URL's file name"
                )
        elif not Path(p).exists():
            raise MissingRawInput(_missing_line(config, dataset, p))
    return paths


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_archive(path: str | Path, kind: str | None) -> int:
    """Open a zip / tar archive completely (CRCs, every member header); return its member count.

    Raises ``RawInputError`` (one line) when it cannot be read, e.g. an HTML error page saved under an archive name.
    """
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise RawInputError(f"negtrain: downloaded archive {path}: member {bad} fails its CRC check")
                return len(zf.infolist())
        if kind == "tar":
            with tarfile.open(path) as tf:
                return len(tf.getmembers())
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise RawInputError(f"negtrain: downloaded file {path} is not a readable {kind} archive ({err})") from err
    return 0


def install(downloaded: str | Path, dest: str | Path, sha256: str | None) -> dict[str, Any]:
    """Check a downloaded raw file and move it to ``dest`` atomically; nothing is written at ``dest`` on failure.

    Checks: the SHA-256 when given (a mismatch raises ``RawInputError`` naming both digests), then that an archive
    (by ``dest``'s suffix) opens. Returns {"bytes", "sha256", "members"} for the rule log.
    """
    digest = sha256_of(downloaded)
    if sha256 is not None and digest != sha256.lower():
        raise RawInputError(f"negtrain: checksum mismatch for {dest}: expected sha256 {sha256}, downloaded {digest}")
    members = check_archive(downloaded, archive_kind(str(dest)))
    with atomic_path(dest) as tmp:
        shutil.copyfile(downloaded, tmp)
        tmp.chmod(0o644)  # mkstemp makes 0600; a corpus is readable by all, like any downloaded file
    return {"bytes": Path(dest).stat().st_size, "sha256": digest, "members": members}


def fetch(downloaded: str | Path, dest: str | Path, source: RawSource) -> dict[str, Any]:
    """Rule fetch_raw: ``install`` the HTTP storage plugin's download of ``source.url`` at ``dest``, logged."""
    info = install(downloaded, dest, source.sha256)
    pinned = "verified" if source.sha256 else "not pinned in the config"
    log.info("%s -> %s: %d bytes, %d archive members, sha256 %s (%s)", source.url, dest, info["bytes"],
             info["members"], info["sha256"], pinned)
    return info
