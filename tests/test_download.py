"""Raw-input download (rule fetch_raw, negtrain_core.data.raw): fixture archives served on 127.0.0.1 only.

The Snakemake tests run the real fetch rule (HTTP storage plugin) from a scratch directory against a
ThreadingHTTPServer bound to the loopback address on a free port, shut down when the test ends.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from negtrain_core.data import raw
from snakemake_cli import snakemake, stderr_lines

SWDA_MEMBER = ("swda/sw00utt/sw_0001_4325.utt.csv", "act_tag,caller,text\nsd,A,okay uh first um\n")
UBUNTU_MEMBER = ("dialogs/3/1.tsv", "2004-11-23T11:49:00.000Z\tfoo\t\thow do i install it\n")


def zip_bytes(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, text)
    return buf.getvalue()


def tgz_bytes(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    data = text.encode()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder without logging each request to stderr."""

    def log_message(self, format: str, *args) -> None:
        pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(base URL, {file name: bytes}) of fixture archives served from 127.0.0.1 on a free port."""
    root = tmp_path / "served"
    root.mkdir()
    files = {"swda.zip": zip_bytes(*SWDA_MEMBER), "ubuntu_dialogs.tgz": tgz_bytes(*UBUNTU_MEMBER),
             "error_page.zip": b"<html><body>404 Not Found</body></html>\n"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def no_proxy_env() -> dict[str, str]:
    """The environment with loopback exempt from any proxy (requests honours *_proxy variables)."""
    return dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


def download_overlay(tmp_path: Path, raws: dict[str, dict]) -> Path:
    """A config overlay turning downloading on, with the given datasets' raw blocks and no authors' split file."""
    datasets = {name: {"raw": block, "split": {"authors_file": None}} for name, block in raws.items()}
    path = tmp_path / "download.yaml"
    path.write_text(yaml.safe_dump({"download": True, "datasets": datasets}))
    return path


def fetch(workdir: Path, overlay: Path, *targets: str):
    return snakemake(workdir, "--cores", "1", *targets, overlays=[overlay], env=no_proxy_env())


def test_download_checksum_accepted_and_archives_open(tmp_path: Path, served) -> None:
    base, files = served
    overlay = download_overlay(tmp_path, {
        "switchboard": {"path": "raw/switchboard/swda.zip", "url": f"{base}/swda.zip",
                        "sha256": sha256(files["swda.zip"])},
        "ubuntu": {"path": "raw/ubuntu/ubuntu_dialogs.tgz", "url": f"{base}/ubuntu_dialogs.tgz", "sha256": None},
    })
    run = fetch(tmp_path, overlay, "raw/switchboard/swda.zip", "raw/ubuntu/ubuntu_dialogs.tgz")
    assert run.returncode == 0, run.stderr
    swda, ubuntu = tmp_path / "raw/switchboard/swda.zip", tmp_path / "raw/ubuntu/ubuntu_dialogs.tgz"
    assert swda.read_bytes() == files["swda.zip"]
    assert ubuntu.read_bytes() == files["ubuntu_dialogs.tgz"]
    with zipfile.ZipFile(swda) as zf:                      # unpacking: the member's text survives the trip
        assert zf.read(SWDA_MEMBER[0]).decode() == SWDA_MEMBER[1]
    with tarfile.open(ubuntu) as tf:
        assert tf.extractfile(UBUNTU_MEMBER[0]).read().decode() == UBUNTU_MEMBER[1]
    log = (tmp_path / "logs/fetch_raw/raw/switchboard/swda.zip.log").read_text()
    assert f"sha256 {sha256(files['swda.zip'])} (verified)" in log
    assert not list((tmp_path / ".snakemake").glob("storage/**/*.zip"))   # the plugin's local copy is gone


def test_checksum_mismatch_refused_leaving_nothing(tmp_path: Path, served) -> None:
    base, files = served
    wrong = "0" * 64
    overlay = download_overlay(tmp_path, {
        "switchboard": {"path": "raw/switchboard/swda.zip", "url": f"{base}/swda.zip", "sha256": wrong},
    })
    run = fetch(tmp_path, overlay, "raw/switchboard/swda.zip")
    assert run.returncode != 0
    line = (f"negtrain: checksum mismatch for raw/switchboard/swda.zip: expected sha256 {wrong}, "
            f"downloaded {sha256(files['swda.zip'])}")
    assert line in stderr_lines(run.stderr)
    assert not (tmp_path / "raw/switchboard/swda.zip").exists()
    leftovers = [p for p in tmp_path.rglob("*swda*") if p.is_file() and not {"served", "logs"} & set(p.parts)]
    assert leftovers == []                                   # no temp file, no storage copy
    log = (tmp_path / "logs/fetch_raw/raw/switchboard/swda.zip.log").read_text()
    assert line in log and "Traceback (most recent call last)" in log      # the line, then the traceback


def test_non_archive_refused(tmp_path: Path, served) -> None:
    """No checksum pinned: an HTML page served under an archive name is still refused, nothing left."""
    base, _ = served
    overlay = download_overlay(tmp_path, {
        "switchboard": {"path": "raw/switchboard/swda.zip", "url": f"{base}/error_page.zip", "sha256": None},
    })
    run = fetch(tmp_path, overlay, "raw/switchboard/swda.zip")
    assert run.returncode != 0
    assert any(line.startswith("negtrain: downloaded file ") and "is not a readable zip archive" in line
               for line in stderr_lines(run.stderr))
    assert not (tmp_path / "raw/switchboard/swda.zip").exists()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where, reason", [("closed", "127.0.0.1: Connection refused"),
                                           ("missing", "HTTP 404 File not found")])
def test_a_download_that_cannot_start_is_refused_in_one_line(tmp_path: Path, served, where: str, reason: str
                                                             ) -> None:
    """No connection (a closed port), or an HTTP error (a wrong URL): one line with the cause and what to do, not
    the storage plugin's traceback or missing-input report; nothing written."""
    base, _ = served
    url = f"http://127.0.0.1:{closed_port()}/swda.zip" if where == "closed" else f"{base}/no_such.zip"
    overlay = download_overlay(tmp_path, {
        "switchboard": {"path": "raw/switchboard/swda.zip", "url": url, "sha256": None},
    })
    run = snakemake(tmp_path, "-n", "--cores", "1", "raw/switchboard/swda.zip", overlays=[overlay],
                    env=no_proxy_env())
    assert run.returncode == 1
    assert stderr_lines(run.stderr) == [
        f"negtrain: cannot download {url} for 'switchboard' ({reason}) -- check the URL "
        f"(datasets.switchboard.raw.url) and the network, or download it elsewhere and put it at "
        f"raw/switchboard/swda.zip"]
    assert "Traceback" not in run.stdout and "Exception" not in run.stdout
    assert not (tmp_path / "raw").exists()


