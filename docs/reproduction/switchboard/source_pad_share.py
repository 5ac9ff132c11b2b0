"""How often the release's padding width differs from ours: the share of Switchboard mini-batches whose longest
source is shorter than ``preprocess.max_source_len``.

  PYTHONPATH=. python docs/reproduction/switchboard/source_pad_share.py results/switchboard/data

The release left-pads each mini-batch's sources to its longest (myutil.py L45-54, L71); this project pads every
source to max_source_len (15), so the two differ only in a mini-batch none of whose sources reaches 15 tokens
(``<eou>`` counted). Prints, per split and batch size, those batches in file order (the release's) and in one
seeded shuffle, and how many pad columns the release would have left out of them.
"""

import sys
from pathlib import Path

import torch

from negtrain_core.config import DataSettings
from negtrain_core.data.tensors import load_pairs
from negtrain_core.data.vocab import PAD_ID, Vocab


def main(data: Path) -> None:
    vocab = Vocab.load(data / "vocab.txt")
    settings = DataSettings(name="switchboard", reader="swda_markup", raw={}, split={}, vocab_size=len(vocab))
    for split in ("train", "test"):
        src = load_pairs(data / f"{split}.parquet", vocab, settings, "cpu").src
        length = (src != PAD_ID).sum(1)                       # real tokens per source, <eou> included
        at_cap = (length == settings.max_source_len).float().mean().item()
        print(f"{split}: {len(src):,} pairs, {at_cap:.1%} of sources at {settings.max_source_len} tokens")
        for batch_size in (32, 64):
            for order, name in ((torch.arange(len(src)), "file order"),
                                (torch.randperm(len(src), generator=torch.Generator().manual_seed(0)), "shuffled")):
                n = len(src) // batch_size
                longest = length[order[: n * batch_size]].view(n, batch_size).max(1).values
                short = longest < settings.max_source_len
                cols = (settings.max_source_len - longest[short]).sum().item()
                print(f"  batch {batch_size}, {name}: {short.sum().item()} of {n} batches shorter "
                      f"({short.float().mean().item():.1%}), {cols} pad columns in all")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
