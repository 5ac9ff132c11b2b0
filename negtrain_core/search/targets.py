"""Malicious target lists, read defensively (paper §4.2).

A list holds one target per line in the paper's tokenisation (space-separated tokens, no special tokens; a
leading ``<s>`` and a trailing ``</s>``, as in the release's files, are tolerated and dropped), in UTF-8. Targets
with out-of-vocabulary words are reported one by one and, by ``oov_policy``, skipped (the default, as the release
discards them) or kept with ``<unk>`` in place of the unknown words. Bytes that are not UTF-8, a blank line, a
target longer than a response can be (``max_len``), an empty list, or one with nothing left after skipping stop
with one line naming the file and line: the configured file when the list read is a line-by-line copy of it
(``check_configured_list`` checks a configured list against a dataset's vocabulary as soon as it exists; rule
check_targets runs it, ``check_lists``, before the rules that read the lists (hits, Algorithm 1), and also refuses a
list with more than ``targets.max_oov_share`` of its targets out of vocabulary).

Rule malicious_lists validates the configured files themselves first (``read_list``: the paper's tokenisation, no
duplicates; ``check_no_overlap``: no sentence shared by the training and test lists, paper §4.2) and writes the
copies every later rule reads (``prepare_lists``). ``targets_from_texts`` checks and reads targets held in memory
(a few sentences to attack from Python) as ``read_targets`` reads a file.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from negtrain_core import stage
from negtrain_core.config import Settings, TargetsSettings
from negtrain_core.data.text import normalize
from negtrain_core.data.vocab import BOS, BOS_ID, EOS, EOS_ID, PAD_ID, SPECIALS, UNK, Vocab
from negtrain_core.io import atomic_write_text

log = logging.getLogger(__name__)

OOV_POLICIES = ("skip", "unk")


class TargetListError(ValueError):
    """A target list that cannot be used, stated in one line naming the file."""


class NoTargetsInVocabulary(TargetListError):
    """Every target of a list has out-of-vocabulary words (under ``oov_policy`` skip): nothing is left to search."""


def list_lines(path: str | Path, error: type[ValueError] = TargetListError) -> list[str]:
    """The lines of a target list file, which must be UTF-8: else ``error`` names the file, line and column of the
    first byte that is not (a list saved in latin-1, say, would otherwise lose its accented words). A byte-order mark
    at the start (Windows editors write one) is dropped: it would otherwise cling to the first target's first word."""
    data = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise error(f"{path}:{line}: byte 0x{data[err.start]:02x} at column {column} is not UTF-8 "
                    f"(save the list as UTF-8)") from None


def over_length(tokens: Sequence[str], max_len: int | None) -> bool:
    """Whether a target is longer than a response can be: ``max_len`` (preprocess.max_target_len) counts ``</s>``,
    so a target has at most ``max_len - 1`` words; a longer one could never be emitted, yet its search would score."""
    return max_len is not None and len(tokens) > max_len - 1


def check_length(tokens: Sequence[str], max_len: int | None, where: str,
                 error: type[ValueError] = TargetListError) -> None:
    """Refuse a target that is ``over_length``."""
    if over_length(tokens, max_len):
        raise error(f"{where}: target of {len(tokens)} words is longer than the {max_len - 1} a response can have "
                    f"(preprocess.max_target_len {max_len}, </s> included): shorten it or remove it")


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
    oov_lines: tuple[int, ...] = ()     # the line of each ``oov`` target in ``path``

    def report(self) -> list[str]:
        """One line per target with out-of-vocabulary words (``path:line``), then a summary line."""
        action = "skipped" if self.skipped else "kept with <unk>"
        where = [f"{self.path}:{n}" for n in self.oov_lines] or [self.path] * len(self.oov)
        lines = [f"{w}: target '{t}' has out-of-vocabulary words {list(ws)}: {action}"
                 for w, (t, ws) in zip(where, self.oov)]
        lines.append(f"{self.path}: {len(self.texts)} targets kept, {self.skipped} skipped "
                     f"({len(self.oov)} with out-of-vocabulary words)")
        return lines


