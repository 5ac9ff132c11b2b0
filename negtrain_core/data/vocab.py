"""Vocabulary: special tokens, top-K construction, ids, hashing.

Special ids 0-4 follow the authors' release (docs/release.md#data): ``</s> <unk> <s> <pad> <eou>``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

EOS, UNK, BOS, PAD, EOU = "</s>", "<unk>", "<s>", "<pad>", "<eou>"
SPECIALS: tuple[str, ...] = (EOS, UNK, BOS, PAD, EOU)
EOS_ID, UNK_ID, BOS_ID, PAD_ID, EOU_ID = range(5)


@dataclass(frozen=True)
class Vocab:
    """An ordered token list; ids are positions. The first five are ``SPECIALS``."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"vocabulary must start with {' '.join(SPECIALS)}, got {' '.join(self.tokens[:5])}")
        object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids, out-of-vocabulary words mapped to ``<unk>``."""
        return [self.index.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """Tokens of ``ids``; with ``strip``, stops at ``</s>`` and drops ``<s>``/``<pad>``."""
        out = []
        for i in ids:
            i = int(i)
            if strip and i == EOS_ID:
                break
            if strip and i in (BOS_ID, PAD_ID):
                continue
            out.append(self.tokens[i])
        return out

    @property
    def sha256(self) -> str:
        """Hash of the token list: a checkpoint records it and refuses a vocabulary that differs."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()

    @classmethod
    def build(cls, sentences: Iterable[Iterable[str]], size: int) -> "Vocab":
        """The ``size`` most frequent words (ties broken alphabetically) after the specials."""
        counts = Counter(t for s in sentences for t in s)
        for s in SPECIALS:
            counts.pop(s, None)
        words = sorted(counts, key=lambda w: (-counts[w], w))[:size]
        return cls(SPECIALS + tuple(words))

    def save(self, path: str | Path) -> None:
        """One token per line, written atomically."""
        from negtrain_core.io import atomic_write_text

        atomic_write_text(path, "\n".join(self.tokens) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        return cls(tuple(Path(path).read_text(encoding="utf-8").split("\n")[:-1]))
