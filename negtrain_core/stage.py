"""The one adapter between a workflow script and its stage function, and the convention every stage function follows.

A stage function (what a rule computes; workflow_scripts/<rule>.py calls exactly one, through ``main``):
- takes its input paths, then its output paths, then the typed settings (``config.Settings`` or one of its blocks),
  then explicit params (wildcards, rule params), and returns what it wrote (a table, a curve) or None;
- logs through ``logging.getLogger(__name__)`` of its module and imports what it needs at module top;
- writes each output atomically (``negtrain_core.io``) and, for anything the user must fix, raises an exception
  whose message is one line naming the file (and line) or config key and saying what to do.

``main(snakemake, fn, *args, **kwargs)`` runs ``fn(*args, **kwargs)`` for the rule: the rule's log is opened once
and receives every logger's records and anything written to stderr (progress bars, warnings); torch gets
``snakemake.threads`` threads. Before ``fn`` runs, every input the pipeline wrote (under ``results/``) is checked to
be whole (``io.check_artifact``: Snakemake would use a truncated file that is newer than its inputs), and what an
interrupted earlier attempt left beside the outputs (``io.remove_temporaries``) is deleted. Any exception ends the
job with one line on stderr (what Snakemake shows on the terminal), the same line and the full traceback in the
rule's log, no output file of the rule left, and exit status 1. An error the package raises on purpose (a class of
its own, or a ``raise`` in its code) keeps its message; any other error is named as unexpected, with the file it
carries (an ``OSError``'s) or where it was raised. A SIGINT (Ctrl-C) ends it the same way, with exit status 130.

``say(line)`` is how a stage tells the user something that is not an error (problems it tolerated): one line on
the terminal, which stderr no longer reaches inside ``main``, and the same line in the rule's log.
"""

from __future__ import annotations

import contextlib
import json
import linecache
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

from negtrain_core import config, gpu_slots, io

PACKAGE = Path(__file__).resolve().parent
PREFIX = "negtrain: "
LOG_FORMAT = "%(asctime)s %(message)s"
ARTIFACTS = "results"           # the folder (relative to the working directory) that holds what the rules write
INTERRUPTED = 130               # a job's exit status after SIGINT (128 + 2, the shell's)

log = logging.getLogger(__name__)
T = TypeVar("T")


