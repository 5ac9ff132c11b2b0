"""Device selection from the config key ``device`` (auto | cpu | cuda | cuda:N), and which GPU a job runs on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

from negtrain_core import gpu_slots, stage

log = logging.getLogger(__name__)

_assigned: gpu_slots.Assignment | None = None       # this process's GPU, chosen once and kept for its lifetime


def resolve(name: str = "auto", jobs_per_device: int = 1) -> torch.device:
    """``auto`` is a GPU when one is visible, else cpu; asking for cuda without one is a one-line error.

    ``auto`` and ``cuda`` take a GPU slot (``gpu_slots``): with several visible GPUs, the GPU jobs of a run spread
    over them, ``jobs_per_device`` to a GPU at most; ``cuda:N`` is visible GPU N, unclaimed; a SLURM job uses the
    GPU SLURM gave it. The first call chooses, logs the GPU (physical id and name) and makes it torch's current GPU,
    so streams and graphs made without an index land there too; later calls in the process return the same GPU.

    On a GPU shared by ``jobs_per_device`` jobs (config ``gpu_jobs_per_device``) this process may use that share of
    its memory: a job that wants more gets out-of-memory in its own process (the trigger search then halves its
    chunks) instead of starving the others. Four jobs side by side on one GPU, one search had reserved 50 GiB and
    a neighbour's 476 MiB allocation failed. A job that Snakemake counts as k slots (``--set-resources
    RULE:gpu_slots=k``) takes k slots of its GPU and k shares of its memory (``gpu_slots.job_slots``).
    """
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"config 'device: {name}' asks for a GPU but torch sees none (use 'auto' or 'cpu')")
    asked = torch.device("cuda" if name == "auto" else name)            # cuda:N, or cuda without an index: a slot
    slots = gpu_slots.job_slots(jobs_per_device)
    device = torch.device("cuda", gpu(asked.index, jobs_per_device, slots).index)
    torch.cuda.set_device(device)
    if slots < jobs_per_device:
        torch.cuda.set_per_process_memory_fraction(slots / jobs_per_device, device)
    return device


@contextlib.contextmanager
def tf32_matmul(enabled: bool = True) -> Iterator[None]:
    """float32 matrix products (cuBLAS) on TensorFloat-32 tensor cores inside the block when ``enabled``: inputs
    rounded to a 10-bit mantissa, float32 accumulation; GPU only, the CPU ignores the flag. A CUDA graph captured
    inside keeps the kernels chosen then. Uses torch's ``allow_tf32`` flag, the one setting of it in this package:
    torch refuses to read that flag once its newer ``fp32_precision`` API has set it too."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


class GraphCaptureError(RuntimeError):
    """A CUDA graph that a config key asked for could not be captured; the message names the key."""


@contextlib.contextmanager
def capture_graph(graph: "torch.cuda.CUDAGraph", option: str, **kwargs: Any) -> Iterator[None]:
    """``torch.cuda.graph(graph, **kwargs)``, with an error while capturing (an operation a graph cannot hold, a
    driver that refuses) turned into one line naming the config key ``option`` that turns the graph off. Out of
    memory passes unchanged: callers halve their batches on it."""
    try:
        with torch.cuda.graph(graph, **kwargs):
            yield
    except torch.OutOfMemoryError:
        raise
    except Exception as err:                          # capture errors come as RuntimeError and others from CUDA
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, torch.OutOfMemoryError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:                         # ending the capture failed after an out-of-memory error
            raise torch.OutOfMemoryError(str(cause)) from err
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise GraphCaptureError(f"capturing a CUDA graph failed ({type(err).__name__}: {first}); "
                                f"config '{option}: false' runs this step without graphs") from err


def gpu(index: int | None, jobs_per_device: int, slots: int = 1) -> gpu_slots.Assignment:
    """This process's GPU: chosen (and, for ``index`` None, its slot claimed) on the first call, then the same."""
    global _assigned
    if _assigned is None or (index is not None and index != _assigned.index):
        if _assigned is not None:
            gpu_slots.release(_assigned)                            # another GPU asked for by name: free the slot
        _assigned = gpu_slots.assign(index, torch.cuda.device_count(), jobs_per_device, on_wait=stage.say,
                                     slots=slots)
        info = describe(torch.device("cuda", _assigned.index))
        log.info("GPU job on cuda:%d: GPU %s (%s, %s), %s", _assigned.index, _assigned.physical,
                 info.get("name", "name unknown"), info.get("uuid", "uuid unknown"), _assigned.how)
    return _assigned


def describe(device: torch.device) -> dict[str, Any]:
    """What a job ran on, as primitives (for logs and checkpoints): ``{"type": "cpu"}``, or for a GPU its index
    among the visible ones, its physical id (CUDA_VISIBLE_DEVICES's entry), and the name and UUID CUDA reports."""
    if device.type != "cuda":
        return {"type": device.type}
    index = torch.cuda.current_device() if device.index is None else device.index
    own = _assigned is not None and _assigned.index == index
    out: dict[str, Any] = {"type": "cuda", "index": index,
                           "physical": _assigned.physical if own else gpu_slots.visible_gpus(index + 1)[index]}
    if own:
        out["assigned"] = _assigned.how
    try:
        props = torch.cuda.get_device_properties(index)
        out["name"] = str(props.name)
        out["uuid"] = str(props.uuid)
    except (AttributeError, RuntimeError, AssertionError):          # a torch or driver that cannot say
        pass
    return out
