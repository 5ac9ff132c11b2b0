"""Tensorizing (context, response) pairs, and mini-batches.

Source side (release, docs/release.md#data): the previous utterance + ``<eou>``, the LAST ``max_len``
tokens kept, left-padded with ``<pad>`` to exactly ``max_len`` (S). Target side: ``<s>`` + the first ``max_len - 1``
words + ``</s>`` (paper §2 footnote 1: ``</s>`` is one of the at most ``max_len`` output tokens), right-padded
with ``<pad>`` to exactly ``max_len + 1`` (T). Every batch therefore has the static shape (B, S), (B, T).
With ``preprocess.target_cut: release`` the target is the release's instead (myutil.py L56-60,
docs/release.md#data): ``<s>`` + words + ``</s>`` cut to ``max_len`` ids *including* ``<s>``, so at most
``max_len - 1`` positions are scored and a response of ``max_len - 1`` words or more loses its ``</s>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from torch import Tensor

from negtrain_core.config import DataSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, Vocab


class PairTensors(NamedTuple):
    """src: (N, S) left-padded source ids; tgt: (N, T) ``<s> y </s> <pad>..`` target ids."""

    src: Tensor
    tgt: Tensor

    def __len__(self) -> int:
        return self.src.shape[0]

    def to(self, device: torch.device | str) -> "PairTensors":
        return PairTensors(self.src.to(device), self.tgt.to(device))


def encode_source(tokens: Sequence[str], vocab: Vocab, max_len: int = 15, eou: bool = True) -> list[int]:
    """tokens (+ ``<eou>``), the last ``max_len`` ids kept, left-padded with ``<pad>`` to ``max_len``."""
    ids = vocab.encode(tokens) + ([EOU_ID] if eou else [])
    ids = ids[-max_len:]
    return [PAD_ID] * (max_len - len(ids)) + ids


def encode_target(tokens: Sequence[str], vocab: Vocab, max_len: int = 20, cut: str = "paper") -> list[int]:
    """Not padded. ``cut`` paper: ``<s>`` + the first ``max_len - 1`` ids + ``</s>`` (at most ``max_len + 1`` ids);
    release: ``<s>`` + ids + ``</s>`` cut to its first ``max_len`` ids (``</s>`` lost past ``max_len - 2`` words)."""
    ids = [BOS_ID] + vocab.encode(tokens[: max_len - 1]) + [EOS_ID]
    return ids[:max_len] if cut == "release" else ids


def pad_right(rows: Sequence[Sequence[int]], width: int) -> Tensor:
    """rows of at most ``width`` ids -> (N, width) LongTensor right-padded with ``<pad>``."""
    padded = [list(row) + [PAD_ID] * (width - len(row)) for row in rows]
    return torch.tensor(padded, dtype=torch.long).reshape(len(rows), width)


def tensorize(df: pd.DataFrame, vocab: Vocab, data_settings: DataSettings) -> PairTensors:
    """A pairs table (columns ``source``, ``target``: space-joined tokens) -> src (N, S), tgt (N, T).

    S = ``max_source_len``, T = ``max_target_len + 1``.
    """
    s, t = data_settings.max_source_len, data_settings.max_target_len
    src = [encode_source(x.split(), vocab, s, data_settings.source_eou) for x in df["source"]]
    tgt = [encode_target(y.split(), vocab, t, data_settings.target_cut) for y in df["target"]]
    src_t = torch.tensor(src, dtype=torch.long).reshape(len(src), s)
    return PairTensors(src_t, pad_right(tgt, t + 1))


def with_first_turns(df: pd.DataFrame) -> pd.DataFrame:
    """A pairs table whose targets are every utterance of its dialogues: the rows of ``df``, then one row per
    dialogue whose target is its first utterance (the source of its lowest-``turn`` pair; source empty). The LM of
    ``train.lm_text: utterances`` trains on these, as the release's LM data holds every utterance."""
    missing = {"dialogue_id", "turn"} - set(df.columns)
    if missing:
        raise ValueError(f"train.lm_text: utterances needs the pairs' dialogue_id and turn columns; "
                         f"missing {sorted(missing)}")
    first = df.sort_values(["dialogue_id", "turn"], kind="stable").drop_duplicates("dialogue_id")
    extra = pd.DataFrame({"dialogue_id": first["dialogue_id"], "turn": first["turn"] - 1, "source": "",
                          "target": first["source"]})
    return pd.concat([df, extra[extra["target"].str.len() > 0]], ignore_index=True)


def batch_order(n: int, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str | None = None, drop_last: bool = False) -> list[Tensor]:
    """Index tensors of the mini-batches of ``n`` rows (the last one may be smaller, or with ``drop_last`` is
    dropped unless it is the only one: the release's loader yields full batches); one randperm when shuffled (with
    the CPU ``generator``), moved to ``device`` in one copy."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    chunks = list(order.to(device).split(batch_size))
    if drop_last and len(chunks) > 1 and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks


def batches(tensors: PairTensors, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[PairTensors]:
    """Mini-batches (B, S), (B, T) of ``tensors`` (on their device); order from ``generator`` when shuffled."""
    for idx in batch_order(len(tensors), batch_size, shuffle, generator, tensors.src.device):
        yield PairTensors(tensors.src[idx], tensors.tgt[idx])


def load_pairs(path: str | Path, vocab: Vocab, data: DataSettings, device: torch.device | str,
               max_pairs: int | None = None) -> PairTensors:
    """A pairs Parquet file (its first ``max_pairs`` rows; None: all) tensorized with ``vocab``, on ``device``."""
    frame = pd.read_parquet(path)
    return tensorize(frame if max_pairs is None else frame.head(max_pairs), vocab, data).to(device)
