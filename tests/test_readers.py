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
import yaml

from negtrain_core.config import SCHEMA_PATH, DataSettings
from negtrain_core.data import raw
from negtrain_core.data.readers import READERS, UnknownReader, chitchat, paraphrase, reader, ubuntu
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


# ---------------------------------------------------------------------------------------------- the registry

DATASET_SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())["$defs"]["dataset"]
SCHEMA_READERS = set(DATASET_SCHEMA["properties"]["reader"]["enum"])
OWN_FILE_READERS = set(DATASET_SCHEMA["if"]["properties"]["reader"]["enum"])   # raw.path required, fractions allowed
PACKAGED = {"chitchat"}                                                         # reads an installed package, no file


def test_the_schema_and_the_registry_name_the_same_readers() -> None:
    """A reader the schema accepts but READERS lacks would fail only inside a preprocess job; one READERS holds but
    the schema refuses could never be configured."""
    assert SCHEMA_READERS == set(READERS), (
        f"schemas/config.schema.yaml ($defs.dataset.properties.reader.enum) and READERS in "
        f"negtrain_core/data/readers/__init__.py differ: only in the schema {sorted(SCHEMA_READERS - set(READERS))}, "
        f"only in READERS {sorted(set(READERS) - SCHEMA_READERS)}; add the reader to both")


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_resolves_to_its_function(name: str) -> None:
    assert callable(reader(name))


def test_an_unregistered_reader_is_named_in_one_line() -> None:
    with pytest.raises(UnknownReader) as err:
        reader("pairs_tsv")
    assert str(err.value) == ("reader 'pairs_tsv' (config datasets.<name>.reader) is not in READERS of "
                              "negtrain_core.data.readers: add it there with the module that reads it")


def test_every_reader_of_a_file_says_what_to_put_where_when_it_is_missing() -> None:
    """The line a missing raw file gets (raw._missing_line): readers of a user's own files describe the format
    (raw.OWN_DATA, the schema's if-branch for them), corpus readers where to download it (raw.HOW_TO_GET)."""
    assert OWN_FILE_READERS == set(raw.OWN_DATA), (
        f"readers of one's own files: the schema's $defs.dataset.if enum {sorted(OWN_FILE_READERS)} and OWN_DATA in "
        f"negtrain_core/data/raw.py {sorted(raw.OWN_DATA)} differ; add the reader to both")
    corpus = set(READERS) - OWN_FILE_READERS - PACKAGED
    assert corpus <= set(raw.HOW_TO_GET), (
        f"corpus readers without a download line in HOW_TO_GET of negtrain_core/data/raw.py: "
        f"{sorted(corpus - set(raw.HOW_TO_GET))}")


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
    """Both fixtures hold three dialogues; a split of 1 + 1 + 0 reads the first two and stops there."""
    for path in (FIXTURES / "ubuntu" / "udc_v1", FIXTURES / "ubuntu" / "udc_csv" / "dialogueText.csv"):
        r = reader("udc_v1")(settings("udc_v1", path, train_dialogues=1, valid_dialogues=1, test_dialogues=0))
        assert [d.id for d in r.dialogues] == ["3/10.tsv", "3/11.tsv"] and r.notes["stopped_after"] == 2
    assert (r.records, r.malformed) == (8, 1)            # the CSV's late row of 3/10.tsv (line 13) is never read


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


def test_opensubtitles_too_few_movies_name_the_corpus_and_the_split_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        reader("opus_xml")(os_settings(FIXTURES / "opensubtitles", valid_dialogues=3, test_dialogues=3))
    assert str(err.value) == (
        f"{FIXTURES / 'opensubtitles'}: 5 movies, too few for datasets.o.split: valid 3 + test 3 leave "
        f"none for training; use the whole OPUS dump or lower datasets.o.split.valid_dialogues / "
        f"test_dialogues")


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


# ---------------------------------------------------------------------------------------------- dropped / altered

