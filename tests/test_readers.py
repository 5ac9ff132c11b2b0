"""Corpus readers on the fixtures in tests/fixtures (plain folders, and the same files packed as .gz, .zip, .tar.gz)."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import chitchat, opensubtitles, paraphrase, reader, ubuntu
from negtrain_core.data.readers.archive import iter_members, member_names

FIXTURES = Path(__file__).parent / "fixtures"
UDC_DIALOGUES = {
    "3/10.tsv": ("My wifi doesn't work. Any ideas?", "Which card is it?", "An Intel 2200, I think."),
    "3/11.tsv": ("Is Warty out?", "Yes, since yesterday.", "Thanks!"),
}


def settings(reader_name: str, path: Path | str, **split) -> DataSettings:
    split = {"train_dialogues": None, "valid_dialogues": 1, "test_dialogues": 1, "order": "file", **split}
    return DataSettings(name="t", reader=reader_name, raw={"path": str(path)}, split=split, vocab_size=50)


def pack_zip(folder: Path, dest: Path) -> Path:
    """``folder``'s files in the zip ``dest``, in sorted order."""
    with zipfile.ZipFile(dest, "w") as z:
        for p in sorted(q for q in folder.rglob("*") if q.is_file()):
            z.write(p, arcname=p.relative_to(folder).as_posix())
    return dest


def pack_tar_gz(folder: Path, dest: Path, gzip_members: bool = False) -> Path:
    """``folder``'s files in the tar.gz ``dest``, in sorted order, each gzipped (name + .gz) if asked."""
    with tarfile.open(dest, "w:gz") as t:
        for p in sorted(q for q in folder.rglob("*") if q.is_file()):
            name = p.relative_to(folder).as_posix()
            if gzip_members:
                gz = dest.parent / (p.name + ".gz")
                gz.write_bytes(gzip.compress(p.read_bytes()))
                t.add(gz, arcname=name + ".gz")
            else:
                t.add(p, arcname=name)
    return dest


# ---------------------------------------------------------------------------------------------- containers


@pytest.mark.parametrize("container", ["folder", "zip", "tar.gz", "tar.gz+gz"])
def test_archive_members_are_the_same_in_every_container(tmp_path: Path, container: str) -> None:
    folder = FIXTURES / "ubuntu" / "udc_v1"
    if container == "folder":
        path = folder
    elif container == "zip":
        path = pack_zip(folder, tmp_path / "x.zip")
    else:
        path = pack_tar_gz(folder, tmp_path / "x.tar.gz", gzip_members=container.endswith("+gz"))
    suffix = ".gz" if container.endswith("+gz") else ""
    names = member_names(path)
    assert names == [f"dialogs/3/10.tsv{suffix}", f"dialogs/3/11.tsv{suffix}", f"dialogs/4/2.tsv{suffix}"]
    contents = {n.removesuffix(".gz"): f.read() for n, f in iter_members(path)}
    assert contents["dialogs/4/2.tsv"] == (folder / "dialogs/4/2.tsv").read_bytes()


def test_missing_raw_input_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.tgz"):
        list(iter_members(tmp_path / "nowhere.tgz"))


# ---------------------------------------------------------------------------------------------- chitchat


def test_chitchat_turns_are_joined_and_bad_turns_counted() -> None:
    conversations = json.loads((FIXTURES / "chitchat" / "conversations.json").read_text())
    r = chitchat.from_conversations(conversations, source="conversations.json")
    assert [d.id for d in r.dialogues] == ["c1", "c2", "c4"]
    assert r.dialogues[0].utterances == ("Hi there! How are you?", "I'm fine, thanks.", "Great :)")
    assert r.dialogues[1].utterances == ("Anyone here?", "Yes, me.")
    assert (r.records, r.malformed) == (9, 3)    # 6 good turns; 2 bad turns of c2; c3 without messages
    assert r.malformed_examples[0] == "conversations.json:c2/turn 1: not a list of messages with text"
    assert r.notes["one_turn_conversations"] == 1 and r.split is None


def test_chitchat_package_reader() -> None:
    r = reader("chitchat")(settings("chitchat", ""))
    assert len(r.dialogues) == 7168 and r.malformed == 0
    assert r.notes["one_turn_conversations"] == 3150
    assert all(d.utterances and all(isinstance(u, str) for u in d.utterances) for d in r.dialogues[:100])


# ---------------------------------------------------------------------------------------------- Ubuntu UDC v1


