"""Target lists read defensively (negtrain_core.search.targets): OOV report and policy, clear errors, tensor layout."""

import pytest

from negtrain_core.config import TargetsSettings
from negtrain_core.search.targets import (TargetListError, parse_line, prepare_lists, read_list, read_targets,
                                          target_tensor, targets_from_texts)
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


def test_targets_held_in_memory_read_as_the_same_lines_of_a_file(tmp_path):
    texts = ["i hate you", "you are stupid", "<s> you are bad </s>"]
    path = _write(tmp_path, "\n".join(texts))
    assert targets_from_texts(texts, VOCAB, name=str(path)) == read_targets(path, VOCAB)
    tl = targets_from_texts(texts, VOCAB, "unk")
    assert tl.texts == ("i hate you", "you are stupid", "you are bad") and tl.ids[1] == (7, 8, 1)
    assert tl.report()[0].startswith("given targets:2: target 'you are stupid'")
    with pytest.raises(TargetListError, match=r"^given targets:2: target of 3 words is longer than the 2 "):
        targets_from_texts(["you", "you are bad"], VOCAB, max_len=3)
    with pytest.raises(TargetListError, match=r"^target list mine: all 1 targets have out-of-vocabulary words"):
        targets_from_texts(["you stink"], VOCAB, name="mine")


def test_parse_line_and_target_tensor():
    assert parse_line("<s> i hate you </s>") == ["i", "hate", "you"]
    assert parse_line("  i  hate ") == ["i", "hate"]
    assert target_tensor([(5, 6, 7), (9,)]).tolist() == [[2, 5, 6, 7, 0], [2, 9, 0, 3, 3]]


