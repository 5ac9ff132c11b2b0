"""Where each dataset's raw corpus lives, and a one-line instruction when it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HOW_TO_GET = {
    "switchboard": "Potts' SwDA csv release (swda.zip, https://github.com/cgpotts/swda), as a zip/tar.gz or unpacked folder",
    "ubuntu": "the Ubuntu Dialogue Corpus v1 (ubuntu_dialogs.tgz, Lowe et al. 2015) or its flattened dialogueText*.csv",
    "opensubtitles": "OPUS OpenSubtitles English XML (en.zip, https://opus.nlpl.eu/OpenSubtitles.php)",
}


class MissingRawInput(FileNotFoundError):
    """A raw corpus is not where the config says; the message says what to download and where to put it."""


def raw_inputs(config: dict[str, Any], dataset: str) -> list[str]:
    """Paths of the raw files a dataset's preprocessing reads (empty for the packaged chitchat corpus)."""
    ds = config["datasets"][dataset]
    paths = [p for p in (ds["raw"]["path"], ds["split"].get("authors_file")) if p]
    for p in paths:
        if not Path(p).exists():
            where = HOW_TO_GET.get(dataset, "the raw corpus")
            url = ds["raw"]["url"]
            fetch = f" from {url}" if url else ""
            raise MissingRawInput(
                f"negtrain: raw input for '{dataset}' not found: {p} -- download {where}{fetch} and put it at {p}, "
                f"or set datasets.{dataset}.raw.path in the config"
            )
    return paths
