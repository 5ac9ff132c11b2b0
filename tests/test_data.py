"""Tensorizing: hand-computed ids, static shapes, and seeded mini-batch order."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from negtrain_core.config import DataSettings
from negtrain_core.data.tensors import PairTensors, batches, encode_source, encode_target, tensorize
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID, UNK_ID, Vocab

VOCAB = Vocab.build([["a", "b", "c", "d"]], 10)   # a=5 b=6 c=7 d=8
A, B, C, D = 5, 6, 7, 8


def settings(**kw) -> DataSettings:
    return DataSettings(name="t", reader="chitchat", raw={}, split={}, vocab_size=4, **kw)


def test_encode_source_appends_eou_and_left_pads():
    assert encode_source(["a", "b", "zzz"], VOCAB, max_len=6) == [PAD_ID, PAD_ID, A, B, UNK_ID, EOU_ID]
    assert encode_source(["a", "b"], VOCAB, max_len=4, eou=False) == [PAD_ID, PAD_ID, A, B]
    assert encode_source([], VOCAB, max_len=3) == [PAD_ID, PAD_ID, EOU_ID]


def test_encode_source_keeps_the_last_tokens_eou_included():
    tokens = ["a"] * 20 + ["b", "c", "d"]
    assert encode_source(tokens, VOCAB, max_len=15) == [A] * 11 + [B, C, D, EOU_ID]
    assert encode_source(tokens, VOCAB, max_len=3, eou=False) == [B, C, D]


def test_encode_target_counts_eos_toward_max_len():
    assert encode_target(["a", "b"], VOCAB, max_len=20) == [BOS_ID, A, B, EOS_ID]
    long = encode_target(["c"] * 25, VOCAB, max_len=20)
    assert len(long) == 21 and long[:2] == [BOS_ID, C] and long[-2:] == [C, EOS_ID] and long.count(C) == 19
    assert encode_target([], VOCAB) == [BOS_ID, EOS_ID]


def test_release_target_cut_counts_bos_and_drops_eos_of_long_responses():
    """preprocess.target_cut: release (myutil.py L56-60): <s> y </s> cut to max_len ids, <s> included."""
    assert encode_target(["a", "b"], VOCAB, max_len=20, cut="release") == [BOS_ID, A, B, EOS_ID]
    assert encode_target(["c"] * 18, VOCAB, max_len=20, cut="release") == [BOS_ID] + [C] * 18 + [EOS_ID]
    assert encode_target(["c"] * 19, VOCAB, max_len=20, cut="release") == [BOS_ID] + [C] * 19   # </s> lost
    assert encode_target(["c"] * 25, VOCAB, max_len=20, cut="release") == [BOS_ID] + [C] * 19
    df = pd.DataFrame({"source": ["a", "a"], "target": ["d " * 19, "a b"]})
    paper, release = (tensorize(df, VOCAB, settings(target_cut=c)) for c in ("paper", "release"))
    assert paper.tgt.shape == release.tgt.shape == (2, 21)                    # the static shape is the same
    assert paper.tgt[0].tolist() == [BOS_ID] + [D] * 19 + [EOS_ID]
    assert release.tgt[0].tolist() == [BOS_ID] + [D] * 19 + [PAD_ID]
    assert paper.tgt[1].tolist() == release.tgt[1].tolist()


def test_tensorize_static_shapes_and_values():
    df = pd.DataFrame({"source": ["a b", "", "d " * 30], "target": ["c", "a b zzz", ""]})
    t = tensorize(df, VOCAB, settings())
    assert t.src.shape == (3, 15) and t.tgt.shape == (3, 21) and t.src.dtype == torch.long
    assert t.src[0].tolist() == [PAD_ID] * 12 + [A, B, EOU_ID]
    assert t.src[1].tolist() == [PAD_ID] * 14 + [EOU_ID]
    assert t.src[2].tolist() == [D] * 14 + [EOU_ID]
    assert t.tgt[1].tolist() == [BOS_ID, A, B, UNK_ID, EOS_ID] + [PAD_ID] * 16
    assert t.tgt[2].tolist()[:3] == [BOS_ID, EOS_ID, PAD_ID]
    short = tensorize(df, VOCAB, settings(max_source_len=4, max_target_len=3, source_eou=False))
    assert short.src.shape == (3, 4) and short.tgt[1].tolist() == [BOS_ID, A, B, EOS_ID]


def _rows(n: int) -> PairTensors:
    return PairTensors(torch.arange(n).unsqueeze(1).repeat(1, 15), torch.arange(n).unsqueeze(1).repeat(1, 21))


def test_batches_in_order_with_a_smaller_last_batch():
    got = [b.src[:, 0].tolist() for b in batches(_rows(10), 4)]
    assert got == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shuffled_batches_cover_every_row_once_and_follow_the_generator():
    def order(seed: int) -> list[int]:
        g = torch.Generator().manual_seed(seed)
        out = [b for b in batches(_rows(23), 5, shuffle=True, generator=g)]
        assert all(torch.equal(b.src[:, 0], b.tgt[:, 0]) for b in out)      # rows stay paired
        return [i for b in out for i in b.src[:, 0].tolist()]

    assert sorted(order(1)) == list(range(23))
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(23))


@pytest.mark.parametrize("n,bs", [(1, 64), (64, 64), (65, 64)])
def test_batch_count(n: int, bs: int):
    assert len(list(batches(_rows(n), bs))) == -(-n // bs)


def test_load_pairs_keeps_the_first_max_pairs_rows_in_file_order(tmp_path):
    from negtrain_core.data.tensors import load_pairs

    df = pd.DataFrame({"source": ["a", "b", "c", "d"], "target": ["d", "c", "b", "a"]})
    df.to_parquet(tmp_path / "pairs.parquet")
    two = load_pairs(tmp_path / "pairs.parquet", VOCAB, settings(max_source_len=2, max_target_len=2), "cpu", 2)
    assert two.src.tolist() == [[A, EOU_ID], [B, EOU_ID]]
    assert two.tgt.tolist() == [[BOS_ID, D, EOS_ID], [BOS_ID, C, EOS_ID]]
    assert len(load_pairs(tmp_path / "pairs.parquet", VOCAB, settings(), "cpu")) == 4      # None: every row


def test_with_first_turns_adds_each_dialogues_non_empty_opening_as_turn_zero():
    from negtrain_core.data.tensors import with_first_turns

    pairs = pd.DataFrame({"dialogue_id": ["d1", "d1", "d2", "d3"], "turn": [2, 1, 1, 1],
                          "source": ["b", "a", "", "c"], "target": ["c", "b", "x", "d"]})
    got = with_first_turns(pairs)
    assert got.iloc[:4].equals(pairs)
    extra = got.iloc[4:]
    assert list(zip(extra["dialogue_id"], extra["turn"], extra["source"], extra["target"])) == [
        ("d1", 0, "", "a"), ("d3", 0, "", "c")]                       # d2 opens with nothing: no empty sentence
