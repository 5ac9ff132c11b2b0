"""negtrain_core.stage: the adapter every workflow script calls, and the scripts' shape."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import os
import runpy
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from negtrain_core import gpu_slots, stage
from negtrain_core.data import preprocess
from negtrain_core.search.targets import TargetListError

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "workflow_scripts").glob("*.py"))


class Files(list):
    """A Snakemake ``Namedlist`` as far as the adapter reads it: a list of paths, also reachable by name."""

    def __init__(self, **named: str):
        super().__init__(named.values())
        self.__dict__.update(named)

    def __getitem__(self, key):
        return self.__dict__[key] if isinstance(key, str) else super().__getitem__(key)


def fake_snakemake(tmp_path: Path, threads: int = 1) -> SimpleNamespace:
    return SimpleNamespace(input=Files(table=str(tmp_path / "in.csv")), output=Files(out=str(tmp_path / "out.csv")),
                           log=Files(log=str(tmp_path / "logs" / "rule.log")), params=SimpleNamespace(),
                           wildcards=SimpleNamespace(), threads=threads)


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    """The adapter sets OMP_NUM_THREADS and torch's threads: both are put back after each test."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _fails_after_writing(out: str) -> None:
    Path(out).write_text("half\n")
    raise TargetListError("resources/targets/train_500.txt:3: duplicate target 'go away' (first on line 1)")


def test_a_failing_stage_ends_in_one_stderr_line_with_the_traceback_in_the_log(tmp_path, capsys):
    smk = fake_snakemake(tmp_path)
    with pytest.raises(SystemExit) as ended:
        stage.main(smk, _fails_after_writing, smk.output.out)
    line = "negtrain: resources/targets/train_500.txt:3: duplicate target 'go away' (first on line 1)"
    assert ended.value.code == 1
    assert capsys.readouterr().err == line + "\n"
    log = Path(smk.log[0]).read_text()
    assert line in log and "Traceback (most recent call last)" in log and "_fails_after_writing" in log
    assert not Path(smk.output.out).exists()                      # no output file left


def test_success_logs_every_logger_and_stderr_into_the_rule_log(tmp_path, capsys):
    smk = fake_snakemake(tmp_path, threads=2)

    def fn(x):
        logging.getLogger("negtrain_core.somewhere").info("stage line %d", x)
        print("a progress bar", file=__import__("sys").stderr)
        return x + 1

    handlers = logging.getLogger().handlers[:]
    assert stage.main(smk, fn, 41) == 42
    log = Path(smk.log[0]).read_text()
    assert "stage line 41" in log and "a progress bar" in log
    assert capsys.readouterr().err == "" and torch.get_num_threads() == 2
    assert logging.getLogger().handlers == handlers               # the root logger is as it was


def test_an_unexpected_error_names_the_file_it_carries(tmp_path, capsys):
    smk = fake_snakemake(tmp_path)
    missing = tmp_path / "results" / "test.parquet"
    with pytest.raises(SystemExit):
        stage.main(smk, lambda: missing.read_text())
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"negtrain: {missing}: No such file or directory (FileNotFoundError) -- check that file")
    assert err.rstrip().endswith(f"the full traceback is in {smk.log[0]}")


def test_an_unexpected_error_without_a_file_names_where_it_was_raised(tmp_path, capsys):
    smk = fake_snakemake(tmp_path)
    not_tar = tmp_path / "corpus.tgz"
    not_tar.write_bytes(b"<html>not found</html>")
    with pytest.raises(SystemExit):
        stage.main(smk, tarfile.open, str(not_tar))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("negtrain: unexpected ReadError at tarfile.py:")
    assert "traceback is in" in err
    line = stage.error_line(_raised(lambda: b"\xff".decode()), "logs/x.log")
    assert line.startswith("negtrain: unexpected UnicodeDecodeError at ") and "can't decode byte 0xff" in line


def test_a_job_takes_the_mps_settings_of_its_rule_before_its_stage_runs(tmp_path, monkeypatch):
    """Config ``mps`` reaches the job's environment before the stage function (which creates the CUDA context,
    when MPS reads it) runs, and the rule log says so; a rule named nowhere keeps MPS's defaults."""
    for name in (gpu_slots.MPS_PRIORITY_ENV, gpu_slots.MPS_SHARE_ENV):
        monkeypatch.delenv(name, raising=False)
    seen = []
    smk = fake_snakemake(tmp_path)
    smk.config = {"mps": {"below_normal": ["hits"], "active_thread_percentage": {"hits": 30}}}
    for rule in ("evaluate_model", "hits"):
        smk.rule = rule
        stage.main(smk, lambda: seen.append({k: os.environ.get(k)
                                             for k in (gpu_slots.MPS_PRIORITY_ENV, gpu_slots.MPS_SHARE_ENV)}))
    assert seen == [{gpu_slots.MPS_PRIORITY_ENV: None, gpu_slots.MPS_SHARE_ENV: None},
                    {gpu_slots.MPS_PRIORITY_ENV: "1", gpu_slots.MPS_SHARE_ENV: "30"}]
    assert "rule hits under NVIDIA MPS: CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=30 CUDA_MPS_CLIENT_PRIORITY=1" in \
        (tmp_path / "logs" / "rule.log").read_text()