def test_dag_fetches_before_preprocess(tmp_path: Path, served) -> None:
    base, files = served
    overlay = download_overlay(tmp_path, {
        "switchboard": {"path": "raw/switchboard/swda.zip", "url": f"{base}/swda.zip", "sha256": None},
    })
    run = snakemake(tmp_path, "--dag", "dot", "results/switchboard/data/stats.csv",
                    overlays=[overlay], env=no_proxy_env())
    assert run.returncode == 0, run.stderr
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', run.stdout, flags=re.M))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", run.stdout, flags=re.M)
    assert sorted(nodes.values()) == ["fetch_raw", "preprocess"]
    assert [(nodes[a], nodes[b]) for a, b in edges] == [("fetch_raw", "preprocess")]


# ---- negtrain_core.data.raw without Snakemake ------------------------------------------------------------------------

def config_with(tmp_path: Path, download: bool, url: str | None = "http://127.0.0.1:9/en.zip") -> dict:
    present = tmp_path / "present.zip"
    present.write_bytes(b"x")
    return {"download": download, "datasets": {
        "opensubtitles": {"reader": "opus_xml", "raw": {"path": str(tmp_path / "en.zip"), "url": url, "sha256": None},
                          "split": {}},
        "switchboard": {"reader": "swda_markup", "raw": {"path": str(present), "url": url, "sha256": None},
                        "split": {}},
        "chitchat": {"reader": "chitchat", "raw": {"path": None, "url": None, "sha256": None}, "split": {}},
    }}


