"""docs/reproduction/switchboard/whole_set_budget.py: the whole set's budget arithmetic reads the committed stage
times it names, and the Switchboard README quotes what it prints."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "reproduction" / "switchboard" / "whole_set_budget.py"


def test_the_readme_quotes_the_budget_the_committed_stage_times_give(capsys):
    spec = importlib.util.spec_from_file_location("whole_set_budget", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    out = capsys.readouterr().out
    assert len(module.OTHER_JOBS) == len({(run, stage) for run, stage, _ in module.OTHER_JOBS}) == 26
    path = re.search(r"critical path on an H200, the GPU to itself: +\d+ s = ([\d.]+) min", out).group(1)
    fast = re.search(r"with Algorithm 2 in TF32 \(1.17x\): +\d+ s = ([\d.]+) min", out).group(1)
    jobs = re.search(r"every other job after the baseline: \d+ s = (\d+) job-minutes, 26 jobs", out).group(1)
    at_once = re.search(r"min for \d+ job-minutes .*: ([\d.]+) jobs' work at once", out).group(1)
    one_gpu, four = re.search(r"on one GPU at 1.89x: (\d+) min in all; the other jobs on three more GPUs at that "
                              r"rate: (\d+) min", out).groups()
    readme = " ".join((SCRIPT.parent / "README.md").read_text().split())
    assert (path, fast, jobs, at_once, one_gpu, four) == ("25.7", "23.1", "95", "6.1", "66", "17")
    for quoted in (f"about {path} minutes with the GPU to itself", f"{fast} minutes with Algorithm 2 in TF32",
                   f"adds {jobs} job-minutes (26 jobs", f"{at_once} jobs' work at once",
                   f"takes about {one_gpu} minutes", f"the other jobs' {four} minutes"):
        assert quoted in readme, quoted
