"""How run 13's files here were made from its logs (2026-11-25).

Run 13 ran the whole set under NVIDIA MPS until it was stopped at minute 24, with both Algorithm 2 jobs at
epoch 11 of 20. So it left no curve files for Algorithm 2, and its other outputs equal those already committed (the
README says which were compared). This reads what it did leave:
  RUN/smk.log                          Snakemake's log: when each job started and finished;
  RUN/benchmarks_out/switchboard/      the rules' `benchmark:` files: seconds per finished stage;
  RUN/logs/switchboard/freq-*.log      Algorithm 2's per-epoch log lines,
and writes `run13_timeline.csv` (each job's start and end, in minutes after Snakemake started its first job),
`run13_freq_epochs.csv` (each logged epoch, and whether its numbers equal those of the committed curves of runs 4 and 5
to the digits the log prints) and run 13's rows of `wall_times.csv`. Run from the repository root:

    PYTHONPATH=. python docs/reproduction/switchboard/assemble_run13.py RUN
"""
import re
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from negtrain_core.io import write_csv

DOCS = Path("docs/reproduction/switchboard")
run = Path(sys.argv[1])

# --- the timeline, from Snakemake's log: "[Wed Nov 25 01:12:35 2026]" lines, then "rule X:" ... "jobid: N" for a
# start or "Finished jobid: N" for an end
jobs, t, rule, job = {}, None, None, None
for line in (run / "smk.log").read_text().splitlines():
    if m := re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line):
        t, job = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"), None
    elif m := re.match(r"(?:local)?rule (\w+):", line):
        rule = m.group(1)
    elif rule and (m := re.match(r"\s+jobid: (\d+)", line)):
        job = int(m.group(1))
        jobs[job], rule = {"rule": rule, "wildcards": "", "start": t, "end": None}, None
    elif job is not None and (m := re.match(r"\s+wildcards: (.*)", line)):
        jobs[job]["wildcards"] = m.group(1)
    elif m := re.match(r"Finished jobid: (\d+)", line):
        jobs[int(m.group(1))]["end"] = t
start = min(j["start"] for j in jobs.values())
timeline = pd.DataFrame(jobs.values()).sort_values(["start", "rule"])
for col in ("start", "end"):
    timeline[f"{col}_min"] = ((timeline[col] - start).dt.total_seconds() / 60).round(2)
timeline["status"] = timeline["end"].map(lambda e: "finished" if pd.notna(e) else "running when the run was stopped")
write_csv(timeline[["rule", "wildcards", "start_min", "end_min", "status"]], DOCS / "run13_timeline.csv")

# --- Algorithm 2's epochs, against the committed curves of the same runs alone (run 5: 10%, run 4: 1%)
pattern = re.compile(r"r_thres ([\d.]+) epoch (\d+) \(([\d.]+) s, (\d+) decodes, (\d+) negative batches\): test PPL "
                     r"([\d.]+), max-ratio ([\d.]+) .*Ent-2 ([\d.]+), Ent-3 ([\d.]+)")
rows = []
for log in sorted((run / "logs/switchboard").glob("freq-*.log")):
    for line in log.read_text().splitlines():
        if m := pattern.search(line):
            r, epoch, seconds, _, neg, ppl, ratio, ent2, ent3 = m.groups()
            rows.append(dict(r_thres=float(r), epoch=int(epoch), seconds=float(seconds), negative_steps=int(neg),
                             test_ppl=float(ppl), test_max_ratio=float(ratio), test_ent2=float(ent2),
                             test_ent3=float(ent3), logged_at=line[:19]))
epochs = pd.DataFrame(rows)
committed = {r: pd.read_csv(DOCS / f"freq-{r:g}_curve.csv").set_index("epoch") for r in epochs["r_thres"].unique()}
same = []
for row in epochs.itertuples():
    ref = committed[row.r_thres].loc[row.epoch]
    same.append(ref["negative_steps"] == row.negative_steps and round(ref["test_ppl"], 2) == row.test_ppl
                and round(ref["test_max_ratio"], 4) == row.test_max_ratio
                and round(ref["test_ent2"], 3) == row.test_ent2 and round(ref["test_ent3"], 3) == row.test_ent3)
epochs["equals_committed_curve"] = same
write_csv(epochs.sort_values(["r_thres", "epoch"]), DOCS / "run13_freq_epochs.csv")

# --- wall time per finished stage, as for the other runs
bench = run / "benchmarks_out/switchboard"
walls = pd.DataFrame([{"run": "run13", "stage": str(f.relative_to(bench).with_suffix("")).replace("/", "_"),
                       "seconds": float(pd.read_csv(f, sep="\t")["s"].iloc[0])} for f in sorted(bench.rglob("*.tsv"))])
table = pd.read_csv(DOCS / "wall_times.csv")
write_csv(pd.concat([walls, table[table["run"] != "run13"]], ignore_index=True), DOCS / "wall_times.csv")
print(timeline[["rule", "wildcards", "start_min", "end_min"]].to_string(index=False))
print(epochs.to_string(index=False))
print(walls.to_string(index=False))
