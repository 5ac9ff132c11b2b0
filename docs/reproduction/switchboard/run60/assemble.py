"""Writes run 60's files from what it left at its stop (see ../README.md#run-60).

  PYTHONPATH=. python docs/reproduction/switchboard/run60/assemble.py RAW

RAW: the folder holding ``runs/all.log`` (Snakemake's output) and ``w_all/`` (its working directory: logs,
results without checkpoints, benchmarks_out) as packed at the stop. Checks Table 8 against run 20's, then writes
jobs.csv (every job Snakemake started: its start and, if it finished, its end in minutes after the invocation
began, and its seconds from Snakemake's benchmark file, also written to ../wall_times.csv) and epochs.csv (when each
epoch of Algorithms 1 and 2 ended), and prints where each GPU job stood at the stop.
"""

import importlib.util
import re
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run32_assemble", HERE.parent / "run32" / "assemble.py")
run32 = importlib.util.module_from_spec(_spec)      # write_wall_times
_spec.loader.exec_module(run32)
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ ")
ALG1_EPOCH = re.compile(r" epoch (\d+): (\d+)/(\d+) targets hit after gibbs-enum")
ALG2_EPOCH = re.compile(r" r_thres [\d.]+ epoch (\d+) \(([\d.]+) s,")


def jobs(log: Path, work: Path) -> tuple[datetime, pd.DataFrame]:
    """The invocation's start (Snakemake's 'Date:') and one row per job it started, from its output: the job is
    named by its log file; its seconds are those of its benchmark file, where it finished."""
    text = log.read_text().splitlines()
    begin = datetime.strptime(next(ln for ln in text if ln.strip().startswith("Date:")).split("Date:")[1].strip(),
                              "%Y-%m-%d %H:%M:%S")
    rows: dict[int, dict] = {}
    when, current = None, None
    for line in text:
        if m := STAMP.match(line):
            when, current = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"), None
        elif (m := re.match(r"^(?:local)?rule (\w+):$", line)) and when is not None:
            current = {"rule": m.group(1), "job": m.group(1), "wildcards": "", "start": when, "benchmark": None}
        elif current is not None and (m := re.match(r"^\s+(jobid|wildcards|log|benchmark): (.+)$", line)):
            key, value = m.groups()
            if key == "jobid":
                rows[int(value)] = current
            elif key == "log":
                current["job"] = value.removeprefix("logs/").removeprefix("switchboard/").removesuffix(".log")
            else:
                current[key] = value
        elif (m := re.match(r"^Finished jobid: (\d+) ", line)) and when is not None:
            rows[int(m.group(1))]["end"] = when
    frame = pd.DataFrame([{"jobid": k, **v} for k, v in rows.items()])
    for col in ("start", "end"):
        frame[f"{col}_min"] = ((frame[col] - begin).dt.total_seconds() / 60).round(2)
    done = frame["end"].notna() & frame["benchmark"].notna()
    frame["seconds"] = [float(pd.read_csv(work / b, sep="\t")["s"].iloc[0]) if d else None
                        for b, d in zip(frame["benchmark"], done)]
    frame = frame.sort_values(["start_min", "jobid"])
    return begin, frame[["jobid", "job", "rule", "wildcards", "start_min", "end_min", "seconds"]]


def epochs(work: Path, begin: datetime) -> pd.DataFrame:
    """When each epoch of Algorithms 1 and 2 ended, from their logs."""
    rows = []
    for log in sorted((work / "logs" / "switchboard").glob("*.log")):
        for line in log.read_text().replace("\r", "\n").splitlines():
            t = LOG_TIME.match(line)
            if t is None:
                continue
            minute = round((datetime.strptime(t.group(1), "%Y-%m-%d %H:%M:%S") - begin).total_seconds() / 60, 2)
            if m := ALG1_EPOCH.search(line):
                rows.append({"job": log.stem, "epoch": int(m.group(1)), "end_min": minute, "seconds": None,
                             "hit": int(m.group(2)), "targets": int(m.group(3))})
            elif m := ALG2_EPOCH.search(line):
                rows.append({"job": log.stem, "epoch": int(m.group(1)), "end_min": minute,
                             "seconds": float(m.group(2)), "hit": None, "targets": None})
    return pd.DataFrame(rows).astype({"hit": "Int64", "targets": "Int64"})


def main(raw: Path) -> None:
    work = raw / "w_all"
    sw = work / "results" / "switchboard"
    assert pd.read_csv(sw / "table8.csv").equals(pd.read_csv(HERE.parent / "run20" / "table8.csv")), \
        "Table 8 differs from run 20's: not the coherent base's baseline"
    begin, table = jobs(raw / "runs" / "all.log", work)
    table.to_csv(HERE / "jobs.csv", index=False)
    timed = table.dropna(subset=["seconds"]).sort_values("job")
    run32.write_wall_times("run60", timed.rename(columns={"job": "stage"}))
    per_epoch = epochs(work, begin)
    per_epoch.to_csv(HERE / "epochs.csv", index=False)
    print(f"{len(table)} jobs started, {table['end_min'].notna().sum()} finished\n", table.to_string(index=False))
    last = per_epoch.groupby("job").tail(1)
    print("last epoch each Algorithm 1 and 2 job ended before the stop\n", last.to_string(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
