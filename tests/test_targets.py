"""Target lists read defensively (negtrain_core.search.targets): OOV report and policy, clear errors, tensor layout."""

import pytest

from negtrain_core.search.targets import TargetListError, parse_line, read_targets, target_tensor
from negtrain_core.data.vocab import SPECIALS, Vocab

VOCAB = Vocab(SPECIALS + ("i", "hate", "you", "are", "bad"))   # ids 5..9


def _write(tmp_path, text):
    path = tmp_path / "list.txt"
    path.write_text(text)
    return path


def test_skip_policy_reports_each_oov_target_and_counts_it(tmp_path):
    path = _write(tmp_path, "i hate you\nyou are stupid\n<s> you are bad </s>\nugly ugly you\n")
    tl = read_targets(path, VOCAB)
    assert tl.texts == ("i hate you", "you are bad")
    assert tl.ids == ((5, 6, 7), (7, 8, 9))
    assert tl.skipped == 2
    assert tl.oov == (("you are stupid", ("stupid",)), ("ugly ugly you", ("ugly", "ugly")))
    report = tl.report()
    assert len(report) == 3 and "'you are stupid'" in report[0] and "skipped" in report[0]
    assert report[0].startswith(f"{path}:2: ") and report[1].startswith(f"{path}:4: ")
    assert "2 targets kept, 2 skipped" in report[-1]


def test_unk_policy_keeps_targets_with_unk(tmp_path):
    tl = read_targets(_write(tmp_path, "i hate you\nyou are stupid\n"), VOCAB, oov_policy="unk")
    assert tl.texts == ("i hate you", "you are stupid") and tl.skipped == 0
    assert tl.ids[1] == (7, 8, 1)
    assert len(tl.oov) == 1 and "kept with <unk>" in tl.report()[0]


def test_empty_list_and_nothing_left_are_clear_errors(tmp_path):
    with pytest.raises(TargetListError, match=r"list\.txt holds no target"):
        read_targets(_write(tmp_path, ""), VOCAB)
    with pytest.raises(TargetListError, match=r"list\.txt:1: blank line"):
        read_targets(_write(tmp_path, "\n  \n"), VOCAB)
    with pytest.raises(TargetListError, match=r"list\.txt: all 2 targets have out-of-vocabulary words"):
        read_targets(_write(tmp_path, "you stink\nbye\n"), VOCAB)
    with pytest.raises(TargetListError, match="oov_policy"):
        read_targets(_write(tmp_path, "i hate you\n"), VOCAB, oov_policy="drop")


def test_parse_line_and_target_tensor():
    assert parse_line("<s> i hate you </s>") == ["i", "hate", "you"]
    assert parse_line("  i  hate ") == ["i", "hate"]
    assert target_tensor([(5, 6, 7), (9,)]).tolist() == [[2, 5, 6, 7, 0], [2, 9, 0, 3, 3]]