# ---------------------------------------------------------------------------------------------- the configured lists


def read_list(path: str | Path, max_len: int | None = None) -> list[str]:
    """Targets of a list file, one per line, in the paper's tokenisation, in UTF-8.

    Runs of whitespace are collapsed; a line that ``text.normalize`` would change otherwise (case, punctuation,
    clitics) is refused, as are bytes that are not UTF-8, empty lines, duplicates, an empty file and, with
    ``max_len`` (preprocess.max_target_len), a target of more than ``max_len - 1`` words, which no response can
    hold. Each refusal is one line naming the file and line. The literal ``<unk>`` token is allowed (the authors'
    paraphrase lists contain it).
    """
    targets, seen = [], {}
    for n, raw in enumerate(list_lines(path), start=1):
        line = " ".join(raw.split())
        if not line:
            raise TargetListError(f"{path}:{n}: empty target line")
        if any(tok != UNK and normalize(tok) != tok for tok in line.split()):
            raise TargetListError(
                f"{path}:{n}: target '{line}' is not in the paper's tokenisation ('{normalize(line)}')")
        check_length(line.split(), max_len, f"{path}:{n}", TargetListError)
        if line in seen:
            raise TargetListError(f"{path}:{n}: duplicate target '{line}' (first on line {seen[line]})")
        seen[line] = n
        targets.append(line)
    if not targets:
        raise TargetListError(f"{path}: no targets (empty file)")
    return targets


def check_no_overlap(train: Sequence[str], test: Sequence[str], train_name: str, test_name: str) -> None:
    """Refuse lists that share a sentence (paper §4.2: no sequence-level overlap between training and test lists)."""
    shared = sorted(set(train) & set(test))
    if shared:
        raise TargetListError(f"{train_name} and {test_name} share {len(shared)} target(s), e.g. '{shared[0]}'")


def prepare_lists(train_path: str | Path, test_path: str | Path, train_out: str | Path, test_out: str | Path,
                  s: TargetsSettings) -> tuple[int, int]:
    """Rule malicious_lists: validate the configured lists (``read_list``, against ``s.max_len``),
    keep the first ``s.list_size`` of each (quick scale), write them; return counts. Nothing is written when a list
    is refused.

    The copies keep the configured files' lines in order (line i of a copy is line i of its file), so a later
    check against a dataset's vocabulary can name the configured file and line (``search.targets``).
    """
    size = s.list_size
    if size is not None and size < 1:
        raise TargetListError(f"quick.target_list_size {size}: keeps no target of {train_path} and {test_path}")
    train, test = read_list(train_path, s.max_len)[:size], read_list(test_path, s.max_len)[:size]
    check_no_overlap(train, test, str(train_path), str(test_path))
    atomic_write_text(train_out, "\n".join(train) + "\n")
    atomic_write_text(test_out, "\n".join(test) + "\n")
    log.info("malicious lists: %d training targets, %d test targets, no shared sentence", len(train), len(test))
    return len(train), len(test)


def parse_line(line: str) -> list[str]:
    """Tokens of one list line; a leading ``<s>`` and a trailing ``</s>`` are dropped."""
    tokens = line.split()
    if tokens[:1] == [BOS]:
        tokens = tokens[1:]
    if tokens[-1:] == [EOS]:
        tokens = tokens[:-1]
    return tokens


def list_targets(path: str | Path, max_len: int | None = None, limit: int | None = None,
                 named: str | Path | None = None) -> list[tuple[int, list[str]]]:
    """``(line, tokens)`` of the first ``limit`` targets of the list at ``path``, checked: UTF-8, no blank line, no
    target over ``max_len`` (``check_length``), at least one target. Errors name ``named`` (default ``path``)."""
    return checked_lines(list_lines(path)[:limit], str(named or path), max_len)


