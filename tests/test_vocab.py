"""Vocab: specials at ids 0-4, frequency order with alphabetical ties, encode/decode, save/load, hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, SPECIALS, UNK_ID, Vocab

SENTENCES = [["b", "a", "c"], ["a", "b", "d"], ["a", "e"], ["c", "b"]]   # a:3 b:3 c:2 d:1 e:1


def test_specials_take_ids_0_to_4() -> None:
    v = Vocab.build(SENTENCES, 10)
    assert v.tokens[:5] == ("</s>", "<unk>", "<s>", "<pad>", "<eou>")
    assert (EOS_ID, UNK_ID, BOS_ID, PAD_ID, EOU_ID) == (0, 1, 2, 3, 4)
    assert SPECIALS == v.tokens[:5]


def test_frequency_order_with_alphabetical_ties_and_cut() -> None:
    assert Vocab.build(SENTENCES, 10).tokens[5:] == ("a", "b", "c", "d", "e")
    assert Vocab.build(SENTENCES, 3).tokens[5:] == ("a", "b", "c")
    assert len(Vocab.build(SENTENCES, 3)) == 8


def test_special_strings_in_the_text_are_not_counted_twice() -> None:
    v = Vocab.build([["<unk>", "x", "</s>"], ["x"]], 5)
    assert v.tokens == SPECIALS + ("x",)


def test_encode_maps_unknown_words_to_unk_and_decode_strips() -> None:
    v = Vocab.build(SENTENCES, 2)                      # a=5, b=6
    assert v.encode(["a", "zz", "b"]) == [5, UNK_ID, 6]
    assert v.decode([BOS_ID, 5, 6, EOS_ID, 5]) == ["a", "b"]
    assert v.decode([PAD_ID, 5, PAD_ID]) == ["a"]
    assert v.decode([BOS_ID, 5, EOS_ID], strip=False) == ["<s>", "a", "</s>"]
    assert "a" in v and "zz" not in v


def test_save_load_round_trip(tmp_path: Path) -> None:
    v = Vocab.build(SENTENCES, 10)
    v.save(tmp_path / "vocab.txt")
    assert (tmp_path / "vocab.txt").read_text().splitlines()[5] == "a"
    w = Vocab.load(tmp_path / "vocab.txt")
    assert w.tokens == v.tokens and w.sha256 == v.sha256
    assert w.encode(["e", "a"]) == v.encode(["e", "a"])


def test_hash_changes_with_content_and_order() -> None:
    v = Vocab.build(SENTENCES, 10)
    assert v.sha256 != Vocab.build(SENTENCES, 4).sha256
    swapped = Vocab(v.tokens[:5] + ("b", "a") + v.tokens[7:])
    assert swapped.sha256 != v.sha256
    assert Vocab(tuple(v.tokens)).sha256 == v.sha256


def test_bad_vocabularies_are_refused() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Vocab(("a", "b"))
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(SPECIALS + ("a", "a"))
