"""Malicious target lists, read defensively (paper §4.2; issue 4).

A list holds one target per line in the paper's tokenisation (space-separated tokens, no special tokens; a
leading ``<s>`` and a trailing ``</s>``, as in the release's files, are tolerated and dropped). Targets with
out-of-vocabulary words are reported one by one and, by ``oov_policy``, skipped (the default, as the release
discards them) or kept with ``<unk>`` in place of the unknown words. An empty list, or one with nothing left
after skipping, stops with one line naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from negtrain_core.data.vocab import BOS, BOS_ID, EOS, EOS_ID, PAD_ID, Vocab

OOV_POLICIES = ("skip", "unk")


class TargetListError(ValueError):
    """A target list that cannot be used, stated in one line naming the file."""


@dataclass(frozen=True)
class TargetList:
    """The usable targets of one list file.

    texts:   kept targets, space-joined tokens (as written in the file, OOV words included under ``unk``).
    ids:     their token ids, no specials (``<unk>`` for OOV words under ``unk``).
    oov:     every target that has out-of-vocabulary words, with those words, in file order.
    skipped: how many targets were left out (``skip`` policy: ``len(oov)``; ``unk``: 0).
    """

    path: str
    texts: tuple[str, ...]
    ids: tuple[tuple[int, ...], ...]
    oov: tuple[tuple[str, tuple[str, ...]], ...]
    skipped: int

    def report(self) -> list[str]:
        """One line per target with out-of-vocabulary words, then a summary line."""
        action = "skipped" if self.skipped else "kept with <unk>"
        lines = [f"{self.path}: target '{t}' has out-of-vocabulary words {list(w)}: {action}" for t, w in self.oov]
        lines.append(f"{self.path}: {len(self.texts)} targets kept, {self.skipped} skipped "
                     f"({len(self.oov)} with out-of-vocabulary words)")
        return lines


def parse_line(line: str) -> list[str]:
    """Tokens of one list line; a leading ``<s>`` and a trailing ``</s>`` are dropped."""
    tokens = line.split()
    if tokens[:1] == [BOS]:
        tokens = tokens[1:]
    if tokens[-1:] == [EOS]:
        tokens = tokens[:-1]
    return tokens


def read_targets(path: str | Path, vocab: Vocab, oov_policy: str = "skip") -> TargetList:
    """Read the list at ``path``; blank lines are ignored. Raises ``TargetListError`` naming the file."""
    if oov_policy not in OOV_POLICIES:
        raise TargetListError(f"{path}: oov_policy must be one of {OOV_POLICIES}, got '{oov_policy}'")
    lines = [parse_line(raw) for raw in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [tokens for tokens in lines if tokens]
    if not lines:
        raise TargetListError(f"target list {path} holds no target")
    texts, ids, oov = [], [], []
    for tokens in lines:
        unknown = tuple(w for w in tokens if w not in vocab)
        if unknown:
            oov.append((" ".join(tokens), unknown))
            if oov_policy == "skip":
                continue
        texts.append(" ".join(tokens))
        ids.append(tuple(vocab.encode(tokens)))
    if not texts:
        raise TargetListError(f"target list {path}: all {len(lines)} targets have out-of-vocabulary words "
                              f"(oov_policy skip); nothing left to search")
    skipped = len(oov) if oov_policy == "skip" else 0
    return TargetList(str(path), tuple(texts), tuple(ids), tuple(oov), skipped)


def target_tensor(ids: Sequence[Sequence[int]]) -> Tensor:
    """Token ids of N targets -> (N, T) ``<s> y </s>`` right-padded with ``<pad>``, T = longest + 2.

    Targets are not truncated: the malicious lists are short sentences, and cutting one would change it.
    """
    T = max(len(y) for y in ids) + 2
    out = torch.full((len(ids), T), PAD_ID, dtype=torch.long)
    for i, y in enumerate(ids):
        out[i, : len(y) + 2] = torch.tensor([BOS_ID, *y, EOS_ID], dtype=torch.long)
    return out