def checked_lines(lines: Sequence[str], name: str, max_len: int | None = None) -> list[tuple[int, list[str]]]:
    """``(line, tokens)`` of each of ``lines`` (a list's, numbered from 1), checked as ``list_targets`` says; errors
    name ``name`` and the line."""
    targets = []
    for n, raw in enumerate(lines, start=1):
        tokens = parse_line(raw)
        if not tokens:
            raise TargetListError(f"{name}:{n}: blank line (one target per line, no blank lines)")
        check_length(tokens, max_len, f"{name}:{n}")
        targets.append((n, tokens))
    if not targets:
        raise TargetListError(f"target list {name} holds no target")
    return targets


def read_targets(path: str | Path, vocab: Vocab, oov_policy: str = "skip", *, max_len: int | None = None,
                 limit: int | None = None, named: str | Path | None = None) -> TargetList:
    """Read the first ``limit`` targets (all: None) of the list at ``path`` (checked by ``list_targets``) against
    ``vocab``. ``limit`` counts the file's lines, targets out of vocabulary included. ``named``: the configured file
    that ``path`` copies line by line (the quick-scale copy under results/targets/), named with its lines in every
    message and report instead of ``path``. Raises ``TargetListError`` in one line."""
    name = str(named or path)
    check_policy(oov_policy, name)
    return against_vocab(list_targets(path, max_len, limit, named), vocab, oov_policy, name)


def targets_from_texts(texts: Sequence[str], vocab: Vocab, oov_policy: str = "skip", *, max_len: int | None = None,
                       name: str = "given targets") -> TargetList:
    """A target list held in memory (``texts``: one target each, as a list file's lines), checked and read against
    ``vocab`` as ``read_targets`` reads a file; messages name ``name`` and a text's position (from 1) as its line."""
    check_policy(oov_policy, name)
    return against_vocab(checked_lines(texts, name, max_len), vocab, oov_policy, name)


def check_policy(oov_policy: str, name: str) -> None:
    """Refuse an ``oov_policy`` other than ``OOV_POLICIES``, naming the list ``name``."""
    if oov_policy not in OOV_POLICIES:
        raise TargetListError(f"{name}: oov_policy must be one of {OOV_POLICIES}, got '{oov_policy}'")


def against_vocab(lines: Sequence[tuple[int, list[str]]], vocab: Vocab, oov_policy: str, name: str) -> TargetList:
    """The ``TargetList`` of checked ``(line, tokens)`` targets of the list ``name`` under ``vocab`` and
    ``oov_policy``; ``NoTargetsInVocabulary`` when the policy skips every one."""
    texts, ids, oov, oov_lines = [], [], [], []
    for n, tokens in lines:
        unknown = tuple(w for w in tokens if w not in vocab)
        if unknown:
            oov.append((" ".join(tokens), unknown))
            oov_lines.append(n)
            if oov_policy == "skip":
                continue
        texts.append(" ".join(tokens))
        ids.append(tuple(vocab.encode(tokens)))
    if not texts:
        raise NoTargetsInVocabulary(f"target list {name}: all {len(lines)} targets have out-of-vocabulary words "
                              f"(oov_policy skip; first: line {oov_lines[0]} '{oov[0][0]}' -> {list(oov[0][1])}); "
                              f"nothing left to search")
    skipped = len(oov) if oov_policy == "skip" else 0
    return TargetList(name, tuple(texts), tuple(ids), tuple(oov), skipped, tuple(oov_lines))