def test_downloads_lists_only_missing_files_with_a_url_when_on(tmp_path: Path) -> None:
    on = config_with(tmp_path, download=True)
    assert list(raw.downloads(on)) == [str(tmp_path / "en.zip")]
    assert raw.downloads(config_with(tmp_path, download=False)) == {}
    assert raw.downloads(config_with(tmp_path, download=True, url=None)) == {}
    pattern = re.compile(raw.download_pattern(on))
    assert pattern.fullmatch(str(tmp_path / "en.zip"))
    assert not pattern.fullmatch(str(tmp_path / "enXzip"))               # the dot is escaped
    assert not re.compile(raw.download_pattern(config_with(tmp_path, False))).fullmatch(str(tmp_path / "en.zip"))


def test_missing_without_url_says_where_to_put_it(tmp_path: Path) -> None:
    config = config_with(tmp_path, download=True, url=None)
    with pytest.raises(raw.MissingRawInput) as err:
        raw.raw_inputs(config, "opensubtitles")
    path = tmp_path / "en.zip"
    assert str(err.value) == (
        f"negtrain: raw input for 'opensubtitles' not found: {path} -- download OPUS OpenSubtitles English XML "
        f"(en.zip, https://opus.nlpl.eu/OpenSubtitles.php) and put it at {path}, "
        f"or set datasets.opensubtitles.raw.path in the config")


def test_the_missing_line_names_what_the_configured_reader_reads(tmp_path: Path) -> None:
    """The Ubuntu substitute's reader asks for the IRC data, not for the Ubuntu Dialogue Corpus."""
    path = tmp_path / "irc.tar.gz"
    config = {"download": False, "datasets": {"ubuntu": {
        "reader": "irc_reply_links", "raw": {"path": str(path), "url": None, "sha256": None}, "split": {}}}}
    with pytest.raises(raw.MissingRawInput) as err:
        raw.raw_inputs(config, "ubuntu")
    assert str(err.value) == (
        f"negtrain: raw input for 'ubuntu' not found: {path} -- download the #ubuntu IRC data with gold reply links "
        f"(Kummerfeld et al. 2019, https://github.com/jkkummerfeld/irc-disentanglement) as a tar.gz and put it at "
        f"{path}, or set datasets.ubuntu.raw.path in the config")


def test_download_of_a_different_file_type_refused(tmp_path: Path) -> None:
    config = config_with(tmp_path, download=True, url="http://127.0.0.1:9/en.tar.gz")
    with pytest.raises(raw.RawInputError, match="are different file types"):
        raw.raw_inputs(config, "opensubtitles")


def test_install_mismatch_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "dl.zip"
    src.write_bytes(zip_bytes(*SWDA_MEMBER))
    dest = tmp_path / "out" / "swda.zip"
    with pytest.raises(raw.RawInputError, match=f"expected sha256 {'f' * 64}, downloaded {sha256(src.read_bytes())}"):
        raw.install(src, dest, "f" * 64)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_install_places_a_verified_tar_atomically(tmp_path: Path) -> None:
    data = tgz_bytes(*UBUNTU_MEMBER)
    src = tmp_path / "dl.tgz"
    src.write_bytes(data)
    dest = tmp_path / "out" / "ubuntu_dialogs.tgz"
    info = raw.install(src, dest, sha256(data).upper())
    assert info == {"bytes": len(data), "sha256": sha256(data), "members": 1}
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ubuntu_dialogs.tgz"]
