"""Run the `snakemake` command line on this repository's workflow from a scratch directory (test helper).

The repository's config.yaml is always the first --configfile; overlays follow, so a test states only what it changes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def snakemake(
    workdir: Path,
    *args: str,
    overlays: Sequence[Path] = (),
    snakefile: Path = ROOT / "Snakefile",
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`snakemake -s SNAKEFILE --directory WORKDIR --configfile config.yaml *OVERLAYS *ARGS`, output captured."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
           "--configfile", str(ROOT / "config.yaml"), *map(str, overlays), *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)



def stderr_lines(stderr: str) -> list[str]:
    """The non-empty lines of a captured stderr (Snakemake 9 logs its banner and progress to stdout here)."""
    return [line for line in stderr.splitlines() if line.strip()]
