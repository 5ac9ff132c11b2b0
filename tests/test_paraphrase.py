"""Paraphrase augmentation (negtrain_core.search.paraphrase): pair preparation, dedup/exclusion rules, list layout."""

from __future__ import annotations

import copy
import logging

import pytest

from negtrain_core.search import paraphrase as para
from negtrain_core.config import DataSettings, settings


def _data(max_source_len: int = 6, max_target_len: int = 6) -> DataSettings:
    return DataSettings(name="p", reader="p", raw={}, split={}, vocab_size=10, max_source_len=max_source_len,
                        max_target_len=max_target_len)


def test_pairs_are_normalised_both_directions_and_filtered():
    pairs = [("You're bad!", "You are bad."),
             ("same thing", "Same thing!"),                        # identical after normalising: dropped
             ("one two three four five six", "short one"),         # 6 words > 5 usable source words: dropped
             ("You're bad!", "You are bad.")]                      # repeated pair: kept once
    df = para.pairs_frame(pairs, _data())
    assert list(map(tuple, df[["source", "target"]].values)) == [("you 're bad", "you are bad"),
                                                                  ("you are bad", "you 're bad")]


def test_select_paraphrases_dedups_and_excludes():
    nbest = ["you are bad", "you 're bad", "you 're  bad", "", "you are <unk>", "you are so bad", "go away",
             "you bad", "bad you"]
    chosen = para.select_paraphrases(nbest, "you are bad", exclude={"you are so bad"}, n=3)
    # the target itself, a whitespace repeat, empty, <unk>, and the excluded (test) target are all skipped
    assert chosen == ["you 're bad", "go away", "you bad"]


def test_choose_paraphrases_never_repeats_across_targets_or_hits_a_test_target():
    train, test = ["a b", "c d"], ["a c"]
    nbests = [["a c", "c d", "x y", "z"], ["x y", "c d", "w", "z", "v"]]
    chosen = para.choose_paraphrases(nbests, train, test, n=2)
    assert chosen == [["x y", "z"], ["w", "v"]]
    flat = [s for c in chosen for s in c]
    assert not set(flat) & (set(train) | set(test)) and len(flat) == len(set(flat))


def test_augmented_list_layout_target_then_its_copies():
    train, paras = ["a", "b"], [["a1", "a2", "a3"], ["b1"]]
    assert para.augmented_list(train, paras, 1) == ["a", "a1", "b", "b1"]
    assert para.augmented_list(train, paras, 4) == ["a", "a1", "a2", "a3", "b", "b1"]


def _config(**overrides) -> dict:
    from negtrain_core.config import load

    config = load("config.yaml")
    for key, value in overrides.items():
        node = config
        *path, last = key.split(".")
        for k in path:
            node = node[k]
        node[last] = value
    return copy.deepcopy(config)


def test_given_list_refused_when_it_shares_a_test_target(tmp_path, caplog):
    (tmp_path / "aug.txt").write_text("you are bad\nyou 're bad\ngo away\nleave\n")
    (tmp_path / "test.txt").write_text("you are so bad\nleave\n")
    with pytest.raises(ValueError, match="share 1 target"):
        para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=None, copies=1)
    assert para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=1, copies=1) == ["you are bad",
                                                                                              "you 're bad"]
    with caplog.at_level(logging.INFO, logger=para.__name__):
        kept = para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=None, copies=1,
                               test_overlap="drop")
    said = caplog.messages
    assert kept == ["you are bad", "you 're bad", "go away"]
    assert len(said) == 1 and "1 line(s) left out" in said[0] and "'leave'" in said[0]


def test_quick_scale_shrinks_the_paraphraser():
    p = settings(_config(scale="quick")).paraphrase
    data, model, train = p.data, p.model, p.train
    quick = _config()["quick"]
    assert (model.hidden_dim, model.embedding_dim, train.epochs) == (quick["hidden_dim"], quick["embedding_dim"],
                                                                      quick["epochs"])
    assert data.vocab_size == min(quick["vocab_size"], _config()["paraphrase"]["vocab_size"])
    assert model.vocab_size == data.vocab_size + 5
