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

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from negtrain_core.config import ConfigError, DataSettings, ModelSettings, TrainSettings
from negtrain_core.data.text import normalize
from negtrain_core.data.vocab import UNK

if TYPE_CHECKING:
    import torch

    from negtrain_core.data.vocab import Vocab

AUGMENTED_SIZES = ("1k", "2.5k")   # the paper's names of the lists with copies[0] and copies[1] paraphrases


def augmentation_status(config: dict[str, Any]) -> str | None:
    """None when the 1k/2.5k lists can be built (a corpus or given files), else the reason they are not run."""
    given = config["targets"]["augmented"]["given"]
    if any(given.get(size) for size in AUGMENTED_SIZES):
        missing = [size for size in AUGMENTED_SIZES if not given.get(size)]
        if missing:
            raise ConfigError(f"config key 'targets.augmented.given': {missing[0]} is missing (give both or none)")
        return None
    if config["paraphrase"]["corpora"]:
        return None
    return "not run: no paraphrase corpus (config paraphrase.corpora is empty) and no given lists (targets.augmented.given)"


def list_sizes(config: dict[str, Any]) -> tuple[str, ...]:
    """Target-list sizes negative training runs on: 0.5k, plus 1k and 2.5k when augmentation is available."""
    return ("0.5k",) + (AUGMENTED_SIZES if augmentation_status(config) is None else ())


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


def settings(config: dict[str, Any]) -> tuple[DataSettings, ModelSettings, TrainSettings]:
    """The paraphraser's data/model/training settings: the model block's structure, the paraphrase block's recipe.

    At quick scale the quick overlay's vocabulary, sizes, epochs and pair cap apply, as for the dialogue models.
    """
    p, pre, m, t, q = (config[k] for k in ("paraphrase", "preprocess", "model", "train", "quick"))
    quick = config["scale"] == "quick"
    vocab_size = min(p["vocab_size"], q["vocab_size"]) if quick else p["vocab_size"]
    data = DataSettings(name="paraphrase", reader="paraphrase", raw={}, split={}, vocab_size=vocab_size,
                        max_source_len=pre["max_source_len"], max_target_len=pre["max_target_len"],
                        source_eou=pre["source_eou"], max_train_pairs=q["max_train_pairs"] if quick else None)
    model = ModelSettings(vocab_size=vocab_size + 5,
                          embedding_dim=q["embedding_dim"] if quick else m["embedding_dim"],
                          hidden_dim=q["hidden_dim"] if quick else m["hidden_dim"], num_layers=m["num_layers"],
                          dropout=p["train"]["dropout"], attention=m["attention"],
                          mask_source_padding=m["mask_source_padding"])
    train = TrainSettings(epochs=q["epochs"] if quick else p["train"]["epochs"],
                          batch_size=p["train"]["batch_size"], lr=p["train"]["lr"], momentum=p["train"]["momentum"],
                          weight_decay=t["weight_decay"], clip_norm=t["clip_norm"], lr_schedule=t["lr_schedule"],
                          decay_start_epoch=t["decay_start_epoch"], cuda_graph=t["cuda_graph"],
                          log_every=t["log_every"], seed=config["seed"], device=config["device"])
    return data, model, train


def given_list(path: str | Path, test_path: str | Path, size: int | None, copies: int, test_overlap: str = "refuse",
               log: Callable[[str], None] = print) -> list[str]:
    """A given augmented list (``targets.augmented.given``), validated like the configured lists.

    At quick scale (``size`` targets) its first size * (1 + copies) lines are kept (the authors' cp2/cp5 files
    list each target followed by its copies). A sentence shared with the test list refuses the list
    (``test_overlap: refuse``) or is left out of it (``drop``, logged).
    """
    from negtrain_core.negtrain.malicious import check_no_overlap, read_list

    targets = read_list(path)
    targets = targets if size is None else targets[: size * (1 + copies)]
    test = read_list(test_path)[:size]
    if test_overlap == "drop":
        shared = set(targets) & set(test)
        if shared:
            log(f"{path}: {len(shared)} line(s) left out that are test targets (targets.augmented.test_overlap: "
                f"drop), e.g. '{sorted(shared)[0]}'")
        return [t for t in targets if t not in shared]
    check_no_overlap(targets, test, str(path), str(test_path))
    return targets


# ---------------------------------------------------------------------------------------------- the stages

VALID_SHARE, MAX_VALID = 0.05, 1000   # [ours] pairs held out for the paraphraser's best-epoch selection