LATIN1_LINE = "2004-01-01T00:00:00.000Z\tbob\talice\tun caf\xe9 ?\n".encode("latin-1")   # 'é' is not UTF-8 here


def tsv(*lines: str) -> bytes:
    return "".join(f"2004-01-01T00:00:00.000Z\t{line}\n" for line in lines).encode()


def udc_problem_folder(root: Path) -> Path:
    """A UDC v1 tsv tree written for the test: a bad byte, an empty file, a malformed line, a clean dialogue."""
    d = root / "dialogs" / "7"
    d.mkdir(parents=True)
    (d / "1.tsv").write_bytes(tsv("alice\t\thello there") + LATIN1_LINE + tsv("alice\tbob\tyes"))
    (d / "2.tsv").write_bytes(b"")
    (d / "3.tsv").write_bytes(tsv("carol\t\tanyone?") + b"only\ttwo fields\n" + tsv("dave\tcarol\tme"))
    (d / "4.tsv").write_bytes(tsv("erin\t\thi", "fred\terin\thello"))
    return root


def test_udc_counts_bad_bytes_empty_files_and_malformed_lines_per_file(tmp_path: Path) -> None:
    r = reader("udc_v1")(settings("udc_v1", udc_problem_folder(tmp_path / "udc")))
    assert [d.id for d in r.dialogues] == ["7/1.tsv", "7/2.tsv", "7/3.tsv", "7/4.tsv"]
    assert r.dialogues[0].utterances == ("hello there", "un caf\ufffd ?", "yes")       # replaced, and counted:
    assert (r.records, r.malformed, r.empty, r.bad_bytes) == (9, 1, 1, 1)
    assert r.files == {"dialogs/7/1.tsv": {"bad_bytes": 1}, "dialogs/7/2.tsv": {"empty": 1},
                       "dialogs/7/3.tsv": {"malformed": 1}}
    assert r.bad_byte_examples == ["dialogs/7/1.tsv:2: bytes that are not UTF-8 replaced"]
    assert r.malformed_examples == ["dialogs/7/2.tsv: empty dialogue file",
                                    "dialogs/7/3.tsv:2: 2 tab-separated fields, expected 4"]
    counts = r.counts()
    assert (counts["raw_records"], counts["bad_byte_records"], counts["empty_files"], counts["problem_files"]) == \
        (9, 1, 1, 3)


