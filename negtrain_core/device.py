"""Device selection from the config key ``device`` (auto | cpu | cuda | cuda:N)."""

from __future__ import annotations

import torch


def resolve(name: str = "auto", jobs_per_device: int = 1) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu; asking for cuda without one is a one-line error.

    On a GPU shared by ``jobs_per_device`` jobs (config ``gpu_jobs_per_device``) this process may use that share of
    its memory: a job that wants more gets out-of-memory in its own process (the trigger search then halves its
    chunks) instead of starving the others. Four jobs side by side on one GPU, one search had reserved 50 GiB and
    a neighbour's 476 MiB allocation failed.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"config 'device: {name}' asks for a GPU but torch sees none (use 'auto' or 'cpu')")
    if device.type == "cuda" and jobs_per_device > 1:
        torch.cuda.set_per_process_memory_fraction(1 / jobs_per_device, device.index)  # None: the current GPU
    return device
