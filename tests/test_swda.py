"""SwDA readers: markup filtering as the authors did it, the three raw layouts, malformed rows, the authors' split
and the agreement figure (fixtures under tests/fixtures/swda; the real corpus through the ``shared_data`` fixture)."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import reader
from negtrain_core.data.readers.swda import (
    Row, agreement, read, authors_split, match_dialogues, read_swda_markup, read_swda_plain, strip_markup, strip_plain,
    utterances,
)
from negtrain_core.data.text import normalize

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "swda"
AUTHORS = FIXTURES / "authors_test.txt"

# Three rows of conversation 2038 (data README 2c) and their lines in the authors' processed test file.
ROWS_2038 = [
    ("{C but, } {F uh, } talking about Latin America, [ I kind of, + I ] consider Latin America to include Central "
     "and South America  /",
     "talking about latin america i consider latin america to include central and south america"),
    ("[ Do you, + do you ] think [ that, + that ] we should have given up the Panama Canal? /",
     "do you think that we should have given up the panama canal"),
    ("{D Well, } there are those [ [ that, + that, ] + that ] think [ [ that, + that, ] + that ] the Panama Canal has "
     "some considerable strategic importance, particularly for the military. /",
     "there are those that that think that that the panama canal has some considerable strategic importance "
     "particularly for the military"),
]


def _settings(path: Path, reader_name: str = "swda_markup", authors: Path = AUTHORS, valid: int = 1,
              test: int = 1, max_share: float = 0.2) -> DataSettings:
    """The fixtures hold a few deliberately malformed rows (2 of 22): the share tolerated is raised to 20%."""
    return DataSettings(name="switchboard", reader=reader_name, raw={"path": str(path)},
                        split={"authors_file": str(authors), "valid_dialogues": valid, "test_dialogues": test},
                        vocab_size=100, malformed_max_share=max_share)


def _row(text: str, tag: str = "sd", caller: str = "A", index: int = 0) -> Row:
    return Row(index, tag, caller, text)


# ----------------------------------------------------------------------------------------------- markup filter

@pytest.mark.parametrize("text, expected", ROWS_2038)
def test_conversation_2038_rows_match_the_authors_file(text, expected):
    assert normalize(strip_markup(text)) == expected


@pytest.mark.parametrize("text, expected", [
    # one left-to-right pass: each '[' up to its next '+' goes, the brackets of outer repairs stay as words
    ("[ [ [ you, + you kind of, ] + you don-, ] + you really don't ] know",
     "you kind of, you don-, you really don't know"),
    ("it's a lot different [ in I-, + [ than, + in Iowa ] than ] # it is here. # /",
     "it's a lot different in Iowa than it is here."),
    ("the other part is, [ that  [ the, + the, ] + ] [ when, + when ] looking", "the other part is, the, when looking"),
    ("[ [ they, + {F uh, } they, ] + in fact, they ] had, - /", "they, in fact, they had,"),
    ("[ I, + ] [ it, + it ] gets, [ it ge-, + ] there, - /", "it gets, there,"),
])
def test_nested_reparanda_resolved_once_as_the_authors(text, expected):
    assert strip_markup(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("{F Uh, } {D you know, } {C and } {E I mean } it <laughter> <<pause>> works. /", "it works."),
    ("she was, {A she's eighty five years old, } # still # driving. /", "she was, still driving."),
    ("I did live in, {F uh, }  (( San Polo )) Brazil for four years. /", "I did live in, Brazil for four years."),
    ("finding someplace  ((   ))  we could put Michael's  (( goods )) ,  /", "finding someplace ,"),   # greedy (( ))
    ("frostings are butter cream to aren't they. / *[[ to = too ]]", "frostings are butter cream to aren't they."),
    ("the Oakland A -s and T I -ers, - /", "the Oakland As and T Iers,"),
    ("# {C And } the re-, # -/", "the re-,"),
    ("<Laughter>.  /", "."),
])
def test_markup_removed(text, expected):
    assert strip_markup(text) == expected


def test_utterances_drop_at_rows_and_empty_rows_and_join_continuations_to_the_same_caller():
    rows = [
        _row("I have a little turkey left from a [ Passover, +", "sd", "A"),
        _row("Uh-huh. /", "b", "B"),
        _row("-- Passover ] which was in April. /", "+", "A"),
        _row("<Laughter>.  /", "x", "B"),
        _row("{C And then } on the other hand  /", "sd@", "B"),
        _row("-- and so on. /", "+@", "A"),
        _row("Me too. /", "sv", "A"),
        _row("-- really. /", "+", "C"),        # a continuation with no earlier utterance of its caller stays
    ]
    assert utterances(rows) == [
        "I have a little turkey left from a Passover which was in April.", "Uh-huh.", "Me too.", "really.",
    ]


# ----------------------------------------------------------------------------------------------- raw layouts

def _archives(tmp_path: Path) -> dict[str, Path]:
    """The fixture folder, the official zip layout (swda/sw00utt/...) and the shared tar.gz layout (data/swda/...)."""
    folder = FIXTURES / "folder"
    zipped = Path(shutil.make_archive(str(tmp_path / "swda"), "zip", folder))
    tgz = tmp_path / "swda_markup.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(folder / "swda", arcname="data/swda")
    return {"folder": folder, "zip": zipped, "tar.gz": tgz}


def test_folder_zip_and_tar_give_the_same_dialogues_split_and_counts(tmp_path):
    results = {kind: read_swda_markup(_settings(path)) for kind, path in _archives(tmp_path).items()}
    first = results["folder"]
    assert [d.id for d in first.dialogues] == ["1001", "1002", "1003"]
    assert first.split == {"1001": "test", "1002": "valid", "1003": "train"}
    assert (first.records, first.malformed) == (22, 2)
    for result in results.values():
        assert result.dialogues == first.dialogues and result.split == first.split
        assert (result.records, result.malformed) == (22, 2)


def test_fixture_reproduces_the_authors_lines_exactly():
    result = read_swda_markup(_settings(FIXTURES / "folder"))
    authors = [line.split(" <eou>")[:-1] for line in AUTHORS.read_text().splitlines()]
    by_id = {d.id: [normalize(u) for u in d.utterances] for d in result.dialogues}
    assert by_id["1002"] == [u.strip() for u in authors[0]] and by_id["1001"] == [u.strip() for u in authors[1]]
    assert result.notes["authors_test_token_agreement"] == 1.0
    assert result.notes["authors_test_exact_utterance_rate"] == 1.0
    assert result.notes["authors_test_utterances"] == result.notes["our_test_utterances"] == 8
    assert by_id["1003"] == ["i like to cook", "me too", "pasta mostly"]


def test_malformed_rows_are_counted_with_file_and_line():
    result = read_swda_markup(_settings(FIXTURES / "folder"))
    assert len(result.malformed_examples) == 2
    assert result.malformed_examples[0].startswith("swda/sw01utt/sw_0101_1003.utt.csv:4: 5 fields")
    assert result.malformed_examples[1].startswith("swda/sw01utt/sw_0101_1003.utt.csv:5: bad transcript_index 'two'")


def test_unparsable_files_are_counted_and_skipped(tmp_path):
    folder = tmp_path / "swda" / "sw00utt"
    shutil.copytree(FIXTURES / "folder" / "swda" / "sw00utt", folder)
    header = (FIXTURES / "folder" / "swda" / "sw00utt" / "sw_0001_1001.utt.csv").read_bytes().split(b"\r\n")[0]
    (folder / "sw_0003_1009.utt.csv").write_bytes(b"wrong,header\r\n1,2\r\n")
    huge = b"x" * 200_000                          # over csv's field size limit: unparsable
    (folder / "sw_0004_1010.utt.csv").write_bytes(
        header + b"\r\na,b,1010,0,sd,A,1,1,Fine. /,,,\r\na,b,1010,1,sd,B,2,1," + huge + b",,,\r\n")
    result = read_swda_markup(_settings(tmp_path))
    assert [d.id for d in result.dialogues] == ["1001", "1002", "1010"] and result.dialogues[2].utterances == ("Fine.",)
    assert result.malformed == 2
    assert result.malformed_examples == ["swda/sw00utt/sw_0003_1009.utt.csv:1: not a SwDA utt.csv header",
                                         "swda/sw00utt/sw_0004_1010.utt.csv:3: csv error, rest of file skipped: "
                                         "field larger than field limit (131072)"]
    with pytest.raises(ValueError, match="not a folder, a .zip or a .tar"):
        read_swda_markup(_settings(AUTHORS))


def test_registry_finds_both_readers():
    assert reader("swda_markup") is read_swda_markup and reader("swda_plain") is read_swda_plain
    plain = read(_settings(FIXTURES / "plain", "swda_plain"))
    assert plain.records == 17 and read(_settings(FIXTURES / "folder")).records == 22


# ----------------------------------------------------------------------------------------------- split, agreement

def test_match_refuses_an_authors_dialogue_without_a_unique_conversation():
    ours = {"1": ["the cat sat on the mat"], "2": ["a dog ran in the park today"]}
    assert match_dialogues([["a dog ran in the park"], ["the cat sat on the mat"]], ours, "a.txt") == ["2", "1"]
    with pytest.raises(ValueError, match="^a.txt:1: no unique conversation"):
        match_dialogues([["completely different words here"]], ours, "a.txt")
    with pytest.raises(ValueError, match="^a.txt: lines 1 and 2 both match conversation 1"):
        match_dialogues([["the cat sat on"], ["sat on the mat"]], ours, "a.txt")


def test_split_counts_must_cover_the_authors_file():
    split = authors_split(["a", "b", "c", "d"], ["c", "a"], 1, 1, "a.txt")
    assert split == {"a": "test", "b": "train", "c": "valid", "d": "train"}
    with pytest.raises(ValueError, match="^a.txt has 2 dialogues"):
        authors_split(["a", "b", "c"], ["c", "a"], 25, 25, "a.txt")


def test_agreement_hand_computed():
    figures = agreement([["a b c", "d", "e"]], [["a b x", "d"]])
    # tokens: ours a b c d e, theirs a b x d -> 3 matched of 4 theirs, of 5 ours; utterances: only "d" is exact
    assert figures["token_agreement"] == 0.75 and figures["token_precision"] == 0.6
    assert (figures["exact_utterances"], figures["authors_utterances"], figures["our_utterances"]) == (1, 2, 3)
    with pytest.raises(ValueError, match="parallel"):
        agreement([["a"]], [])


# ----------------------------------------------------------------------------------------------- plain format

def test_strip_plain_word_lists_and_repeats():
    assert strip_plain("but, uh, talking about it") == "talking about it"
    assert normalize(strip_plain("Well, there are those that, that, that think, you know, it works")) == \
        "there are those that think it works"
    assert strip_plain("Do you, do you think so?") == "do you think so?"
    assert strip_plain("Uh-huh.") == "Uh-huh."


def test_plain_reader_on_fixture(tmp_path):
    tgz = tmp_path / "nd.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(FIXTURES / "plain" / "swda_data", arcname="swda_data")
    for path in (FIXTURES / "plain", tgz):
        result = read_swda_plain(_settings(path, "swda_plain"))
        assert [d.id for d in result.dialogues] == ["1001", "1002", "1003"]
        assert result.split == {"1001": "test", "1002": "valid", "1003": "train"}
        assert (result.records, result.malformed) == (17, 1)
        assert result.malformed_examples[0].startswith("swda_data/train/1003.txt:3:")
        assert [normalize(u) for u in result.dialogues[1].utterances] == [
            "hi", "what do you think about the weather", "it 's been really hot", "we had no rain all summer", "yeah"]
        assert 0.8 < result.notes["authors_test_token_agreement"] < 1.0     # reparanda stay: an approximation


# ----------------------------------------------------------------------------------------------- real corpus

def test_real_swda_markup_reproduces_the_authors_split_and_test_file(shared_data):
    swda = shared_data / "swda"
    authors = swda / "he_glass_processed" / "process_oneline" / "test" / "test.txt"
    settings = _settings(swda / "markup" / "swda_markup.tar.gz", authors=authors, valid=25, test=25)
    result = read_swda_markup(settings)
    splits = list(result.split.values())
    assert len(result.dialogues) == 1155 and (result.records, result.malformed) == (223_606, 0)
    assert (splits.count("train"), splits.count("valid"), splits.count("test")) == (1105, 25, 25)
    notes = result.notes
    assert notes["test_conversations"][0] == "2038" and len(set(notes["test_conversations"])) == 25
    assert notes["authors_test_utterances"] == 4224 and notes["our_test_utterances"] == 4224
    assert notes["authors_valid_utterances"] == 4836 and notes["our_valid_utterances"] == 4836
    # measured: test token agreement 0.9964, precision 0.9981, exact utterances 0.9827; valid 0.9938 / 0.9756
    assert notes["authors_test_token_agreement"] >= 0.995 and notes["authors_test_token_precision"] >= 0.997
    assert notes["authors_test_exact_utterance_rate"] >= 0.98 and notes["authors_valid_exact_utterance_rate"] >= 0.97


def test_real_swda_plain_gives_the_same_split(shared_data):
    swda = shared_data / "swda"
    authors = swda / "he_glass_processed" / "process_oneline" / "test" / "test.txt"
    settings = _settings(swda / "swda_nathanduran.tar.gz", "swda_plain", authors=authors, valid=25, test=25)
    result = read_swda_plain(settings)
    assert len(result.dialogues) == 1155 and (result.records, result.malformed) == (199_740, 0)
    assert result.notes["test_conversations"][0] == "2038"
    # measured: test token agreement 0.9910, precision 0.9651, exact utterances 0.8419 (4,226 utterances vs 4,224)
    notes = result.notes
    assert notes["authors_test_token_agreement"] >= 0.985 and notes["authors_test_token_precision"] >= 0.96
    assert notes["authors_test_exact_utterance_rate"] >= 0.83


# ----------------------------------------------------------------------------------------------- dropped / altered

def _problem_copy(tmp_path: Path) -> Path:
    """The fixture folder plus, written for the test: a bad byte in 1001, an empty file and a header-only file."""
    root = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "folder", root)
    utt = root / "swda" / "sw00utt"
    first = utt / "sw_0001_1001.utt.csv"
    first.write_bytes(first.read_bytes().replace(b"Panama Canal?", "Panam\xe1 Canal?".encode("latin-1"), 1))
    header = first.read_bytes().split(b"\r\n")[0]
    (utt / "sw_0005_1011.utt.csv").write_bytes(b"")
    (utt / "sw_0006_1012.utt.csv").write_bytes(header + b"\r\n")
    return root


def test_bad_bytes_and_empty_files_are_counted_per_file(tmp_path):
    result = read_swda_markup(_settings(_problem_copy(tmp_path)))
    assert [d.id for d in result.dialogues] == ["1001", "1002", "1003"]
    assert (result.records, result.malformed, result.empty, result.bad_bytes) == (24, 2, 2, 1)
    assert result.bad_byte_examples == ["swda/sw00utt/sw_0001_1001.utt.csv:3: bytes that are not UTF-8 replaced"]
    assert result.files["swda/sw00utt/sw_0005_1011.utt.csv"] == {"empty": 1}
    assert result.files["swda/sw00utt/sw_0006_1012.utt.csv"] == {"empty": 1}
    assert "swda/sw00utt/sw_0006_1012.utt.csv: header without rows" in result.malformed_examples


def test_plain_empty_file_and_bad_bytes_are_counted(tmp_path):
    root = tmp_path / "plain"
    shutil.copytree(FIXTURES / "plain", root)
    (root / "swda_data" / "train" / "1004.txt").write_bytes(b"")
    test = root / "swda_data" / "test" / "1001.txt"
    test.write_bytes(test.read_bytes().replace(b"Panama", "Panam\xe1".encode("latin-1"), 1))
    result = read_swda_plain(_settings(root, "swda_plain", max_share=0.3))
    assert (result.empty, result.bad_bytes) == (1, 1)
    assert result.files == {"swda_data/test/1001.txt": {"bad_bytes": 1}, "swda_data/train/1003.txt": {"malformed": 1},
                            "swda_data/train/1004.txt": {"empty": 1}}


def test_malformed_share_is_checked_before_the_authors_match(tmp_path):
    """A damaged corpus fails on its bad records, naming them, not on the split match it would spoil."""
    root = tmp_path / "broken" / "swda" / "sw00utt"
    root.mkdir(parents=True)
    header = (FIXTURES / "folder" / "swda" / "sw00utt" / "sw_0001_1001.utt.csv").read_bytes().split(b"\r\n")[0]
    rows = [b"sw00utt/x,p,1001,0,sd,A,1,1,Hello there. /,,,"] + [b"bad,row"] * 5
    (root / "sw_0001_1001.utt.csv").write_bytes(header + b"\r\n" + b"\r\n".join(rows) + b"\r\n")
    with pytest.raises(ValueError) as err:
        read_swda_markup(_settings(tmp_path / "broken"))
    msg = str(err.value)
    assert type(err.value).__name__ == "MalformedRecords" and "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'broken'}: 5 of 6 raw records malformed (83.33% > malformed_max_share 20.00%)")
    assert "swda/sw00utt/sw_0001_1001.utt.csv:3: 2 fields" in msg


def test_split_match_errors_name_the_authors_file(tmp_path):
    authors = tmp_path / "authors.txt"
    authors.write_text("words that appear in no conversation at all <eou>\n")
    with pytest.raises(ValueError, match=f"^{authors}:1: no unique conversation"):
        read_swda_markup(_settings(FIXTURES / "folder", authors=authors, valid=0, test=1))
    authors.write_bytes("caf\xe9 <eou>\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"^{authors}:1: the authors' processed SwDA file holds bytes that are not"):
        read_swda_markup(_settings(FIXTURES / "folder", authors=authors, valid=0, test=1))


def test_truncated_swda_tar_gz_fails_in_one_line(tmp_path):
    from negtrain_core.data.readers.archive import CorruptArchive

    tgz = _archives(tmp_path)["tar.gz"]
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tgz.read_bytes()[: tgz.stat().st_size // 2])
    with pytest.raises(CorruptArchive, match=f"^{cut}: truncated or corrupt archive .*download it again$"):
        read_swda_markup(_settings(cut))
