"""Paraphrase augmentation of the malicious training list (He & Glass 2020, §4.2, Table 2).

The paper trains "a seq2seq paraphrase model using the paraNMT data-set, with a model of the same structure as
described in Section 2" and augments the 0.5k training list with 1 or 4 paraphrases per target (the 1k and 2.5k
lists). Here: pairs from ``paraphrase.corpora`` (both directions, ``text.normalize``d) train ``models.Seq2Seq`` with
the baselines' training function under the ``paraphrase:`` block's settings; beam search gives an n-best list per
training target, from which the first distinct paraphrases are kept that equal neither the target, another
training target, nor any test target (no sequence-level overlap with the test list, §4.2).

Where no corpus is configured the augmentation is not run and Table 3 says so; ``targets.augmented.given`` may
instead point the 1k/2.5k lists at existing files (e.g. the authors' res_500/train_500_cp{2,5}.txt).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch

from negtrain_core import device
from negtrain_core.config import AUGMENTED_SIZES, ConfigError, DataSettings, SharedSettings
from negtrain_core.data.readers.paraphrase import read_pairs
from negtrain_core.data.tensors import encode_source
from negtrain_core.data.text import normalize
from negtrain_core.data.vocab import UNK, Vocab
from negtrain_core.io import atomic_write_text
from negtrain_core.models import checkpoint
from negtrain_core.models.decoding import beam
from negtrain_core.models.training import train_baseline
from negtrain_core.search.targets import check_no_overlap, over_length, read_list

log = logging.getLogger(__name__)

def fits(tokens: Sequence[str], data: DataSettings) -> bool:
    """A sentence usable on both sides of a pair without truncation (source keeps max_source_len - 1 words)."""
    return 0 < len(tokens) <= min(data.max_source_len - int(data.source_eou), data.max_target_len - 1)


def pairs_frame(pairs: Iterable[tuple[str, str]], data: DataSettings) -> pd.DataFrame:
    """Raw paraphrase pairs -> DataFrame(source, target): normalised, both directions, identical or too long dropped.

    The columns follow the dialogue data contract (space-joined tokens), so the baselines' tensorizing and
    training apply unchanged. Duplicated (source, target) rows are kept once.
    """
    rows = []
    for a, b in pairs:
        a, b = normalize(a), normalize(b)
        if a != b and fits(a.split(), data) and fits(b.split(), data):
            rows += [(a, b), (b, a)]
    df = pd.DataFrame(rows, columns=["source", "target"]).drop_duplicates(ignore_index=True)
    return df


def select_paraphrases(nbest: Sequence[str], target: str, exclude: set[str], n: int) -> list[str]:
    """The first ``n`` usable hypotheses of an n-best list (best first).

    Dropped: empty hypotheses, hypotheses with ``<unk>``, repeats, the target itself, and anything in ``exclude``
    (the other training targets and every test target).
    """
    chosen: list[str] = []
    for hyp in nbest:
        hyp = " ".join(hyp.split())
        if not hyp or UNK in hyp.split() or hyp == target or hyp in exclude or hyp in chosen:
            continue
        chosen.append(hyp)
        if len(chosen) == n:
            break
    return chosen


def choose_paraphrases(nbests: Sequence[Sequence[str]], train: Sequence[str], test: Sequence[str],
                       n: int) -> list[list[str]]:
    """Up to ``n`` paraphrases per training target, none equal to a training or test target or to a paraphrase
    already chosen for an earlier target (so the augmented lists have no duplicate sentence)."""
    exclude, out = set(train) | set(test), []
    for target, nbest in zip(train, nbests, strict=True):
        chosen = select_paraphrases(nbest, target, exclude, n)
        exclude.update(chosen)
        out.append(chosen)
    return out


def augmented_list(train: Sequence[str], paraphrases: Sequence[Sequence[str]], copies: int) -> list[str]:
    """Each training target followed by its first ``copies`` paraphrases (the authors' cp2/cp5 layout)."""
    return [s for target, paras in zip(train, paraphrases, strict=True) for s in (target, *paras[:copies])]


def given_list(path: str | Path, test_path: str | Path, size: int | None, copies: int, test_overlap: str = "refuse",
               *, max_len: int | None = None, too_long: str = "refuse") -> list[str]:
    """A given augmented list (``targets.augmented.given``), validated like the configured lists.

    At quick scale (``size`` targets) its first size * (1 + copies) lines are kept (the authors' cp2/cp5 files
    list each target followed by its copies). A sentence shared with the test list refuses the list
    (``test_overlap: refuse``) or is left out of it (``drop``, logged). So does a line of more words than a response
    can have (``max_len``: preprocess.max_target_len, ``</s>`` counted; ``too_long``), named by its line in ``path``.
    """
    targets = read_list(path, max_len if too_long == "refuse" else None)
    targets = targets if size is None else targets[: size * (1 + copies)]
    if too_long == "drop":
        kept, long_lines = [], []
        for t in targets:
            (long_lines if over_length(t.split(), max_len) else kept).append(t)
        if long_lines:
            log.info("%s: %d line(s) left out that have more than %d words (targets.augmented.too_long: drop), "
                     "e.g. '%s'", path, len(long_lines), max_len - 1, long_lines[0])
        targets = kept
    test = read_list(test_path)[:size]
    if test_overlap == "drop":
        shared = set(targets) & set(test)
        if shared:
            log.info("%s: %d line(s) left out that are test targets (targets.augmented.test_overlap: drop), e.g. "
                     "'%s'", path, len(shared), sorted(shared)[0])
        return [t for t in targets if t not in shared]
    check_no_overlap(targets, test, str(path), str(test_path))
    return targets


# ---------------------------------------------------------------------------------------------- the stages

VALID_SHARE, MAX_VALID = 0.05, 1000   # [ours] pairs held out for the paraphraser's best-epoch selection


def split_pairs(pairs: Sequence[tuple[str, str]], seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Seeded shuffle, then (train, valid): VALID_SHARE of the pairs (at most MAX_VALID) held out, before the two
    directions are made, so no pair is on both sides."""
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    n_valid = min(MAX_VALID, max(1, int(VALID_SHARE * len(pairs))))
    return pairs[n_valid:], pairs[:n_valid]


def train_paraphraser(ckpt_out: str | Path, curve_out: str | Path, s: SharedSettings) -> pd.DataFrame:
    """Rule train_paraphraser: read ``paraphrase.corpora``, build the vocabulary and train the paraphraser with the
    baselines' ``train_baseline``; writes its checkpoint and curve."""
    corpora, data = s.paraphrase.corpora, s.paraphrase.data
    if not corpora:
        raise ConfigError("config key 'paraphrase.corpora' is empty: there is no paraphrase corpus to train on")
    pairs = [p for c in corpora for p in read_pairs(c.format, c.path, c.path2)]
    train_pairs, valid_pairs = split_pairs(pairs, s.seed)
    train_df, valid_df = pairs_frame(train_pairs, data), pairs_frame(valid_pairs, data)
    if train_df.empty or valid_df.empty:
        files = ", ".join(str(p) for c in corpora for p in (c.path, c.path2) if p)
        words = min(data.max_source_len - int(data.source_eou), data.max_target_len - 1)
        raise ConfigError(f"config key 'paraphrase.corpora': {len(pairs)} pair(s) in {files} leave {len(train_df)} "
                          f"training and {len(valid_df)} validation rows (sentences of at most {words} words); the "
                          f"paraphraser needs a larger corpus")
    if data.max_train_pairs is not None:
        train_df = train_df.sample(n=min(len(train_df), data.max_train_pairs), random_state=s.seed)
    log.info("paraphraser: %d pairs read from %d corpora -> %d training and %d validation rows (both directions, "
             "sentences of at most %d words)", len(pairs), len(corpora), len(train_df), len(valid_df),
             min(data.max_source_len - int(data.source_eou), data.max_target_len - 1))
    vocab = Vocab.build((t.split() for t in pd.concat([train_df["source"], train_df["target"]])), data.vocab_size)
    return train_baseline("seq2seq", train_df, valid_df, vocab, s.paraphrase.model, s.paraphrase.train, ckpt_out,
                          curve_out, log.info, data_settings=data)


def nbest(model: torch.nn.Module, vocab: Vocab, sentences: Sequence[str], data: DataSettings, k: int,
          batch_size: int = 128) -> list[list[str]]:
    """The k-best beam-search outputs (strings, best first) for each sentence, read as paraphraser sources."""
    dev = next(model.parameters()).device
    out: list[list[str]] = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        src = torch.tensor([encode_source(s.split(), vocab, data.max_source_len, data.source_eou) for s in chunk],
                           device=dev)
        res = beam(model, src, k=k, n_best=k, max_len=data.max_target_len)          # tokens (b, k, L)
        for toks, scores in zip(res.tokens.tolist(), res.scores.tolist()):
            out.append([" ".join(vocab.decode(t)) for t, sc in zip(toks, scores) if sc > float("-inf")])
    return out


def build_lists(train_path: str | Path, test_path: str | Path, ckpt_path: str | Path | None,
                outs: Sequence[str | Path], s: SharedSettings) -> list[int]:
    """Rule augment_targets: write the augmented lists (1k, 2.5k: ``outs`` in ``AUGMENTED_SIZES`` order); returns
    their lengths. From ``targets.augmented.given`` files when set (their lines checked against ``targets.max_len``),
    else from the paraphraser's n-best lists."""
    t = s.targets
    train, test = read_list(train_path), read_list(test_path)
    if t.given.get(AUGMENTED_SIZES[0]):
        lists = [given_list(t.given[name], test_path, t.list_size, c, t.test_overlap, max_len=t.max_len,
                            too_long=t.too_long) for name, c in zip(AUGMENTED_SIZES, t.copies)]
    else:
        ck = checkpoint.load(ckpt_path, device=device.resolve(s.device, s.gpu_jobs_per_device),
                             arch=s.paraphrase.model.arch, kind="seq2seq")
        chosen = choose_paraphrases(nbest(ck.model, ck.vocab, train, s.paraphrase.data, s.paraphrase.beam), train,
                                    test, max(t.copies))
        short = sum(len(c) < max(t.copies) for c in chosen)
        log.info("paraphrases: %d kept for %d targets (%d with fewer than %d), e.g. '%s' -> %s", sum(map(len, chosen)),
                 len(train), short, max(t.copies), train[0], chosen[0])
        lists = [augmented_list(train, chosen, c) for c in t.copies]
    for lst, path in zip(lists, outs, strict=True):
        atomic_write_text(path, "\n".join(lst) + "\n")
    log.info("augmented lists: %s targets", [len(lst) for lst in lists])
    return [len(lst) for lst in lists]
