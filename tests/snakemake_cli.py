"""Run the `snakemake` command line on this repository's workflow from a scratch directory (test helper).

The repository's config.yaml is always the first --configfile; overlays follow, so a test states only what it changes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conftest import QUICK_SMALL, QUICK_TINY

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



def quick_pipeline(workdir: Path, overlay: Path | None, device: str = "cpu", tiny: bool = False) -> Path:
    """``rule all`` at quick scale on chitchat with tests/quick_small.yaml (and tests/quick_tiny.yaml if ``tiny``)
    and ``overlay`` on ``device``; asserts that it succeeds and writes Tables 3, 4, 8 and 9, and returns its
    results/chitchat."""
    sizes = [QUICK_SMALL, QUICK_TINY] if tiny else [QUICK_SMALL]
    run = snakemake(workdir, "--cores", "2", "--config", "scale=quick", f"device={device}",
                    overlays=[*sizes, *([overlay] if overlay else [])], timeout=3600)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    results = workdir / "results" / "chitchat"
    for table in ("table3.csv", "table4.csv", "table8.csv", "table9.csv"):
        assert (results / table).is_file(), table
    return results


def stderr_lines(stderr: str) -> list[str]:
    """The non-empty lines of a captured stderr (Snakemake 9 logs its banner and progress to stdout here)."""
    return [line for line in stderr.splitlines() if line.strip()]