@pytest.mark.parametrize("container", ["folder", "tar.gz", "tar.gz+gz", "zip"])
def test_udc_tsv_release(tmp_path: Path, container: str) -> None:
    folder = FIXTURES / "ubuntu" / "udc_v1"
    path = {"folder": lambda: folder,
            "tar.gz": lambda: pack_tar_gz(folder, tmp_path / "ubuntu_dialogs.tgz"),
            "tar.gz+gz": lambda: pack_tar_gz(folder, tmp_path / "ubuntu_dialogs.tgz", gzip_members=True),
            "zip": lambda: pack_zip(folder, tmp_path / "ubuntu_dialogs.zip")}[container]()
    r = reader("udc_v1")(settings("udc_v1", path))
    assert {d.id: d.utterances for d in r.dialogues[:2]} == UDC_DIALOGUES
    assert r.dialogues[2].id == "4/2.tsv"
    assert r.dialogues[2].utterances == ("How do I list files?", "use ls\t-l (a tab inside)")
    assert (r.records, r.malformed) == (10, 1)
    assert r.malformed_examples[0].startswith("dialogs/3/11.tsv") and ":3:" in r.malformed_examples[0]


@pytest.mark.parametrize("container", ["plain", "gz", "tar.gz"])
def test_udc_flattened_csv(tmp_path: Path, container: str) -> None:
    src = FIXTURES / "ubuntu" / "udc_csv" / "dialogueText.csv"
    if container == "plain":
        path = src
    elif container == "gz":
        path = tmp_path / "dialogueText.csv.gz"
        path.write_bytes(gzip.compress(src.read_bytes()))
    else:
        path = pack_tar_gz(src.parent, tmp_path / "udc.tar.gz")
    r = reader("udc_v1")(settings("udc_v1", path))
    assert {d.id: d.utterances for d in r.dialogues[:2]} == UDC_DIALOGUES
    assert r.dialogues[2].utterances == ('How do I list "all" files?', "use ls -l, or\nls -la for hidden ones")
    assert (r.records, r.malformed) == (11, 2)     # 9 good rows; a 4-field row; a late row of 3/10.tsv
    name = "dialogueText.csv" + (".gz" if container == "gz" else "")
    assert r.malformed_examples[0] == f"{name}:8: 4 fields, expected 6"
    assert r.malformed_examples[1].startswith(f"{name}:13: row of dialogue 3/10.tsv after its rows ended")


def test_udc_reader_stops_after_the_configured_dialogues() -> None:
    r = reader("udc_v1")(settings("udc_v1", FIXTURES / "ubuntu" / "udc_v1", train_dialogues=1, valid_dialogues=1,
                                  test_dialogues=1))
    assert len(r.dialogues) == 3
    r = reader("udc_v1")(settings("udc_v1", FIXTURES / "ubuntu" / "udc_csv" / "dialogueText.csv",
                                  train_dialogues=1, valid_dialogues=1, test_dialogues=1))
    assert [d.id for d in r.dialogues] == ["3/10.tsv", "3/11.tsv", "4/2.tsv"]


def test_udc_bad_csv_header_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "dialogueText_301.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="dialogueText_301.csv:1: header"):
        reader("udc_v1")(settings("udc_v1", bad))


def test_udc_path_without_udc_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing")
    with pytest.raises(ValueError, match="not a UDC v1 release"):
        reader("udc_v1")(settings("udc_v1", tmp_path))


def test_merge_turns() -> None:
    assert ubuntu.merge_turns([("a", "1"), ("a", "2"), ("b", "3"), ("a", "4")]) == ("1 2", "3", "4")
    assert ubuntu.merge_turns([]) == ()


# ---------------------------------------------------------------------------------------------- IRC reply links


def test_log_lines_are_parsed_and_addressees_stripped() -> None:
    assert ubuntu.parse_log_line("[10:01] <bob> alice: which card?") == ("bob", "alice: which card?")
    assert ubuntu.parse_log_line("[10:04]  * carol says thanks") == ("carol", "says thanks")
    assert ubuntu.parse_log_line("=== bob [~b@h] has joined #ubuntu") is None
    assert ubuntu.parse_log_line("garbage") == "garbage"
    nicks = {"alice", "bob"}
    assert ubuntu.strip_addressee("Alice: which card?", nicks) == "which card?"
    assert ubuntu.strip_addressee("bob, an sb live", nicks) == "an sb live"
    assert ubuntu.strip_addressee("Note: not a nick", nicks) == "Note: not a nick"


def test_two_party_dialogues_follow_reply_chains() -> None:
    m = [("a", "q"), None, ("b", "r1"), ("c", "other"), ("a", "x"), ("a", "x2"), ("d", "r3"), ("b", "r2"),
         ("c", "act"), ("e", "r4")]
    links = [(0, 0), (0, 2), (2, 4), (4, 5), (5, 7), (3, 3), (3, 6), (6, 8), (0, 9), (1, 1), (0, 1)]
    assert ubuntu.two_party_dialogues(m, links) == [[0, 2, 4, 5, 7], [0, 9], [3, 6, 8]]