def test_a_gpu_out_of_memory_error_says_how_to_give_a_job_more_memory():
    """torch's out-of-memory message is hundreds of characters; the line keeps its start and names the key that sets
    each job's share of a GPU."""
    def allocate():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
                                     "79.19 GiB of which 1.00 GiB is free. " + "Including non-PyTorch memory " * 20)

    line = stage.error_line(_raised(allocate), "logs/x.log")
    assert line.startswith("negtrain: the GPU ran out of memory at test_stage.py:")
    assert "CUDA out of memory. Tried to allocate 2.00 GiB" in line and "gpu_jobs_per_device" in line
    assert line.endswith("the full traceback is in logs/x.log") and len(line) < 400 and "\n" not in line


def test_a_raise_in_the_package_keeps_its_message():
    err = _raised(lambda: preprocess.split_ids(list("abc"), {"train_dialogues": None, "valid_dialogues": 2,
                                                              "test_dialogues": 2}, 1))
    assert type(err) is ValueError and stage.raised_on_purpose(err)
    assert stage.error_line(err) == "negtrain: " + str(err)
    assert not stage.raised_on_purpose(_raised(lambda: torch.zeros(2).view(3)))    # a bug inside torch


def _raised(fn) -> Exception:
    try:
        fn()
    except Exception as err:  # noqa: BLE001
        return err
    raise AssertionError("no exception")


# ---------------------------------------------------------------------------------------------- the scripts


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_workflow_script_is_thin_and_calls_one_stage_function(script: Path):
    """At most 30 lines, no def/class/lambda, one ``stage.main(snakemake, fn, ...)`` whose arguments bind to
    ``fn``'s signature."""
    text = script.read_text()
    move = "move the work into a function of negtrain_core that the script calls"
    assert len(text.splitlines()) <= 30, f"{script.name}: {len(text.splitlines())} lines, at most 30; {move}"
    tree = ast.parse(text)
    defined = [n.lineno for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
    assert not defined, f"{script.name}: a def, class or lambda at line {defined[0]}; {move}"
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "stage.main"]
    assert len(calls) == 1, (f"{script.name}: {len(calls)} calls of stage.main; one, "
                             f"stage.main(snakemake, <stage function>, <its arguments>), is the script")
    call = calls[0]
    assert ast.unparse(call.args[0]) == "snakemake", f"{script.name}: stage.main's first argument is snakemake"
    fn = _resolve(tree, ast.unparse(call.args[1]))
    inspect.signature(fn).bind(*([None] * (len(call.args) - 2)), **{k.arg: None for k in call.keywords})


def _resolve(tree: ast.Module, dotted: str):
    """The object a name of the script refers to, through its ``from X import Y [as Z]`` lines."""
    head, *rest = dotted.split(".")
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == head:
                    module = importlib.import_module(node.module)
                    obj = getattr(module, alias.name, None) or importlib.import_module(f"{node.module}.{alias.name}")
                    for part in rest:
                        obj = getattr(obj, part)
                    return obj
    raise AssertionError(f"{dotted} is not imported")


SETTINGS = SimpleNamespace(data=SimpleNamespace(name="mydata"), scale="quick")
# script -> (the rule's inputs, outputs and params, each path named after its key; the stage function's parameters
# that must receive them)
PLUMBING = {
    "table3": (dict(hits=["hits1", "hits2"], metrics=["metrics1"], lists=["lists1"], overlap="overlap",
                    seq2seq="seq2seq", negtr="negtr", test="test", vocab="vocab"),
               dict(table="table", figure="figure", samples="samples"),
               dict(settings=SETTINGS, not_run="not run: why"),
               dict(hit_paths=["hits1", "hits2"], metric_paths=["metrics1"], list_paths=["lists1"],
                    overlap_path="overlap", seq2seq_path="seq2seq", negtr_path="negtr", test_path="test",
                    vocab_path="vocab", table_out="table", figure_out="figure", samples_out="samples",
                    settings=SETTINGS, not_run_reason="not run: why")),
    "paper_comparison": (dict(table3="table3", table4="table4", table8="table8", table9="table9"),
                         dict(csv="csv", png="png"), dict(settings=SETTINGS),
                         dict(table_paths={t: t for t in ("table3", "table4", "table8", "table9")}, csv_out="csv",
                              png_out="png", dataset="mydata", scale="quick")),
    "table4": (dict(test="test", metrics=["metrics1", "metrics2"], responses=["responses1"]),
               dict(table4="table4", table9="table9", samples="samples"), dict(settings=SETTINGS),
               dict(test_path="test", metrics_paths=["metrics1", "metrics2"], responses_paths=["responses1"],
                    table4_out="table4", table9_out="table9", samples_out="samples", s=SETTINGS)),
}


@pytest.mark.parametrize("script", sorted(PLUMBING))
def test_a_workflow_script_hands_each_input_output_and_param_to_its_parameter(script, monkeypatch):
    inputs, outputs, params, expected = PLUMBING[script]
    smk = SimpleNamespace(input=Files(**inputs), output=Files(**outputs), params=SimpleNamespace(**params),
                          log=Files(), wildcards=SimpleNamespace(), threads=1)
    calls = []
    monkeypatch.setattr(stage, "main", lambda smk, fn, *args, **kw: calls.append(inspect.signature(fn).bind(
        *args, **kw).arguments))
    runpy.run_path(str(ROOT / "workflow_scripts" / f"{script}.py"), init_globals={"snakemake": smk})
    assert calls == [expected]
