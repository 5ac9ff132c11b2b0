"""negtrain_core.tables.timeline: jobs read from Snakemake's metadata (records grouped by job, long names split into
``@`` folders, --since), the critical path and its waits, one-line errors; and on the quick pipeline's own run."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from negtrain_core.tables import timeline as tl

T0 = 1_796_400_000.0                                       # 2026-12-04 14:40 UTC


def _record(root: Path, output: str, rule: str, job: int, start: float | None, end: float | None,
            inputs: list[str], incomplete: bool = False) -> Path:
    """Write a record as Snakemake 9 does: the output's path in URL-safe base64, split into '@' folders when long."""
    name = base64.urlsafe_b64encode(output.encode()).decode()
    parts = [name[i:i + 254] for i in range(0, len(name), 254)]
    path = root.joinpath(*["@" + p for p in parts[:-1]], parts[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rule": rule, "job_hash": job, "input": inputs, "incomplete": incomplete,
                                "starttime": None if start is None else T0 + start,
                                "endtime": None if end is None else T0 + end, "record_format_version": 6}))
    return path


def _run(tmp_path: Path) -> Path:
    root = tmp_path / ".snakemake" / "metadata"
    long_dir = "results/" + "x" * 300 + "/z.txt"            # base64 longer than a file name: split into folders
    _record(root, "results/a.txt", "make_a", 1, 0, 10, ["raw/in.txt"])
    _record(root, "results/y.txt", "make_yz", 2, 12, 30, ["results/a.txt"])
    _record(root, long_dir, "make_yz", 2, 12, 29, ["results/a.txt"])
    _record(root, "results/c.txt", "make_c", 3, 31, 40, ["results/y.txt", "results/d.txt"])
    _record(root, "results/d.txt", "make_d", 4, 0, 30.5, [])
    _record(root, "results/e.txt", "make_e", 5, 41, None, ["results/c.txt"], incomplete=True)
    return tmp_path


def test_jobs_group_their_records_and_the_critical_path_follows_the_last_input(tmp_path):
    jobs = tl.read_jobs(_run(tmp_path))
    assert sorted(jobs["rule"]) == ["make_a", "make_c", "make_d", "make_e", "make_yz"]
    yz = jobs[jobs["rule"] == "make_yz"].iloc[0]
    assert len(yz["outputs"]) == 2 and yz["seconds"] == 18.0 and yz["output"] == "results/x" + "x" * 299 + "/z.txt"
    e = jobs[jobs["rule"] == "make_e"].iloc[0]
    assert e["status"] == "incomplete" and pd.isna(e["end"])
    done = jobs[jobs["status"] == "done"].reset_index(drop=True)
    table = tl.timeline(done)
    # make_c ends last; of its inputs y (end 30) and d (end 30.5), d ended last and has no inputs of the run
    assert list(table.loc[table["critical_path"], "rule"]) == ["make_d", "make_c"]
    assert table.loc[table["rule"] == "make_c", "wait_s"].item() == 0.5
    assert table.loc[table["rule"] == "make_d", "start_min"].item() == 0.0
    lines = tl.summary(table)
    assert lines[0].startswith("4 jobs over 0.7 min; critical path (2 jobs")


def test_since_keeps_the_run_looked_at_and_errors_are_one_line(tmp_path):
    run = _run(tmp_path)
    later = tl.read_jobs(run, since=pd.Timestamp(T0 + 11, unit="s", tz="UTC"))
    assert sorted(later["rule"]) == ["make_c", "make_e", "make_yz"]
    with pytest.raises(tl.TimelineError, match="no job started at or after"):
        tl.read_jobs(run, since=pd.Timestamp(T0 + 100, unit="s", tz="UTC"))
    with pytest.raises(tl.TimelineError, match=r"no Snakemake metadata here"):
        tl.read_jobs(tmp_path / "elsewhere")
    bad = _record(run / ".snakemake" / "metadata", "results/f.txt", "make_f", 6, 0, 1, [])
    bad.write_text(json.dumps({"rule": "make_f"}))
    with pytest.raises(tl.TimelineError) as err:
        tl.read_jobs(run)
    assert str(bad) in str(err.value) and "job_hash" in str(err.value) and "\n" not in str(err.value)


