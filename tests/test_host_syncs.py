"""tests/host_syncs.py finds, on the CPU, the reads that would synchronise the host with a GPU: each kind it claims
to see, and nothing in code that only queues work."""

import torch

from host_syncs import HostSyncs


def test_every_kind_of_read_back_is_counted_by_its_line():
    x = torch.arange(6.0)
    methods = (torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy)
    with HostSyncs() as h:
        x.sum().item()
        int(x.max())
        if (x > 2).any():
            pass
        x[x > 2]                                                 # a boolean mask: a nonzero inside the kernel
        x.nonzero()
        x.tolist()
        x.cpu()
        torch.ones(3).repeat_interleave(torch.tensor([1, 2, 0]))
        x.numpy()
        torch.equal(x, x)
        x.unique()
        torch.bincount(x.long())
        x.masked_select(x > 2)
        torch.unique_consecutive(x)
        y = x.clone()
        y[y > 2] = 0.0                                           # a boolean-mask write
    kinds = sorted({line.split(" ")[1] for line in h.lines})
    assert kinds == ["_local_scalar_dense", "_unique2", "bincount", "cpu", "equal", "index", "index_put_",
                     "masked_select", "nonzero", "numpy", "repeat_interleave", "tolist", "unique_consecutive"]
    assert h.lines[f"test_host_syncs.py:{_line('x.sum().item()')} _local_scalar_dense"] == 1
    assert h.total == 8 + 7          # item, int, any, index, nonzero, tolist, cpu, r_i; then the seven after them
    assert (torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy) == methods          # patches undone


def test_queued_work_is_not_counted():
    x = torch.randn(4, 5)
    with HostSyncs() as h:
        y = torch.where(x > 0, x, 0.0).softmax(-1).topk(2, dim=-1).indices
        x[torch.tensor([0, 2])] = 1.0                            # a long index: checked on the device
        x.repeat_interleave(2, dim=0)
        torch.ones(3).repeat_interleave(torch.tensor([1, 2, 0]), output_size=3)   # its size given: no read
        torch.zeros(4, 5).scatter_(1, y, 1.0).sum(0).max()
    assert h.total == 0, dict(h.lines)


def _line(text: str) -> int:
    src = open(__file__).read().splitlines()
    return next(i for i, line in enumerate(src, 1) if text in line and "_line(" not in line)
