"""Preprocessing: raw corpus -> (context, response) pairs in Parquet, the vocabulary, stats and reader notes.

``run`` is the whole stage: reader (``negtrain_core.data.readers``) -> malformed-record check -> ``text.normalize``
every utterance, empty ones dropped, and dialogues left with fewer than two utterances dropped (they hold no
pair: e.g. the 3,150 unanswered one-turn chitchat conversations) -> split (the reader's, else ``split_ids`` over the
remaining dialogues from the config counts and order) -> pairs: every consecutive utterance pair of a dialogue
(source = previous utterance, target = the response; ``turn`` = index of the response among the dialogue's
non-empty utterances) -> quick-scale caps (the first pairs of each split, in order) -> vocabulary
(``Vocab.build`` over the utterances of the kept training pairs, each counted once) ->
``{train,valid,test}.parquet`` (columns ``dialogue_id, turn, source, target``; tokens space-joined, NOT
truncated, no special tokens), ``vocab.txt``, ``stats.csv`` and ``notes.json``, each written atomically and only
after everything has been computed.

Nothing is dropped or altered uncounted: the reader's counts (records malformed, empty files or conversations,
records whose bytes were not UTF-8) and normalisation's (utterances that normalise to nothing, dialogues left
without a pair) go to the rule log, to ``notes.json`` (with the problems per raw file) and to ``stats.csv``
(``CORPUS_COLUMNS``, corpus-wide, the same on every row); tolerated problems also print one line on the
terminal (``stage.say``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence

import pandas as pd

from negtrain_core import stage
from negtrain_core.config import DataSettings
from negtrain_core.io import atomic_write_text, write_csv, write_parquet
from negtrain_core.data.readers import MAX_FILES_LISTED, Dialogue, ReadResult, check_share, reader
from negtrain_core.data.readers import MalformedRecords  # noqa: F401  (raised by check_malformed; readers raise it too)
from negtrain_core.data.text import normalize
from negtrain_core.data.vocab import Vocab

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")
COLUMNS = ("dialogue_id", "turn", "source", "target")
# Corpus-wide counts (the same on every row): raw records read; records dropped as malformed; files or
# conversations dropped as empty; records kept with bytes that are not UTF-8 replaced (normalisation then drops the
# U+FFFD); utterances that normalise to nothing (dropped); dialogues left with fewer than two utterances (no pair).
CORPUS_COLUMNS = ("raw_records", "malformed_records", "empty_files", "bad_byte_records", "empty_utterances",
                  "dialogues_without_pair")
STATS_COLUMNS = ("split", "scale", "dialogues", "pairs", "source_tokens", "target_tokens", "oov_rate",
                 "vocab_size") + CORPUS_COLUMNS


def order_ids(ids: Sequence[str], order: str, seed: int) -> list[str]:
    """``ids`` in file order, sorted by the SHA-256 hex digest of the id, or shuffled with ``seed``."""
    if order == "file":
        return list(ids)
    if order == "sorted_id_hash":
        return sorted(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
    if order == "random":
        out = list(ids)
        random.Random(seed).shuffle(out)
        return out
    raise ValueError(f"unknown split order '{order}' (file | sorted_id_hash | random)")


def split_ids(ids: Sequence[str], split: Mapping, seed: int, source: str = "the corpus",
              key: str = "split", note: str = "") -> dict[str, str]:
    """``{dialogue id: split}`` from the config counts, after ``order_ids``.

    With ``train_dialogues`` set (the paper's Ubuntu rule): train = the first n_train, valid = the next n_valid,
    test = the next n_test; the rest is unused. With ``train_dialogues: null``: valid and test are the last
    n_valid + n_test dialogues (valid first) and train is everything before them. Too few ``ids`` for the counts:
    one line naming ``source`` (the raw corpus) and ``key`` (its config block), with ``note`` (``few_pairs_note``).
    """
    ordered = order_ids(ids, split.get("order", "file"), seed)
    n_valid, n_test, n_train = split["valid_dialogues"], split["test_dialogues"], split.get("train_dialogues")
    have = f"{source}: {len(ordered)} dialogues with two or more non-empty utterances{note}"
    if n_train is None and len(ordered) - n_valid - n_test < 1:
        lower = f" or lower {key}.valid_dialogues / test_dialogues" if max(n_valid, n_test) > 1 else ""
        raise ValueError(f"{have}, too few for {key}: valid {n_valid} + test {n_test} leave none for training; add "
                         f"dialogues{lower}")
    if n_train is None:
        n_train = len(ordered) - n_valid - n_test
    if n_train < 1 or n_train + n_valid + n_test > len(ordered):
        raise ValueError(f"{have}, fewer than {key} asks for (train {n_train} + valid {n_valid} + test {n_test}); "
                         f"lower {key}.train_dialogues or set it to null")
    names = ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test
    return dict(zip(ordered, names))


def few_pairs_note(dialogues: Sequence[Dialogue], emptied: int) -> str:
    """Why a corpus has few dialogues with a pair, for ``split_ids``' message; '' when neither reason holds.

    Most of its utterances (``emptied`` of those of ``dialogues``) normalise to nothing, as text in another script
    does: ``' (N of M utterances normalise to nothing, e.g. ...)'``. Else most of its dialogues hold a single
    utterance as read, as when each line or CSV id holds one message (a message id read as the dialogue id) or a
    speaker column gives every turn one speaker: ``' (N of M dialogues hold one utterance, e.g. ...)'``."""
    total = sum(len(d.utterances) for d in dialogues)
    if total and emptied * 2 > total:
        example = next(u for d in dialogues for u in d.utterances if not normalize(u))
        return (f" ({emptied} of {total} utterances normalise to nothing, e.g. {example[:40]!r}: lower-cased, accents "
                f"dropped, only a-z, 0-9 and ' . - are kept, so the pipeline reads text in the Latin alphabet)")
    single = [d.id for d in dialogues if len(d.utterances) == 1]
    if len(single) * 2 > len(dialogues):
        return (f" ({len(single)} of {len(dialogues)} dialogues hold one utterance, e.g. {single[0]!r}: a pair needs "
                f"two, and consecutive turns of one speaker are merged into one)")
    return ""


def check_malformed(result: ReadResult, data: DataSettings) -> None:
    """Raise ``MalformedRecords`` when the records dropped (malformed, empty) or altered (bytes that are not UTF-8)
    exceed ``data.malformed_max_share`` of the records read: one line naming the raw corpus and the first bad
    records (``readers.check_share``)."""
    check_share(result, data.malformed_max_share, source(data))


def normalized_dialogues(dialogues: Sequence[Dialogue], dropped: Counter | None = None) -> list[Dialogue]:
    """Each dialogue with ``text.normalize``d utterances, empty ones dropped; dialogues left with fewer than two
    utterances (no pair) are dropped too. ``dropped`` (when given) counts ``empty_utterances`` and
    ``dialogues_without_pair``."""
    out, dropped = [], dropped if dropped is not None else Counter()
    for d in dialogues:
        kept = tuple(u for u in (normalize(x) for x in d.utterances) if u)
        dropped["empty_utterances"] += len(d.utterances) - len(kept)
        if len(kept) >= 2:
            out.append(Dialogue(d.id, kept))
        else:
            dropped["dialogues_without_pair"] += 1
    return out


def corpus_counts(result: ReadResult, dropped: Counter) -> dict[str, int]:
    """The ``CORPUS_COLUMNS`` figures of one read and normalised corpus."""
    return {"raw_records": result.records, "malformed_records": result.malformed, "empty_files": result.empty,
            "bad_byte_records": result.bad_bytes, "empty_utterances": dropped["empty_utterances"],
            "dialogues_without_pair": dropped["dialogues_without_pair"]}


def dialogue_pairs(dialogue: Dialogue) -> list[tuple[str, int, str, str]]:
    """``(dialogue_id, turn, source, target)`` for each consecutive utterance pair; ``turn`` indexes the response."""
    u = dialogue.utterances
    return [(dialogue.id, t, u[t - 1], u[t]) for t in range(1, len(u))]


def pairs_frame(rows: Sequence[tuple[str, int, str, str]]) -> pd.DataFrame:
    """The contract table: ``dialogue_id`` str, ``turn`` int32, ``source`` str, ``target`` str."""
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return df.astype({"dialogue_id": str, "turn": "int32", "source": str, "target": str})


def assign_splits(result: ReadResult, dialogues: Sequence[Dialogue], data: DataSettings,
                  note: str = "") -> dict[str, str]:
    """The reader's split when it fixes one, else ``split_ids`` over ``dialogues`` (the usable ones, reader order;
    ``note`` for its message)."""
    ids = [d.id for d in dialogues]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise ValueError(f"{source(data)}: dialogue id '{dup[0]}' appears more than once")
    if result.split is not None:
        unassigned = sum(1 for i in ids if i not in result.split)
        sizes = Counter(result.split[i] for i in ids if i in result.split)
        log.info("split fixed by the reader (its own rule, or the config's fractions it resolved): %d train, %d valid, "
                 "%d test dialogues; %d dialogues in no split", sizes["train"], sizes["valid"], sizes["test"],
                 unassigned)
        return result.split
    return split_ids(ids, data.split, data.seed, source(data), f"datasets.{data.name}.split", note)


def source(data: DataSettings) -> str:
    """How messages name a dataset's raw corpus: its path, else the dataset's name."""
    return data.raw.get("path") or data.name


def split_frames(dialogues: Sequence[Dialogue], assigned: Mapping[str, str],
                 caps: Mapping[str, int | None], source: str = "the corpus") -> dict[str, pd.DataFrame]:
    """One pairs table per split (normalised ``dialogues`` in reader order), each cut to its first ``caps[split]``
    pairs; a split left without a pair: one line naming ``source`` (the raw corpus)."""
    rows: dict[str, list] = {s: [] for s in SPLITS}
    for d in dialogues:
        s = assigned.get(d.id)
        if s is not None:
            rows[s].extend(dialogue_pairs(d))
    frames = {s: pairs_frame(rows[s]) for s in SPLITS}
    for s, frame in frames.items():
        if frame.empty:
            raise ValueError(f"{source}: split '{s}' has no pairs: no dialogue with two non-empty utterances went "
                             f"to it")
    for s, f in frames.items():
        if caps[s] is not None and len(f) > caps[s]:
            cut = f.head(caps[s])
            key = "quick.max_train_pairs" if s == "train" else "quick.max_eval_pairs"
            log.info("%s: cut to its first %d of %d pairs, %d of %d dialogues (%s)", s, caps[s], len(f),
                     cut["dialogue_id"].nunique(), f["dialogue_id"].nunique(), key)
            frames[s] = cut
    return frames


def training_utterances(train: pd.DataFrame) -> list[list[str]]:
    """Token lists of the training utterances in ``train``, each once: every target, and each dialogue's first
    source."""
    firsts = train.loc[train["turn"] == 1, "source"]
    return [s.split() for s in pd.concat([firsts, train["target"]], ignore_index=True)]


def split_stats(frame: pd.DataFrame, vocab: Vocab, split: str, scale: str) -> dict:
    """Stats row: dialogues, pairs, source/target tokens (untruncated) and the target OOV rate."""
    targets = [t for s in frame["target"] for t in s.split()]
    oov = sum(1 for t in targets if t not in vocab)
    return {"split": split, "scale": scale, "dialogues": int(frame["dialogue_id"].nunique()),
            "pairs": len(frame), "source_tokens": int(frame["source"].str.split().str.len().sum()),
            "target_tokens": len(targets), "oov_rate": oov / max(len(targets), 1),
            "vocab_size": len(vocab)}


def build(result: ReadResult, data: DataSettings,
          scale: str) -> tuple[dict[str, pd.DataFrame], Vocab, pd.DataFrame]:
    """Tables, vocabulary and stats of one read corpus (writes nothing; the record counts are added to
    ``result.notes``, which become notes.json)."""
    check_malformed(result, data)
    warn_tolerated(result, data)
    dropped: Counter = Counter()
    dialogues = normalized_dialogues(result.dialogues, dropped)
    log.info("%d of %d dialogues have two or more non-empty utterances (the others give no pair and are dropped); "
             "%d utterances normalise to nothing and are dropped", len(dialogues), len(result.dialogues),
             dropped["empty_utterances"])
    assigned = assign_splits(result, dialogues, data, few_pairs_note(result.dialogues, dropped["empty_utterances"]))
    caps = {"train": data.max_train_pairs, "valid": data.max_eval_pairs, "test": data.max_eval_pairs}
    frames = split_frames(dialogues, assigned, caps, source(data))
    vocab = Vocab.build(training_utterances(frames["train"]), data.vocab_size)
    counts = corpus_counts(result, dropped)
    result.notes.update(counts, **{k: v for k, v in result.counts().items() if k.startswith("problem_files")})
    rows = [{**split_stats(frames[s], vocab, s, scale), **counts} for s in SPLITS]
    return frames, vocab, pd.DataFrame(rows, columns=list(STATS_COLUMNS))


def log_read(result: ReadResult, data: DataSettings) -> None:
    """The reader's counts, first problems and problems per file in the rule log."""
    log.info("%s: reader %s, %d dialogues, %d raw records, %d malformed, %d empty files, %d with bytes that are "
             "not UTF-8 (replaced)", data.name, data.reader, len(result.dialogues), result.records,
             result.malformed, result.empty, result.bad_bytes)
    for example in result.malformed_examples:
        log.warning("malformed: %s", example)
    for example in result.bad_byte_examples:
        log.warning("bad bytes: %s", example)
    for file, counts in sorted(result.files.items())[:MAX_FILES_LISTED]:
        log.warning("problems in %s: %s", file, ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if len(result.files) > MAX_FILES_LISTED:
        log.warning("... and %d more files with problems", len(result.files) - MAX_FILES_LISTED)
    for key, value in result.notes.items():
        log.info("note %s: %s", key, value)


def warn_tolerated(result: ReadResult, data: DataSettings) -> None:
    """One line on the terminal (and in the rule log: ``stage.say``) when records were dropped or altered but
    stayed within the share."""
    if result.malformed or result.empty or result.bad_bytes:
        stage.say(f"preprocess {data.name}: tolerated {result.malformed} malformed records, {result.empty} "
                  f"empty files, {result.bad_bytes} records with bytes that are not UTF-8 (replaced) of "
                  f"{result.records} raw records in {len(result.files)} files (within malformed_max_share "
                  f"{data.malformed_max_share:.2%}; per file: the rule log and notes.json)")


def run(train_out: str, valid_out: str, test_out: str, vocab_out: str, stats_out: str, notes_out: str,
        data: DataSettings, scale: str = "paper") -> pd.DataFrame:
    """Rule preprocess: read one dataset (``data.raw``), write the three splits' pairs, the vocabulary, the stats
    and the reader's notes; return the stats.

    ``stats.csv`` columns: split, scale, dialogues, pairs, source_tokens, target_tokens (whitespace tokens of the
    untruncated sources/targets), oov_rate (share of target tokens not in the vocabulary), vocab_size (with the
    five specials), then the corpus-wide ``CORPUS_COLUMNS``.
    """
    result = reader(data.reader)(data)
    log_read(result, data)
    frames, vocab, stats = build(result, data, scale)
    for split, out in zip(SPLITS, (train_out, valid_out, test_out), strict=True):
        write_parquet(frames[split], out)
    vocab.save(vocab_out)
    write_csv(stats, stats_out)
    atomic_write_text(notes_out, json.dumps(result.notes, indent=2, sort_keys=True, default=str) + "\n")
    log.info("stats (%s scale):\n%s", scale, stats.to_string(index=False))
    return stats