def test_the_path_starts_at_the_job_that_ended_last_not_the_one_that_started_last(tmp_path):
    run = _run(tmp_path)
    _record(run / ".snakemake" / "metadata", "results/f.txt", "make_f", 6, 35, 36, ["results/a.txt"])
    jobs = tl.read_jobs(run)
    table = tl.timeline(jobs[jobs["status"] == "done"].reset_index(drop=True))
    assert list(table.loc[table["critical_path"], "rule"]) == ["make_d", "make_c"]   # make_c ends at 40, make_f 36


def test_since_keeps_a_job_started_exactly_then(tmp_path):
    jobs = tl.read_jobs(_run(tmp_path), since=pd.Timestamp(T0 + 12, unit="s", tz="UTC"))
    assert sorted(jobs["rule"]) == ["make_c", "make_e", "make_yz"]                    # make_yz started at 12 s


def test_a_job_is_incomplete_when_any_of_its_records_says_so(tmp_path):
    """Records are read in the order of their file names; whichever of a job's two comes last, the job is
    incomplete if either is."""
    root = tmp_path / ".snakemake" / "metadata"
    for job, flags in ((1, (True, False)), (2, (False, True))):
        for k, flag in enumerate(flags):
            _record(root, f"results/job{job}_{k}.txt", f"make_{job}", job, 0, 10, [], incomplete=flag)
    _record(root, "results/done.txt", "make_done", 3, 0, 10, [])
    jobs = tl.read_jobs(tmp_path).set_index("rule")
    assert jobs["status"].to_dict() == {"make_1": "incomplete", "make_2": "incomplete", "make_done": "done"}


def test_the_cli_writes_the_table_and_prints_the_path(tmp_path, capsys):
    run = _run(tmp_path)
    assert tl.main([str(run), "-o", str(tmp_path / "timeline.csv")]) == 0
    table = pd.read_csv(tmp_path / "timeline.csv")
    assert list(table.columns) == tl.COLUMNS and len(table) == 5
    want = tl.timeline(tl.read_jobs(run))                              # what the library builds from the metadata
    pd.testing.assert_frame_equal(table, want.reset_index(drop=True), check_dtype=False)
    since = pd.Timestamp(T0 + 11, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
    assert tl.main([str(run), "--since", since, "-o", str(tmp_path / "later.csv")]) == 0
    assert sorted(pd.read_csv(tmp_path / "later.csv")["rule"]) == ["make_c", "make_e", "make_yz"]   # from 12 s on
    assert "critical path" in capsys.readouterr().out
    assert tl.main([str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.startswith("negtrain: ")


@pytest.mark.slow
def test_the_quick_pipelines_own_run(quick_run):
    """Every job Snakemake finished in the quick run has a row; the critical path runs from a job whose inputs no
    job wrote (preprocessing or the target lists) to the last job to end, through the seq2seq baseline."""
    finished = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", (quick_run / "snakemake_output.txt").read_text())
    jobs = tl.read_jobs(quick_run)
    assert sorted(jobs["rule"]) == sorted(r for r in finished if r != "all")
    assert (jobs["status"] == "done").all() and (jobs["seconds"] >= 0).all()
    table = tl.timeline(jobs)
    path = table[table["critical_path"]].sort_values("start_min")
    assert path["rule"].iloc[0] in {"preprocess", "malicious_lists"}
    assert path["end_min"].iloc[-1] == table["end_min"].max()
    assert "train_baseline" in set(path["rule"])
    assert (path["wait_s"].dropna() >= -1.0).all()      # each starts once the job before it has ended