def check_configured_list(path: str | Path, vocab: Vocab, dataset: str, oov_policy: str = "skip",
                          size: int | None = None, max_len: int | None = None,
                          max_oov_share: float | None = None, vocab_key: str | None = None,
                          vocab_full: bool = False) -> TargetList:
    """A configured target list (its first ``size`` targets: the quick-scale cut) checked against the vocabulary of
    ``dataset`` as soon as that exists (after preprocessing), before any search or training reads it: every check of
    ``read_targets``, and (``max_oov_share``) at most that share of its targets with out-of-vocabulary words; the
    messages name the configured file, its line, the dataset, and the keys that would let it through
    (``vocab_key``: the config key that sets this vocabulary's size, ``datasets.<dataset>.vocab_size`` if None;
    ``vocab_full``: the vocabulary already holds every training word, so a larger size would add none)."""
    fix = "use a list in this dataset's words (targets.train, targets.test; how: docs/data.md#your-own-dialogues)"
    if vocab_full:
        fix += (f": its vocabulary already holds all {len(vocab) - len(SPECIALS)} words of its training data, so a "
                f"larger vocab_size adds none")
    else:
        fix += f" or a larger {vocab_key or f'datasets.{dataset}.vocab_size'}"
    try:
        targets = read_targets(path, vocab, oov_policy, max_len=max_len, limit=size)
    except NoTargetsInVocabulary as err:
        raise TargetListError(f"dataset {dataset}: {err}: {fix}") from None
    except TargetListError as err:
        raise TargetListError(f"dataset {dataset}: {err}") from None
    total = len(targets.texts) + targets.skipped
    if max_oov_share is not None and len(targets.oov) > max_oov_share * total:
        line, (text, words) = targets.oov_lines[0], targets.oov[0]
        raise TargetListError(
            f"dataset {dataset}: target list {path}: {len(targets.oov)} of {total} targets "
            f"({len(targets.oov) / total:.0%}) have out-of-vocabulary words, more than targets.max_oov_share "
            f"{max_oov_share:.0%} (first: line {line} '{text}' -> {list(words)}): {fix}, or a higher "
            f"targets.max_oov_share")
    return targets


def check_lists(vocab_path: str | Path, list_paths: Sequence[str | Path], out: str | Path,
                settings: Settings) -> list[TargetList]:
    """Rule check_targets: the configured target lists (``list_paths``) checked against the dataset's vocabulary
    as soon as it exists (``check_configured_list`` with the search's ``oov_policy``, the quick-scale cut,
    ``preprocess.max_target_len`` and ``targets.max_oov_share``). Each list's report goes to the log and to ``out``;
    skipped targets are also told on the terminal in one line per list. Returns the checked lists."""
    vocab, name = Vocab.load(vocab_path), settings.data.name
    vocab_key = (f"quick.vocab_size or datasets.{name}.vocab_size (the smaller applies at quick scale)"
                 if settings.scale == "quick" else None)
    vocab_full = len(vocab) - len(SPECIALS) < settings.data.vocab_size    # the cap not reached: every word is in
    checked = [check_configured_list(path, vocab, name, settings.search.oov_policy, settings.targets.list_size,
                                     settings.data.max_target_len, settings.targets.max_oov_share, vocab_key,
                                     vocab_full)
               for path in list_paths]
    for targets in checked:
        for line in targets.report():
            log.info("%s", line)
        if targets.skipped:
            stage.say(f"dataset {name}: {targets.path}: {targets.skipped} of {targets.skipped + len(targets.texts)} "
                      f"targets have out-of-vocabulary words and are skipped (oov_policy skip; each in the rule log)")
    atomic_write_text(out, "\n".join(line for t in checked for line in t.report()) + "\n")
    return checked


def target_tensor(ids: Sequence[Sequence[int]]) -> Tensor:
    """Token ids of N targets -> (N, T) ``<s> y </s>`` right-padded with ``<pad>``, T = longest + 2.

    Targets are not truncated: the malicious lists are short sentences, and cutting one would change it.
    """
    T = max(len(y) for y in ids) + 2
    out = torch.full((len(ids), T), PAD_ID, dtype=torch.long)
    for i, y in enumerate(ids):
        out[i, : len(y) + 2] = torch.tensor([BOS_ID, *y, EOS_ID], dtype=torch.long)
    return out
