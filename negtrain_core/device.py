"""Device selection from the config key ``device`` (auto | cpu | cuda | cuda:N)."""

from __future__ import annotations

import torch


def resolve(name: str = "auto") -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu; asking for cuda without one is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config 'device: {name}' asks for a GPU but torch sees none (use 'auto' or 'cpu')")
    return device
