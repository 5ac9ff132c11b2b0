"""Host synchronisations a piece of code would make on a GPU, found on the CPU.

On CUDA a host synchronisation (reading a value back: ``.item()``, ``int(t)``, ``if t.any():``, a boolean mask
index, ``nonzero``, ``.cpu()``) stalls the host until the GPU has finished, and inside a CUDA graph capture it is an
error. ``torch.cuda.set_sync_debug_mode`` finds them on a GPU only; ``HostSyncs`` finds, on any device, the operators
that synchronise when their tensors are on CUDA (a ``TorchDispatchMode`` sees every operator the code runs, the
backward's included) and the Python-level reads that never reach an operator on the CPU (``.tolist()``, ``.cpu()``,
``.numpy()``), each with the line of project code that made it. It cannot see device-to-host copies written as
``.to("cpu")``: the project writes ``.cpu()``.
"""

from __future__ import annotations

import traceback
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
# operators whose CUDA kernels read a value back to size their output or answer on the host
_SYNCING = {
    _aten._local_scalar_dense.default,          # .item(), int(t), float(t), bool(t), if t:
    _aten.nonzero.default, _aten.argwhere.default, _aten.masked_select.default,
    _aten.unique_consecutive.default, _aten._unique2.default, _aten.unique_dim.default,
    _aten.bincount.default, _aten.equal.default,
}
_MASK_INDEXED = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default,
                 _aten._index_put_impl_.default}
_READS = ("tolist", "cpu", "numpy")


def _caller() -> str:
    """file:line of the innermost frame outside torch and this module."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = frame.filename.replace("\\", "/")
        name = path.rsplit("/", 1)[-1]
        if "/torch/" not in path and name != "host_syncs.py":
            return f"{name}:{frame.lineno}"
    return "?"


def _syncs(func, args, kwargs) -> bool:
    if func in _SYNCING:
        return True
    if func is _aten.repeat_interleave.Tensor:
        return kwargs.get("output_size") is None
    if func in _MASK_INDEXED:                   # a boolean index becomes a nonzero inside the kernel
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        return any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in indices)
    return False


class HostSyncs(TorchDispatchMode):
    """``with HostSyncs() as s: ...``: ``s.lines`` counts the would-be synchronisations by the line that made them."""

    def __init__(self):
        super().__init__()
        self.lines: Counter[str] = Counter()
        self._saved: dict[str, object] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _syncs(func, args, kwargs):
            self.lines[f"{_caller()} {func.overloadpacket.__name__}"] += 1
        return func(*args, **kwargs)

    def __enter__(self):
        for name in _READS:
            original = getattr(torch.Tensor, name)
            self._saved[name] = original

            def read(t, *a, _original=original, _name=name, **kw):
                self.lines[f"{_caller()} {_name}"] += 1
                return _original(t, *a, **kw)

            setattr(torch.Tensor, name, read)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        return super().__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.lines.values())