def test_udc_csv_counts_bad_bytes_and_an_empty_file(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    header = b"folder,dialogueID,date,from,to,text\n"
    (folder / "dialogueText_1.csv").write_bytes(
        header + b'3,1.tsv,2004,a,,"hi"\n' + '3,1.tsv,2004,b,a,"caf\xe9"\n'.encode("latin-1"))
    (folder / "dialogueText_2.csv").write_bytes(b"")
    r = reader("udc_v1")(settings("udc_v1", folder))
    assert r.dialogues[0].utterances == ("hi", "caf\ufffd")
    assert (r.records, r.malformed, r.empty, r.bad_bytes) == (3, 0, 1, 1)
    assert r.bad_byte_examples == ["dialogueText_1.csv:3: bytes that are not UTF-8 replaced"]
    assert r.files == {"dialogueText_1.csv": {"bad_bytes": 1}, "dialogueText_2.csv": {"empty": 1}}


def test_irc_counts_bad_bytes_and_an_empty_annotation(tmp_path: Path) -> None:
    train = tmp_path / "irc" / "train"
    train.mkdir(parents=True)
    (train / "a.ascii.txt").write_bytes(b"[10:00] <ann> my wifi is broken\n" +
                                        "[10:01] <bob> ann: caf\xe9 card?\n".encode("latin-1"))
    (train / "a.annotation.txt").write_text("0 1 -\n")
    (train / "b.ascii.txt").write_text("[11:00] <cid> hello\n")
    (train / "b.annotation.txt").write_text("")
    r = reader("irc_reply_links")(settings("irc_reply_links", tmp_path / "irc"))
    assert [d.utterances for d in r.dialogues] == [("my wifi is broken", "caf\ufffd card?")]
    assert (r.malformed, r.empty, r.bad_bytes) == (0, 1, 1)
    assert r.files == {"train/a.ascii.txt": {"bad_bytes": 1}, "train/b.annotation.txt": {"empty": 1}}
    assert r.bad_byte_examples == ["train/a.ascii.txt:2: bytes that are not UTF-8 replaced"]


def test_opensubtitles_bad_bytes_are_malformed_with_the_line_and_a_file_without_sentences_is_empty(
        tmp_path: Path) -> None:
    folder = tmp_path / "en"
    shutil.copytree(FIXTURES / "opensubtitles", folder)
    movies = folder / "OpenSubtitles/xml/en"
    (movies / "2005/404/1.xml").write_bytes("<document>\n<s id='1'><w>caf\xe9</w></s>\n</document>".encode("latin-1"))
    (movies / "2003/303/1.xml").write_text("<document></document>")
    r = reader("opus_xml")(os_settings(folder))
    assert (r.records, r.malformed, r.empty) == (5, 1, 1)
    assert r.malformed_examples[0] == "OpenSubtitles/xml/en/2003/303/1.xml: no <s> sentence"
    assert r.malformed_examples[1].startswith("OpenSubtitles/xml/en/2005/404/1.xml:2: not a well-formed XML file")
    assert r.files["OpenSubtitles/xml/en/2005/404/1.xml"] == {"malformed": 1}
    assert {"2003/303", "2005/404"}.isdisjoint(d.id for d in r.dialogues)


def test_chitchat_conversation_without_turns_is_counted_empty() -> None:
    r = chitchat.from_conversations({"a": {"messages": []}, "b": {"messages": [[{"text": "hi"}]]}}, source="x.json")
    assert [d.id for d in r.dialogues] == ["b"] and (r.records, r.empty) == (2, 1)
    assert r.files == {"x.json": {"empty": 1}} and r.malformed_examples == ["x.json:a: conversation without turns"]


def test_paraphrase_lines_with_bad_bytes_are_counted_and_refused_over_the_share(tmp_path: Path) -> None:
    path = tmp_path / "para.txt"
    path.write_bytes(b"a b\tc d\n" + "caf\xe9\tcoffee shop\n".encode("latin-1") + b"e f\tg h\n")
    got = paraphrase.load_pairs("paranmt", path)
    assert len(got.pairs) == 3 and got.bad_bytes == 1
    assert got.bad_byte_examples == [f"{path}:2: bytes that are not UTF-8 replaced"]
    with pytest.raises(ValueError) as err:
        paraphrase.read_pairs("paranmt", path, max_malformed_share=0.1)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 1 of 3 lines hold bytes that are not UTF-8") and "\n" not in msg
    assert len(paraphrase.read_pairs("paranmt", path, max_malformed_share=0.5)) == 3


# ---------------------------------------------------------------------------------------------- corrupt archives


def truncated(path: Path, keep: float = 0.5) -> Path:
    """``path`` cut to ``keep`` of its bytes, as an interrupted download leaves it."""
    out = path.with_name("cut_" + path.name)
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def big_udc_folder(root: Path, n: int = 40) -> Path:
    """``n`` dialogues of incompressible text, so that a cut tar.gz breaks inside a member."""
    import random

    rng = random.Random(0)
    d = root / "dialogs" / "1"
    d.mkdir(parents=True)
    for i in range(n):
        words = [" ".join("".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(12)) for _ in range(20)]
        (d / f"{i}.tsv").write_bytes(tsv(*(f"{'ab'[j % 2]}\t\t{w}" for j, w in enumerate(words))))
    return root


def test_truncated_tar_gz_fails_in_one_line_naming_the_file(tmp_path: Path) -> None:
    from negtrain_core.data.readers.archive import CorruptArchive

    path = truncated(pack_tar_gz(big_udc_folder(tmp_path / "u"), tmp_path / "ubuntu_dialogs.tgz"))
    with pytest.raises(CorruptArchive) as err:
        reader("udc_v1")(settings("udc_v1", path))
    msg = str(err.value)
    assert msg.startswith(f"{path} (member dialogs/1/") and "truncated or corrupt archive" in msg and "\n" not in msg
    with pytest.raises(CorruptArchive, match=f"^{path}: truncated or corrupt archive"):
        member_names(path)


def test_a_tar_gz_cut_anywhere_never_reads_as_a_smaller_whole_archive(tmp_path: Path) -> None:
    """tarfile's stream mode takes a header cut off by the end of the data for the archive's end: without the
    end-of-stream check, about half of these cuts read silently as fewer dialogues."""
    from negtrain_core.data.readers.archive import CorruptArchive

    folder = tmp_path / "u" / "dialogs" / "1"
    folder.mkdir(parents=True)
    for i in range(20):
        (folder / f"{i}.tsv").write_bytes(tsv(f"a\t\thello {i}", f"b\ta\thi {i}"))
    whole = pack_tar_gz(tmp_path / "u", tmp_path / "whole.tgz").read_bytes()
    assert len(list(iter_members(tmp_path / "whole.tgz"))) == len(member_names(tmp_path / "whole.tgz")) == 20
    cut = tmp_path / "cut.tgz"
    for n in range(9, 400, 13):                      # the last 8 bytes are the gzip CRC and size
        cut.write_bytes(whole[:-n])
        with pytest.raises(CorruptArchive):
            list(iter_members(cut))
        with pytest.raises(CorruptArchive):
            member_names(cut)


def test_cut_zip_and_broken_gzip_member_name_the_file(tmp_path: Path) -> None:
    from negtrain_core.data.readers.archive import CorruptArchive, CorruptMember

    path = truncated(pack_zip(FIXTURES / "ubuntu" / "udc_v1", tmp_path / "ubuntu_dialogs.zip"))
    with pytest.raises(CorruptArchive, match=f"^{path}: truncated or corrupt archive .*download it again$"):
        reader("udc_v1")(settings("udc_v1", path))
    folder = tmp_path / "gz" / "dialogs" / "1"
    folder.mkdir(parents=True)
    (folder / "1.tsv.gz").write_bytes(gzip.compress(tsv("a\t\thello", "b\ta\thi"))[:-12])   # CRC and size cut off
    with pytest.raises(CorruptMember, match=r"\(member dialogs/1/1.tsv.gz\): not a readable gzip file .*"
                                            r"download or compress it again$"):
        reader("udc_v1")(settings("udc_v1", tmp_path / "gz"))
    (folder / "1.tsv.gz").write_bytes(tsv("a\t\thello", "b\ta\thi"))                      # never compressed
    with pytest.raises(CorruptMember, match=r"\(member dialogs/1/1.tsv.gz\): not a readable gzip file \(BadGzipFile: "
                                            r"Not a gzipped file .*\); if it is not compressed, drop the .gz from "
                                            r"its name$"):
        reader("udc_v1")(settings("udc_v1", tmp_path / "gz"))


def test_broken_gzip_subtitle_file_stays_a_malformed_movie(tmp_path: Path) -> None:
    folder = tmp_path / "en"
    shutil.copytree(FIXTURES / "opensubtitles", folder)
    xml = folder / "OpenSubtitles/xml/en/2005/404/1.xml"
    xml.with_suffix(".xml.gz").write_bytes(gzip.compress(xml.read_bytes())[:20])
    xml.unlink()
    r = reader("opus_xml")(os_settings(folder))
    assert r.malformed == 1 and "2005/404/1.xml.gz: not a readable gzip file" in r.malformed_examples[0]