# ---------------------------------------------------------------------------------------------- refused in one line


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_latin1_list_names_file_line_and_column(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("i hate you\nyou are caf\xe9\n".encode("latin-1"))
    with pytest.raises(TargetListError) as err:
        read_targets(path, VOCAB)
    assert _one_line(err) == f"{path}:2: byte 0xe9 at column 12 is not UTF-8 (save the list as UTF-8)"


def test_list_saved_with_a_byte_order_mark_and_crlf_reads_as_a_plain_one(tmp_path):
    # Windows editors start a UTF-8 file with a BOM, which would cling to the first target's first word
    plain, windows = tmp_path / "plain.txt", tmp_path / "windows.txt"
    plain.write_text("i hate you\nyou are bad\n")
    windows.write_bytes(b"\xef\xbb\xbf" + b"i hate you\r\nyou are bad\r\n")
    assert read_list(windows) == read_list(plain) == ["i hate you", "you are bad"]
    assert read_targets(windows, VOCAB).ids == read_targets(plain, VOCAB).ids == ((5, 6, 7), (7, 8, 9))
    windows.write_bytes(b"\xef\xbb\xbf" + "i hate you\nyou are caf\xe9\n".encode("latin-1"))
    with pytest.raises(TargetListError) as err:
        read_list(windows)
    assert _one_line(err) == f"{windows}:2: byte 0xe9 at column 12 is not UTF-8 (save the list as UTF-8)"


def test_blank_line_and_too_long_target_are_refused_with_file_and_line(tmp_path):
    with pytest.raises(TargetListError, match=r"list\.txt:2: blank line"):
        read_targets(_write(tmp_path, "i hate you\n\nyou are bad\n"), VOCAB)
    nineteen, twenty = " ".join(["you"] * 19), " ".join(["you"] * 20)
    assert len(read_targets(_write(tmp_path, f"{nineteen}\n"), VOCAB, max_len=20).texts) == 1
    with pytest.raises(TargetListError) as err:
        read_targets(_write(tmp_path, f"i hate you\n{twenty}\n"), VOCAB, max_len=20)
    assert _one_line(err).startswith(f"{tmp_path / 'list.txt'}:2: target of 20 words is longer than the 19 a "
                                     f"response can have (preprocess.max_target_len 20, </s> included)")


def test_copy_is_reported_under_the_configured_file_and_lines(tmp_path):
    configured = tmp_path / "configured.txt"
    copy = _write(tmp_path, "i hate you\nyou stink\n")
    tl = read_targets(copy, VOCAB, named=configured)
    assert tl.path == str(configured) and tl.report()[0].startswith(f"{configured}:2: target 'you stink'")
    with pytest.raises(TargetListError) as err:
        read_targets(_write(tmp_path, "you stink\nbye now\n"), VOCAB, named=configured)
    assert _one_line(err) == (f"target list {configured}: all 2 targets have out-of-vocabulary words (oov_policy "
                              f"skip; first: line 1 'you stink' -> ['stink']); nothing left to search")


def test_configured_list_checked_against_a_dataset_vocabulary(tmp_path):
    from negtrain_core.search.targets import check_configured_list

    path = _write(tmp_path, "you stink\nbye now\ni hate you\n")
    assert check_configured_list(path, VOCAB, "chitchat").texts == ("i hate you",)
    with pytest.raises(TargetListError) as err:                  # the quick-scale cut keeps only OOV targets
        check_configured_list(path, VOCAB, "chitchat", size=2)
    assert _one_line(err).startswith(f"dataset chitchat: target list {path}: all 2 targets have out-of-vocabulary "
                                     f"words (oov_policy skip; first: line 1 'you stink' -> ['stink'])")
    with pytest.raises(TargetListError, match=f"^dataset chitchat: {path}:3: target of 3 words is longer"):
        check_configured_list(path, VOCAB, "chitchat", max_len=3)


# ---------------------------------------------------------------------------------------------- the configured lists


def test_lists_refused_on_overlap(tmp_path):
    (tmp_path / "train.txt").write_text("you are bad\ni hate you\n")
    (tmp_path / "test.txt").write_text("you are so bad\ni hate you\n")
    with pytest.raises(TargetListError, match="share 1 target"):
        prepare_lists(tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "a", tmp_path / "b",
                  TargetsSettings(given={}))
    assert not (tmp_path / "a").exists()


def test_lists_cut_to_size_and_overlap_checked_on_the_cut(tmp_path):
    (tmp_path / "train.txt").write_text("you are bad\ni  hate you \ngo away\n")
    (tmp_path / "test.txt").write_text("you are so bad\ni really hate you\ngo away\n")
    counts = prepare_lists(tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "a", tmp_path / "b",
                       TargetsSettings(given={}, list_size=2))
    assert counts == (2, 2)
    assert (tmp_path / "a").read_text() == "you are bad\ni hate you\n"


@pytest.mark.parametrize("text, message", [
    ("you are bad\n\n", "2: empty target line"),
    ("You are bad\n", "1: target 'You are bad' is not in the paper's tokenisation ('you are bad')"),
    ("i don't care\n", "1: target 'i don't care' is not in the paper's tokenisation ('i do n't care')"),
    ("go away\ngo away\n", "2: duplicate target 'go away' (first on line 1)"),
])
def test_bad_lists_refused_with_the_line(tmp_path, text, message):
    (tmp_path / "l.txt").write_text(text)
    with pytest.raises(TargetListError) as err:
        read_list(tmp_path / "l.txt")
    assert str(err.value) == f"{tmp_path / 'l.txt'}:{message}"


def test_list_encoding_length_and_emptiness_refused_with_file_and_line(tmp_path):
    path = tmp_path / "l.txt"
    path.write_bytes("you are bad\nna\xefve fool\n".encode("latin-1"))
    with pytest.raises(TargetListError) as err:
        read_list(path)
    assert str(err.value) == f"{path}:2: byte 0xef at column 3 is not UTF-8 (save the list as UTF-8)"
    path.write_text("")
    with pytest.raises(TargetListError, match=f"^{path}: no targets \\(empty file\\)$"):
        read_list(path)
    path.write_text("go away\n" + " ".join(["bad"] * 60) + "\n")
    assert len(read_list(path)) == 2                              # no length given: not checked
    with pytest.raises(TargetListError, match=f"^{path}:2: target of 60 words is longer than the 19 a response can"):
        read_list(path, max_len=20)


def test_prepare_lists_refuses_a_too_long_target_and_writes_nothing(tmp_path):
    (tmp_path / "train.txt").write_text("you are bad\n")
    (tmp_path / "test.txt").write_text("go away\n" + " ".join(["bad"] * 60) + "\n")
    with pytest.raises(TargetListError, match=r"test.txt:2: target of 60 words"):
        prepare_lists(tmp_path / "train.txt", tmp_path / "test.txt", tmp_path / "o" / "a", tmp_path / "o" / "b",
                  TargetsSettings(given={}, list_size=1, max_len=20))
    assert not (tmp_path / "o").exists()
    with pytest.raises(TargetListError, match="keeps no target"):
        prepare_lists(tmp_path / "train.txt", tmp_path / "train.txt", tmp_path / "a", tmp_path / "b",
                  TargetsSettings(given={}, list_size=0))


def test_unk_token_allowed_in_lists(tmp_path):
    (tmp_path / "l.txt").write_text("you 're a <unk> fool\n")
    assert read_list(tmp_path / "l.txt") == ["you 're a <unk> fool"]
