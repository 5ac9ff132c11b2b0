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


def test_given_list_line_too_long_for_a_response_refused_or_left_out(tmp_path, caplog):
    long_line = " ".join(["suffer"] * 6)                      # 6 words: a response of max_len 6 holds 5 + </s>
    (tmp_path / "aug.txt").write_text(f"you are bad\nyou 're bad\n{long_line}\ngo away\n")
    (tmp_path / "test.txt").write_text("leave\n")
    with pytest.raises(ValueError, match=r"aug\.txt:3: target of 6 words is longer than the 5"):
        para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=None, copies=1, max_len=6)
    with caplog.at_level(logging.INFO, logger=para.__name__):
        kept = para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=None, copies=1, max_len=6,
                               too_long="drop")
    assert kept == ["you are bad", "you 're bad", "go away"]
    assert len(caplog.messages) == 1 and "1 line(s) left out that have more than 5 words" in caplog.messages[0]
    assert para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=None, copies=1, max_len=7) == [
        "you are bad", "you 're bad", long_line, "go away"]
    (tmp_path / "aug.txt").write_text(f"you are bad\n{long_line}\ngo away\n")   # quick scale: the file's first
    assert para.given_list(tmp_path / "aug.txt", tmp_path / "test.txt", size=1, copies=1, max_len=6,  # 2 lines,
                           too_long="drop") == ["you are bad"]                                 # less the long one


@pytest.mark.parametrize("too_long", ["refuse", "drop"])
def test_build_lists_reads_too_long_from_the_config(tmp_path, too_long):
    (tmp_path / "train.txt").write_text("you are bad\n")
    (tmp_path / "test.txt").write_text("leave\n")
    (tmp_path / "cp2.txt").write_text("you are bad\n" + " ".join(["on"] * 20) + "\n")
    (tmp_path / "cp5.txt").write_text("you are bad\nyou 're bad\n")
    s = settings(_config(**{"targets.train": str(tmp_path / "train.txt"), "targets.test": str(tmp_path / "test.txt"),
                            "targets.augmented.given": {"1k": str(tmp_path / "cp2.txt"),
                                                        "2.5k": str(tmp_path / "cp5.txt")},
                            "targets.augmented.too_long": too_long}))
    outs = [tmp_path / "1k.txt", tmp_path / "2.5k.txt"]
    args = (tmp_path / "train.txt", tmp_path / "test.txt", None, outs, s)
    if too_long == "refuse":
        with pytest.raises(ValueError, match=r"cp2\.txt:2: target of 20 words"):
            para.build_lists(*args)
        assert not any(p.exists() for p in outs)
    else:
        assert para.build_lists(*args) == [1, 2]
        assert outs[0].read_text() == "you are bad\n"


def test_quick_scale_shrinks_the_paraphraser():
    p = settings(_config(scale="quick")).paraphrase
    data, model, train = p.data, p.model, p.train
    quick = _config()["quick"]
    assert (model.hidden_dim, model.embedding_dim, train.epochs) == (quick["hidden_dim"], quick["embedding_dim"],
                                                                      quick["epochs"])
    assert data.vocab_size == min(quick["vocab_size"], _config()["paraphrase"]["vocab_size"])
    assert model.vocab_size == data.vocab_size + 5