def split_pairs(pairs: Sequence[tuple[str, str]], seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Seeded shuffle, then (train, valid): VALID_SHARE of the pairs (at most MAX_VALID) held out, before the two
    directions are made, so no pair is on both sides."""
    import random

    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    n_valid = min(MAX_VALID, max(1, int(VALID_SHARE * len(pairs))))
    return pairs[n_valid:], pairs[:n_valid]


def train_paraphraser(corpora: Sequence[dict[str, Any]], ckpt_path: str | Path, curve_path: str | Path,
                      config: dict[str, Any], log: Callable[[str], None]) -> pd.DataFrame:
    """Read ``paraphrase.corpora``, build the vocabulary and train the paraphraser with ``train.train_baseline``."""
    from negtrain_core.data.readers.paraphrase import read_pairs
    from negtrain_core.models.training import train_baseline
    from negtrain_core.data.vocab import Vocab

    if not corpora:
        raise ValueError("config key 'paraphrase.corpora' is empty: there is no paraphrase corpus to train on")
    data, model_s, train_s = settings(config)
    pairs = [p for c in corpora for p in read_pairs(c["format"], c["path"], c.get("path2"))]
    train_pairs, valid_pairs = split_pairs(pairs, config["seed"])
    train_df, valid_df = pairs_frame(train_pairs, data), pairs_frame(valid_pairs, data)
    if data.max_train_pairs is not None:
        train_df = train_df.sample(n=min(len(train_df), data.max_train_pairs), random_state=config["seed"])
    log(f"paraphraser: {len(pairs)} pairs read from {len(corpora)} corpora -> {len(train_df)} training and "
        f"{len(valid_df)} validation rows (both directions, sentences of at most "
        f"{min(data.max_source_len - int(data.source_eou), data.max_target_len - 1)} words)")
    vocab = Vocab.build((s.split() for s in pd.concat([train_df["source"], train_df["target"]])), data.vocab_size)
    return train_baseline("seq2seq", train_df, valid_df, vocab, model_s, train_s, ckpt_path, curve_path, log,
                          data_settings=data)


def nbest(model: torch.nn.Module, vocab: Vocab, sentences: Sequence[str], data: DataSettings, k: int,
          batch_size: int = 128) -> list[list[str]]:
    """The k-best beam-search outputs (strings, best first) for each sentence, read as paraphraser sources."""
    import torch

    from negtrain_core.data.tensors import encode_source
    from negtrain_core.models.decoding import beam

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


def build_lists(train_path: str | Path, test_path: str | Path, ckpt_path: str | None, outputs: Sequence[str | Path],
                config: dict[str, Any], log: Callable[[str], None]) -> list[int]:
    """Write the augmented lists (1k, 2.5k: ``outputs`` in ``AUGMENTED_SIZES`` order); returns their lengths.

    From ``targets.augmented.given`` files when set, else from the paraphraser's n-best lists.
    """
    from negtrain_core.models import checkpoint
    from negtrain_core import device
    from negtrain_core.io import atomic_write_text
    from negtrain_core.negtrain.malicious import read_list

    copies, given = config["targets"]["augmented"]["copies"], config["targets"]["augmented"]["given"]
    size = config["quick"]["target_list_size"] if config["scale"] == "quick" else None
    train, test = read_list(train_path), read_list(test_path)
    if given.get(AUGMENTED_SIZES[0]):
        overlap = config["targets"]["augmented"]["test_overlap"]
        lists = [given_list(given[name], test_path, size, c, overlap, log) for name, c in zip(AUGMENTED_SIZES, copies)]
    else:
        ck = checkpoint.load(ckpt_path, device=device.resolve(config["device"], config["gpu_jobs_per_device"]))
        data = settings(config)[0]
        chosen = choose_paraphrases(nbest(ck.model, ck.vocab, train, data, config["paraphrase"]["beam"]), train,
                                    test, max(copies))
        short = sum(len(c) < max(copies) for c in chosen)
        log(f"paraphrases: {sum(map(len, chosen))} kept for {len(train)} targets ({short} with fewer than "
            f"{max(copies)}), e.g. '{train[0]}' -> {chosen[0]}")
        lists = [augmented_list(train, chosen, c) for c in copies]
    for lst, path in zip(lists, outputs, strict=True):
        atomic_write_text(path, "\n".join(lst) + "\n")
    return [len(lst) for lst in lists]