def test_two_party_dialogues_close_same_speaker_blocks_transitively() -> None:
    m = [("a", "1"), ("a", "2"), ("a", "3"), ("b", "reply to 3")]
    assert ubuntu.two_party_dialogues(m, [(0, 1), (1, 2), (2, 3)]) == [[0, 1, 2, 3]]
    assert ubuntu.two_party_dialogues(m, [(0, 1), (1, 2)]) == []      # one speaker only: no dialogue


@pytest.mark.parametrize("container", ["folder", "tar.gz"])
def test_irc_reply_link_reader(tmp_path: Path, container: str) -> None:
    folder = FIXTURES / "ubuntu" / "irc"
    path = folder if container == "folder" else pack_tar_gz(folder, tmp_path / "irc.tar.gz")
    r = reader("irc_reply_links")(settings("irc_reply_links", path))
    got = {d.id: d.utterances for d in r.dialogues}
    stem = "train/2005-01-01.train-a"
    assert got == {
        f"{stem}:0:alice+bob": ("hi all, my sound is broken", "which card?", "an sb live on dapper", "try alsamixer"),
        f"{stem}:0:alice+erin": ("hi all, my sound is broken", "or check pavucontrol"),
        f"{stem}:3:carol+dave": ("anyone know about grub?", "grub-install /dev/sda", "says thanks"),
        "dev/2006-02-02_01:0:gina+hank": ("how do i mount an iso?", "sudo mount -o loop file.iso /mnt",
                                          "thanks, it works"),
        "test/2007-03-03_02:1:ivan+judy": ("is feisty stable?", "mostly yes"),
    }
    assert Counter(r.split.values()) == {"train": 3, "valid": 1, "test": 1}
    assert r.split["dev/2006-02-02_01:0:gina+hank"] == "valid"
    assert r.malformed == 2 and r.records == 11 + 11 + 3 + 3 + 3 + 2
    assert r.malformed_examples[0].endswith("train-a.ascii.txt:11: not a message, action or === system line: "
                                            "'garbage line that is no message'")
    assert r.malformed_examples[1].endswith("train-a.annotation.txt:11: not 'parent child -' with indices below "
                                            "11: 'x y -'")


def test_irc_link_beyond_the_log_is_malformed() -> None:
    from negtrain_core.data.readers.archive import Tally

    tally = Tally()
    assert ubuntu.reply_links("a.annotation.txt", ["0 1 -", "0 7 -", "1 2"], 3, tally) == [(0, 1)]
    assert (tally.records, tally.malformed) == (3, 2)


# ---------------------------------------------------------------------------------------------- OpenSubtitles


def os_settings(path: Path, seed: int = 1, **split) -> DataSettings:
    split = {"train_dialogues": None, "valid_dialogues": 1, "test_dialogues": 1, **split}
    return DataSettings(name="o", reader="opus_xml", raw={"path": str(path)}, split=split, vocab_size=50, seed=seed)


@pytest.mark.parametrize("container", ["folder", "zip", "tar.gz+gz"])
def test_opensubtitles_movies_sentences_and_split(tmp_path: Path, container: str) -> None:
    folder = FIXTURES / "opensubtitles"
    path = {"folder": lambda: folder, "zip": lambda: pack_zip(folder, tmp_path / "en.zip"),
            "tar.gz+gz": lambda: pack_tar_gz(folder, tmp_path / "en.tar.gz", gzip_members=True)}[container]()
    r = reader("opus_xml")(os_settings(path))
    got = {d.id: d.utterances for d in r.dialogues}
    assert got["1999/101"] == ("Where are you going ?", "I do n't know .", "Home .")   # 1.xml, not 2.xml
    assert got["2003/303"] == ("Run !", "Why ?", "They 're coming .", "- Who ?")
    assert got["2007/505"] == ("Untokenised text, as in the OPUS raw release.", "Second line & more.")
    assert sorted(got) == ["1999/101", "2001/202", "2003/303", "2005/404", "2007/505"]
    assert Counter(r.split.values()) == {"train": 3, "valid": 1, "test": 1}
    assert (r.records, r.malformed) == (5, 0)


def test_opensubtitles_choice_is_seeded_and_only_chosen_movies_are_parsed() -> None:
    folder = FIXTURES / "opensubtitles"
    a = reader("opus_xml")(os_settings(folder, seed=1, train_dialogues=1))
    assert a.split == reader("opus_xml")(os_settings(folder, seed=1, train_dialogues=1)).split
    assert len(a.dialogues) == 3 and a.records == 3 and a.notes["movies_available"] == 5
    splits = {tuple(sorted(reader("opus_xml")(os_settings(folder, seed=s)).split.items())) for s in range(8)}
    assert len(splits) > 1                                   # the seed changes the choice