def main(smk: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the stage function ``fn(*args, **kwargs)`` as the rule of ``smk`` (the ``snakemake`` object of a
    workflow script: ``log``, ``output``, ``threads``). On any exception: one line on stderr, the line and the
    traceback in the log, the rule's outputs removed, ``SystemExit(1)``."""
    terminal = sys.stderr
    log_path = str(smk.log[0]) if len(smk.log) else None
    with _rule_log(log_path, terminal), _saying_to(terminal if log_path is not None else None):
        try:
            set_mps(smk)
            set_slots(smk)
            set_threads(int(smk.threads))
            for path in smk.output:
                io.remove_temporaries(path)
            check_inputs(smk.input)
            result = fn(*args, **kwargs)
            record_reads(smk)
            return result
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 -- every error ends in one line
            if isinstance(err, KeyboardInterrupt):      # Ctrl-C: SIGINT reaches every job of the terminal's group
                line, status = interrupted_line(getattr(smk, "rule", None), log_path), INTERRUPTED
            else:
                line, status = error_line(err, log_path), 1
            log.error("%s", line, exc_info=err)
            remove_outputs(smk.output)
    print(line, file=terminal)
    raise SystemExit(status)


# where ``say`` prints besides the log: the terminal while ``main`` sends stderr to a rule log, else None (stderr)
_terminal: TextIO | None = None


def say(line: str) -> None:
    """Tell the user ``line`` (not an error: a stage goes on): on the terminal and, under ``main``, in the rule's
    log too. Outside ``main``, or when the rule has no log, it goes to stderr once. Prefixed ``negtrain: ``."""
    text = line if line.startswith(PREFIX) else PREFIX + line
    if _terminal is None:
        print(text, file=sys.stderr, flush=True)
        return
    log.warning("%s", text)
    print(text, file=_terminal, flush=True)


@contextlib.contextmanager
def _saying_to(terminal: TextIO | None) -> Iterator[None]:
    """``say`` prints to ``terminal`` inside the block (None: to stderr)."""
    global _terminal
    saved, _terminal = _terminal, terminal
    try:
        yield
    finally:
        _terminal = saved


def record_reads(smk: Any) -> None:
    """With ``NEGTRAIN_SETTINGS_READS`` set (a folder): write there the settings fields this job read
    (``config.settings_read``, from the recorded settings the rules pass when it is set), one JSON file a job."""
    folder = os.environ.get(config.READS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        record = {"rule": smk.rule, "read": config.settings_read(), "output": [str(p) for p in smk.output]}
        io.atomic_write_text(Path(folder) / f"{smk.rule}.{os.getpid()}.json", json.dumps(record))


def check_inputs(inputs: Any) -> None:
    """``io.check_artifact`` on each input of the rule that the pipeline wrote (a path under ``ARTIFACTS``):
    files the user gives (raw corpora, target lists, ratings) have checks of their own, with other advice."""
    io.check_artifacts(p for p in inputs if Path(p).parts[:1] == (ARTIFACTS,))


@contextlib.contextmanager
def _rule_log(path: str | None, terminal: TextIO) -> Iterator[None]:
    """Every logger (INFO and up) and stderr into the file at ``path``, opened once, line-buffered (no log: the
    terminal); the root logger's handlers and level are restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    with contextlib.ExitStack() as stack:
        stream = terminal
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            stream = stack.enter_context(open(path, "w", buffering=1, encoding="utf-8"))
            stack.enter_context(contextlib.redirect_stderr(stream))
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.handlers, root.level = [handler], logging.INFO
        try:
            yield
        finally:
            handler.flush()
            root.handlers, root.level = saved


def set_mps(smk: Any) -> None:
    """The NVIDIA MPS client priority and share of the SMs that config ``mps`` gives this job's rule
    (``gpu_slots.mps_environment``), in the environment before the stage creates its CUDA context, when MPS reads
    them; logged when there are any."""
    mps = (getattr(smk, "config", None) or {}).get("mps") or {}
    env = gpu_slots.mps_environment(getattr(smk, "rule", ""), mps)
    if env:
        os.environ.update(env)
        log.info("rule %s under NVIDIA MPS: %s", smk.rule, " ".join(f"{k}={v}" for k, v in sorted(env.items())))


def set_slots(smk: Any) -> None:
    """How many GPU slots Snakemake counts this job as (its resource ``gpu_slots``, 1 unless ``--set-resources``
    changes it), for ``device.resolve`` to claim as many of its GPU (``gpu_slots.JOB_SLOTS_ENV``); unset for a rule
    without the resource."""
    slots = getattr(getattr(smk, "resources", None), "gpu_slots", None)
    if slots is None:
        os.environ.pop(gpu_slots.JOB_SLOTS_ENV, None)
        return
    os.environ[gpu_slots.JOB_SLOTS_ENV] = str(slots)
    if str(slots) != "1":
        log.info("rule %s counts as %s GPU slots: it takes as many of its GPU's (on a CPU: nothing)", smk.rule, slots)


def set_threads(threads: int) -> None:
    """torch's intra-op threads: the rule's ``threads`` (in this process, and for a torch imported later)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def remove_outputs(outputs: Any) -> None:
    """Delete the rule's output files that exist (a failed job leaves none behind)."""
    for path in outputs:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            Path(path).unlink()


# ---------------------------------------------------------------------------------------------- the one line


def error_line(err: BaseException, log_path: str | None = None) -> str:
    """``err`` as the one line the user sees: ``negtrain: <what> -- <what to do>``.

    Deliberate errors (``raised_on_purpose``) keep their message. Others say they are unexpected and name the
    file the exception (or its cause) carries, else the code line that raised it; both point at the traceback.
    """
    text = first_line(err)
    if raised_on_purpose(err):
        return text if text.startswith(PREFIX) else PREFIX + text
    see = f"the full traceback is in {log_path}" if log_path else "the full traceback is above"
    kind = type(err).__name__
    if kind == "OutOfMemoryError":                    # torch's; a CUDA message runs to several hundred characters
        return (f"{PREFIX}the GPU ran out of memory at {raised_at(err.__traceback__)} ({text[:160]}) -- give each "
                f"job more: fewer gpu_jobs_per_device (each of N jobs may use 1/N of a GPU) or smaller batches; {see}")
    failed = file_error(err)
    if failed is not None:
        reason = failed.strerror or first_line(failed)
        return f"{PREFIX}{failed.filename}: {reason} ({kind}) -- check that file and rerun; {see}"
    return f"{PREFIX}unexpected {kind} at {raised_at(err.__traceback__)}: {text} -- {see}"


def interrupted_line(rule: str | None, log_path: str | None = None) -> str:
    """The one line of a job stopped by SIGINT (Ctrl-C): no traceback on the terminal, where every running job
    would print its own; the traceback goes to the rule's log."""
    where = f"; where it stopped: {log_path}" if log_path else ""
    return (f"{PREFIX}{f'rule {rule}' if rule else 'job'} interrupted (SIGINT), its outputs removed -- run the same "
            f"command again: training stages resume after their last finished epoch{where}")


def first_line(err: BaseException) -> str:
    """The first non-empty line of ``str(err)`` (the class name when empty)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def raised_on_purpose(err: BaseException) -> bool:
    """A class the package defines (``ConfigError``, ``TargetListError``, ``FrequentAbort``...), or any exception whose
    innermost frame is a ``raise`` statement in the package (a reader's one-line ``ValueError``). A unicode error
    is never one: its message cannot name the file."""
    if type(err).__module__.split(".")[0] == PACKAGE.name:
        return True
    frame = _innermost(err.__traceback__)
    if frame is None or isinstance(err, UnicodeError) or not _in_package(frame[0]):
        return False
    return linecache.getline(frame[0], frame[1]).lstrip().startswith("raise ")


def file_error(err: BaseException) -> OSError | None:
    """The first ``OSError`` with a file name in ``err`` and its causes / contexts."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.filename:
            return err
        err = err.__cause__ or err.__context__
    return None


def raised_at(tb: TracebackType | None) -> str:
    """``file:line`` of the innermost frame in the package (else the innermost frame), relative to the repository."""
    frames = [(f.filename, f.lineno) for f in traceback.extract_tb(tb)]
    ours = [f for f in frames if _in_package(f[0])]
    if not (ours or frames):
        return "?"
    name, line = (ours or frames)[-1]
    shown = Path(name).resolve().relative_to(PACKAGE.parent) if ours else Path(name).name
    return f"{shown}:{line}"


def _innermost(tb: TracebackType | None) -> tuple[str, int] | None:
    frames = traceback.extract_tb(tb)
    return (frames[-1].filename, frames[-1].lineno or 0) if frames else None


def _in_package(filename: str) -> bool:
    """A file of the package other than this one (the adapter's own frame raises nothing)."""
    path = Path(filename).resolve()
    return path.is_relative_to(PACKAGE) and path != Path(__file__).resolve()
