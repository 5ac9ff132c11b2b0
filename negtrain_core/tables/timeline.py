"""Where a run's wall time went: every job Snakemake recorded, with its start and end, and the chain of jobs that
set the run's length (its critical path).

Snakemake keeps, for each output file, the rule that wrote it, the job's inputs and its start and end times in
``.snakemake/metadata``: one JSON record per output, named by the output's path in URL-safe base64 (a name longer
than the file system allows is split into folders whose names start with ``@``). ``read_jobs`` groups the records by
job, as Snakemake's own HTML report (``snakemake --report report.html``, its runtime statistics) does;
``critical_path`` follows the last job to end back through the input job that ended last, to a job whose inputs no
job of the run wrote. A gap on that path is time the job waited after its inputs were ready (for a core, a GPU
slot, or Snakemake's scheduler): what a schedule can still win.

A job's times are those of its last run. Outputs an earlier invocation wrote keep their old times, so ``since``
(``--since``) keeps the jobs that started at or after a given time: the run being looked at.

    python -m negtrain_core.tables.timeline [WORKDIR] [--since "2026-12-05 01:00"] [-o timeline.csv]

prints the critical path and writes one row per job (``-o``; else to standard output).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import pandas as pd

from negtrain_core.io import write_csv

METADATA = Path(".snakemake") / "metadata"
COLUMNS = ["rule", "output", "start", "end", "start_min", "end_min", "seconds", "status", "critical_path",
           "wait_s"]


class TimelineError(ValueError):
    """The working directory holds no usable Snakemake metadata."""


def _records(workdir: Path) -> list[tuple[str, Path, dict]]:
    """(output path, record file, record) of every metadata record under ``workdir``."""
    root = workdir / METADATA
    if not root.is_dir():
        raise TimelineError(f"{root}: no Snakemake metadata here; give the folder Snakemake ran in "
                            "(its --directory, where .snakemake/ is)")
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts = path.relative_to(root).parts
        if not all(part.startswith("@") for part in parts[:-1]):
            continue                                       # not a record (Snakemake writes no other files here)
        name = "".join(part.lstrip("@") for part in parts)
        try:
            output = base64.urlsafe_b64decode(name.encode()).decode()
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:    # binascii.Error and JSONDecodeError are ValueErrors
            raise TimelineError(f"{path}: not a Snakemake metadata record ({err})") from None
        out.append((output, path, record))
    return out


def read_jobs(workdir: str | Path = ".", since: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per job of the records under ``workdir`` (started at or after ``since``, UTC): rule, its first output,
    start and end (UTC), seconds, status (``done``, or ``incomplete``: running, failed or killed), and the job's
    ``outputs`` and ``inputs`` (lists). Sorted by start."""
    jobs: dict[tuple, dict] = {}
    for output, path, rec in _records(Path(workdir)):
        missing = [k for k in ("rule", "job_hash", "starttime", "endtime", "input") if k not in rec]
        if missing:
            raise TimelineError(f"{path} ({output}): the record has no {', '.join(missing)} (written by another "
                                "Snakemake version?)")
        job = jobs.setdefault((rec["job_hash"], rec["rule"]), {
            "rule": rec["rule"], "outputs": [], "inputs": list(rec["input"] or []), "start": None, "end": None,
            "incomplete": False})
        job["outputs"].append(output)
        job["incomplete"] |= bool(rec.get("incomplete"))
        for key, pick in (("start", min), ("end", max)):
            t = rec["starttime" if key == "start" else "endtime"]
            if t is not None:
                job[key] = t if job[key] is None else pick(job[key], t)
    rows = [j for j in jobs.values() if j["start"] is not None]
    if not rows:
        raise TimelineError(f"{Path(workdir) / METADATA}: no job with a start time recorded")
    df = pd.DataFrame(rows)
    df["start"] = pd.to_datetime(df["start"], unit="s", utc=True)
    df["end"] = pd.to_datetime(df["end"], unit="s", utc=True)
    if since is not None:
        df = df[df["start"] >= since]
        if df.empty:
            raise TimelineError(f"{Path(workdir) / METADATA}: no job started at or after {since}")
    df["outputs"] = df["outputs"].map(sorted)
    df["output"] = df["outputs"].map(lambda o: o[0])
    df["seconds"] = (df["end"] - df["start"]).dt.total_seconds().round(1)
    df["status"] = df["incomplete"].map({True: "incomplete", False: "done"})
    return df.drop(columns="incomplete").sort_values(["start", "rule", "output"]).reset_index(drop=True)


def critical_path(jobs: pd.DataFrame) -> list[int]:
    """Row indices of ``jobs`` (``read_jobs``) on the critical path, first job first: from the job that ended last,
    back through the input job that ended last, while an input of the job was written by a job of the table."""
    producer = {out: i for i, outs in jobs["outputs"].items() for out in outs}
    path = [int(jobs["end"].idxmax())]
    while True:
        deps = {producer[p] for p in jobs.at[path[-1], "inputs"] if p in producer} - set(path)
        if not deps:
            return path[::-1]
        path.append(max(deps, key=lambda i: jobs.at[i, "end"]))


def timeline(jobs: pd.DataFrame) -> pd.DataFrame:
    """The table written: ``COLUMNS``, times in minutes after the first start, the critical path marked, and on it
    ``wait_s``: how long each job started after the job before it on the path ended."""
    t0 = jobs["start"].min()
    out = jobs.copy()
    out["start_min"] = ((out["start"] - t0).dt.total_seconds() / 60).round(2)
    out["end_min"] = ((out["end"] - t0).dt.total_seconds() / 60).round(2)
    path = critical_path(jobs)
    out["critical_path"] = out.index.isin(path)
    out["wait_s"] = float("nan")
    for before, after in zip(path, path[1:]):
        out.at[after, "wait_s"] = round((out.at[after, "start"] - out.at[before, "end"]).total_seconds(), 1)
    for col in ("start", "end"):
        out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    return out[COLUMNS]


def summary(table: pd.DataFrame) -> list[str]:
    """Lines for the terminal: the run's span and each job of the critical path."""
    path = table[table["critical_path"]].sort_values("start_min")
    span = table["end_min"].max() - table["start_min"].min()
    lines = [f"{len(table)} jobs over {span:.1f} min; critical path ({len(path)} jobs, "
             f"{path['seconds'].sum() / 60:.1f} min running, {path['wait_s'].fillna(0).sum() / 60:.1f} min waiting):"]
    for _, r in path.iterrows():
        wait = "" if pd.isna(r["wait_s"]) else f", started {r['wait_s']:.0f} s after its input"
        lines.append(f"  {r['start_min']:7.2f} -> {r['end_min']:7.2f} min  {r['rule']} ({r['output']}){wait}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m negtrain_core.tables.timeline",
                                description="Each job's start and end, and the critical path, of a Snakemake run.")
    p.add_argument("workdir", nargs="?", default=".", help="the folder Snakemake ran in (default: here)")
    p.add_argument("--since", help="only jobs started at or after this UTC time, e.g. '2026-12-05 01:00'")
    p.add_argument("-o", "--output", help="CSV to write (default: standard output)")
    a = p.parse_args(argv)
    try:
        since = pd.Timestamp(a.since, tz="UTC") if a.since else None
        table = timeline(read_jobs(a.workdir, since))
    except (TimelineError, ValueError) as err:
        print(f"negtrain: {err}", file=sys.stderr)
        return 1
    print("\n".join(summary(table)), file=sys.stderr if a.output is None else sys.stdout)
    if a.output:
        write_csv(table, a.output)
    else:
        table.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
