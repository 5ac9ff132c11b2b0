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

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from negtrain_core.config import DataSettings, ModelSettings, TrainSettings
from negtrain_core.text import normalize
from negtrain_core.vocab import UNK

AUGMENTED_SIZES = ("1k", "2.5k")   # the paper's names of the lists with copies[0] and copies[1] paraphrases


def augmentation_status(config: dict[str, Any]) -> str | None:
    """None when the 1k/2.5k lists can be built (a corpus or given files), else the reason they are not run."""
    given = config["targets"]["augmented"]["given"]
    if any(given.get(size) for size in AUGMENTED_SIZES):
        missing = [size for size in AUGMENTED_SIZES if not given.get(size)]
        if missing:
            raise ValueError(f"config key 'targets.augmented.given': {missing[0]} is missing (give both lists or none)")
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
                          batch_size=p["train"]["batch_size"], lr=p["train"]["lr"], momentum=t["momentum"],
                          weight_decay=t["weight_decay"], clip_norm=t["clip_norm"], lr_schedule=t["lr_schedule"],
                          decay_start_epoch=t["decay_start_epoch"], cuda_graph=t["cuda_graph"],
                          log_every=t["log_every"], seed=config["seed"], device=config["device"])
    return data, model, train


def given_list(path: str | Path, test_path: str | Path, size: int | None, copies: int) -> list[str]:
    """A given augmented list (``targets.augmented.given``), validated like the configured lists.

    At quick scale (``size`` targets) its first size * (1 + copies) lines are kept (the authors' cp2/cp5 files
    list each target followed by its copies). Refused on any sentence shared with the test list.
    """
    from negtrain_core.malicious import check_no_overlap, read_list

    targets = read_list(path)
    targets = targets if size is None else targets[: size * (1 + copies)]
    check_no_overlap(targets, read_list(test_path)[:size], str(path), str(test_path))
    return targets