def test_opensubtitles_broken_xml_is_malformed(tmp_path: Path) -> None:
    folder = tmp_path / "en"
    shutil.copytree(FIXTURES / "opensubtitles", folder)
    (folder / "OpenSubtitles/xml/en/2005/404/1.xml").write_text("<document><s id='1'><w>oops</s>")
    r = reader("opus_xml")(os_settings(folder))
    assert (r.records, r.malformed) == (5, 1) and "2005/404/1.xml" in r.malformed_examples[0]
    assert "2005/404" not in {d.id for d in r.dialogues} and "2005/404" not in r.split


def test_opensubtitles_too_few_movies(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="5 movies: fewer than valid 3 \\+ test 3"):
        reader("opus_xml")(os_settings(FIXTURES / "opensubtitles", valid_dialogues=3, test_dialogues=3))


# ---------------------------------------------------------------------------------------------- paraphrase pairs


def test_paranmt_pairs_and_malformed_lines() -> None:
    path = FIXTURES / "paraphrase" / "paranmt.txt"
    got = paraphrase.load_pairs("paranmt", path)
    assert got.pairs == [("i do n't know .", "i have no idea ."), ("where are you ?", "where are you now ?"),
                         ("good one .", "fine one .")]
    assert (got.records, got.malformed) == (6, 3)
    assert got.malformed_examples[0].startswith(f"{path}:3:")
    assert got.malformed_examples[2] == f"{path}:5: empty sentence"
    with pytest.raises(ValueError, match=f"{path}: 3 of 6 lines malformed"):
        paraphrase.read_pairs("paranmt", path)
    assert len(paraphrase.read_pairs("paranmt", path, max_malformed_share=0.5)) == 3


def test_mrpc_keeps_label_1_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "msr_paraphrase_train.txt"
    path.write_bytes(
        b"\xef\xbb\xbfQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
        b'1\t1\t2\tHe said "yes.\tHe agreed.\r\n'
        b"0\t3\t4\tA cat.\tA dog.\r\n"
        b"1\t5\t6\tOnly four fields\r\n"
        b"1\t7\t8\tIt rains.\tIt is raining.\r\n")
    got = paraphrase.load_pairs("mrpc", path)
    assert got.pairs == [('He said "yes.', "He agreed."), ("It rains.", "It is raining.")]
    assert (got.records, got.malformed) == (4, 1) and got.malformed_examples[0].startswith(f"{path}:4:")


def test_mrpc_header_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_text("a\tb\n")
    with pytest.raises(ValueError, match="m.txt:1: header"):
        paraphrase.load_pairs("mrpc", path)


def test_parallel_files_with_crlf_and_stray_cr_stay_aligned(tmp_path: Path) -> None:
    q1, q2 = tmp_path / "dev.q1", tmp_path / "dev.q2"
    q1.write_bytes(b"how old are you ?\r\nwhat is this ?\r\nwhere ?\r\n")
    q2.write_bytes(b"what is your age\r\nwhat\ris that ?\r\n\r\n")
    got = paraphrase.load_pairs("parallel", q1, q2)
    assert got.pairs == [("how old are you ?", "what is your age"), ("what is this ?", "what is that ?")]
    assert (got.records, got.malformed) == (3, 1) and got.malformed_examples == [f"{q1}:3: empty sentence"]
    gz = tmp_path / "dev.q2.gz"
    gz.write_bytes(gzip.compress(q2.read_bytes()))
    assert paraphrase.load_pairs("parallel", q1, gz).pairs == got.pairs


def test_parallel_files_of_different_length_are_refused(tmp_path: Path) -> None:
    q1, q2 = tmp_path / "a.q1", tmp_path / "a.q2"
    q1.write_text("a\nb\n")
    q2.write_text("a\n")
    with pytest.raises(ValueError, match="a.q1 has 2 lines but .*a.q2 has 1"):
        paraphrase.load_pairs("parallel", q1, q2)
    with pytest.raises(ValueError, match="unknown paraphrase format 'tsv'"):
        paraphrase.load_pairs("tsv", q1)


def test_shared_paraphrase_corpora(shared_data: Path) -> None:
    mrpc = paraphrase.read_pairs("mrpc", shared_data / "paraphrase/mrpc/msr_paraphrase_train.txt")
    assert len(mrpc) == 2755                                   # README: 2,755 labelled paraphrase
    quora = paraphrase.read_pairs("parallel", shared_data / "paraphrase/quora_paragen/dev.q1",
                                  shared_data / "paraphrase/quora_paragen/dev.q2")
    assert len(quora) == 10367
