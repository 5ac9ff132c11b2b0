"""A researcher's own dialogues: readers jsonl and csv (tests/fixtures/own and files written here), their split,
the config of a dataset of one's own, and a quick pipeline run on it to Table 4."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from negtrain_core import config as ncfg
from negtrain_core.config import DataSettings
from negtrain_core.data import preprocess, raw
from negtrain_core.data.readers import MalformedRecords, check_share, generic, reader
from snakemake_cli import snakemake, stderr_lines

FIXTURES = Path(__file__).parent / "fixtures" / "own"
ROOT = Path(__file__).resolve().parent.parent
LATIN1 = "caf\xe9".encode("latin-1")          # bytes that are not UTF-8


def settings(reader_name: str, path: Path | str, csv: dict | None = None, **split) -> DataSettings:
    split = {"train_dialogues": None, "valid_dialogues": 1, "test_dialogues": 1, "order": "file", **split}
    return DataSettings(name="mydata", reader=reader_name, raw={"path": str(path)}, split=split, vocab_size=50,
                        csv={**ncfg.CSV_FORMAT, **(csv or {})})


def write(path: Path, *lines: str | bytes) -> Path:
    """``path`` holding the lines (str as UTF-8), each ended by a newline."""
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


# ---------------------------------------------------------------------------------------------- JSON Lines


def test_jsonl_reads_both_shapes_with_ids_and_merges_a_speakers_turns(tmp_path: Path) -> None:
    path = write(tmp_path / "talks.jsonl",
                 '["Hi there!", "Hello, how are you?"]',
                 '{"id": "t2", "turns": ["Any news?", {"text": "None yet."}], "topic": "ignored"}',
                 "",                                                              # blank lines are skipped
                 '{"id": 7, "turns": [{"speaker": "A", "text": "Wait."}, {"speaker": "A", "text": "One more."},'
                 ' {"speaker": "B", "text": "Sure."}, {"speaker": 1, "text": "x", "lang": "en"}]}',
                 '{"turns": ["No id here.", "Then file:line."]}')
    r = reader("jsonl")(settings("jsonl", path))
    assert [(d.id, d.utterances) for d in r.dialogues] == [
        ("talks.jsonl:1", ("Hi there!", "Hello, how are you?")),
        ("t2", ("Any news?", "None yet.")),
        ("7", ("Wait. One more.", "Sure.", "x")),                    # A's two turns are one utterance
        ("talks.jsonl:5", ("No id here.", "Then file:line.")),
    ]
    assert (r.records, r.malformed, r.empty, r.bad_bytes, r.files, r.split) == (4, 0, 0, 0, {}, None)
    assert r.notes == {"format": "jsonl", "files_read": 1, "dialogues_read": 4}


def test_jsonl_fixture_mixes_both_shapes() -> None:
    r = reader("jsonl")(settings("jsonl", FIXTURES / "dialogues.jsonl"))
    assert len(r.dialogues) == 36 and r.malformed == 0
    assert r.dialogues[0].id == "talk-001" and r.dialogues[2].id == "dialogues.jsonl:3"
    assert r.dialogues[0].utterances[:2] == ("Hi, is the kitchen still open?", "Yes, until ten tonight.")


def test_jsonl_malformed_lines_are_counted_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl",
                 '["fine", "line"]',
                 '["unclosed", ',
                 "42",
                 '{"id": "a", "utterances": ["x", "y"]}',
                 '{"id": "b", "turns": ["x", 5]}',
                 '{"id": null, "turns": ["x", "y"]}',
                 '{"id": "c", "turns": [{"text": "x", "speaker": ["A"]}]}',
                 '{"id": "d", "turns": ["ok", "ok"]}',
                 '{"id": "d", "turns": ["again", "again"]}')
    r = reader("jsonl")(settings("jsonl", path))
    assert [d.id for d in r.dialogues] == ["bad.jsonl:1", "d"]
    assert (r.records, r.malformed, r.files) == (9, 7, {"bad.jsonl": {"malformed": 7}})
    assert r.malformed_examples == [                                      # the first five
        "bad.jsonl:2: not JSON (Expecting value, column 14)",
        "bad.jsonl:3: a JSON int: expected an array of turns or an object with 'turns'",
        "bad.jsonl:4: an object without a 'turns' array",
        "bad.jsonl:5: turn 2 is not a string or an object with a string 'text'",
        "bad.jsonl:6: 'id' is not a non-empty string or an integer",
    ]
    r2 = generic.read_jsonl(settings("jsonl", write(tmp_path / "dup.jsonl", *(['{"id": "d", "turns": ["a"]}'] * 2))))
    assert r2.malformed_examples == ["dup.jsonl:2: dialogue id 'd' already used at dup.jsonl:1"]


def test_jsonl_bad_bytes_are_replaced_and_counted_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "talks"
    folder.mkdir()
    write(folder / "a.jsonl", b'["un ' + LATIN1 + b' ?", "oui"]', '["hello", "hi"]')
    write(folder / "b.jsonl", '["fine", "thanks"]')
    r = reader("jsonl")(settings("jsonl", folder))
    assert r.dialogues[0].utterances == ("un caf\ufffd ?", "oui")
    assert (r.records, r.bad_bytes, r.files) == (3, 1, {"a.jsonl": {"bad_bytes": 1}})
    assert r.bad_byte_examples == ["a.jsonl:1: bytes that are not UTF-8 replaced"]


def test_jsonl_dialogues_without_turns_and_empty_files_are_counted_empty(tmp_path: Path) -> None:
    folder = tmp_path / "talks"
    folder.mkdir()
    write(folder / "a.jsonl", "[]", '{"id": "x", "turns": []}', '["a", "b"]')
    (folder / "b.jsonl").write_bytes(b"\n\n")
    r = reader("jsonl")(settings("jsonl", folder))
    assert [d.id for d in r.dialogues] == ["a.jsonl:3"]
    assert (r.records, r.malformed, r.empty) == (4, 0, 3)
    assert r.files == {"a.jsonl": {"empty": 2}, "b.jsonl": {"empty": 1}}
    assert r.malformed_examples == ["a.jsonl:1: dialogue without turns", "a.jsonl:2: dialogue without turns",
                                    "b.jsonl: empty file"]


def test_jsonl_in_containers_and_gzipped(tmp_path: Path) -> None:
    lines = (FIXTURES / "dialogues.jsonl").read_bytes()
    gz = tmp_path / "mine.jsonl.gz"
    gz.write_bytes(gzip.compress(lines))
    packed = tmp_path / "mine.zip"
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("notes/readme.txt", "not read")
        z.writestr("data/part-1.ndjson", lines)
    plain = reader("jsonl")(settings("jsonl", FIXTURES / "dialogues.jsonl")).dialogues
    for path, name in ((gz, "mine.jsonl.gz"), (packed, "data/part-1.ndjson")):
        got = reader("jsonl")(settings("jsonl", path)).dialogues
        assert [d.utterances for d in got] == [d.utterances for d in plain]
        assert [d.id for d in got][1:3] == ["talk-002", f"{name}:3"]     # an id given, or file:line


def test_a_folder_without_jsonl_files_and_an_unset_path_are_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(raw.RawInputError, match=r"no \*\.jsonl / \*\.ndjson files inside"):
        reader("jsonl")(settings("jsonl", tmp_path))
    with pytest.raises(raw.RawInputError, match=r"^datasets.mydata.raw.path is not set"):
        reader("jsonl")(replace(settings("jsonl", tmp_path), raw={"path": None}))


def test_a_utf16_file_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    """Excel's 'Unicode Text' and Windows PowerShell's ``>`` write UTF-16 with a byte-order mark: read as UTF-8,
    every line would be counted malformed ('not JSON') or the header would lack its columns (naming the wrong key)."""
    text = 'dialogue_id\ttext\n1\thi\n1\thello\n'
    (tmp_path / "mine.tsv").write_bytes(text.encode("utf-16"))            # little-endian with its mark
    packed = tmp_path / "mine.zip"
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("talks.jsonl", b"\xfe\xff" + '["hi", "hello"]\n'.encode("utf-16-be"))   # big-endian
    fix = ("UTF-16 text (it starts with a UTF-16 byte-order mark, as Excel's 'Unicode Text' and Windows PowerShell "
           "write it); save it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8")
    with pytest.raises(raw.RawInputError) as err:
        reader("csv")(settings("csv", tmp_path / "mine.tsv"))
    assert str(err.value) == f"{tmp_path / 'mine.tsv'}: {fix}"
    with pytest.raises(raw.RawInputError) as err:
        reader("jsonl")(settings("jsonl", packed))
    assert str(err.value) == f"{packed} (member talks.jsonl): {fix}"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_spreadsheet_workbook_is_refused_in_one_line_naming_it(tmp_path: Path, fmt: str) -> None:
    """An .xlsx is a zip archive: searched for *.csv members it gave 'no *.csv / *.tsv files inside', not the fix."""
    book = tmp_path / "Dialogues.XLSX"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(raw.RawInputError) as err:
        reader(fmt)(settings(fmt, book))
    assert str(err.value) == (f"{book}: a spreadsheet workbook, not text; save its sheet as CSV UTF-8 (one row an "
                              "utterance) and name that file in datasets.mydata.raw.path, with reader: csv")


# ---------------------------------------------------------------------------------------------- CSV / TSV

SUPPORT = {
    "s1": ("Hi, my order hasn't arrived yet.", "Sorry to hear that. What's the order number?",
           "It's 4471. I ordered it two weeks ago, on the 14th.",
           "It left the warehouse yesterday; it should arrive on Monday."),
    "s2": ("Can I change my delivery address?", "Yes, as long as it hasn't shipped. Which order is it?",
           "The blue lamp, order 5120.", "Done. The new address is on the order now.\nAnything else?"),
}


@pytest.mark.parametrize("name", ["support.csv", "support.tsv"])
def test_csv_and_tsv_rows_grouped_by_id_with_a_speakers_rows_merged(name: str) -> None:
    r = reader("csv")(settings("csv", FIXTURES / name, csv={"speaker_column": "speaker"}))
    assert {d.id: d.utterances for d in r.dialogues} == SUPPORT
    assert (r.records, r.malformed, r.empty, r.bad_bytes) == (9, 0, 0, 0)
    assert r.notes["dialogues_with_rows_apart"] == 2                    # both: s1 s1 s1 s1 s2 s1 s2 s2 s2


def test_csv_without_a_speaker_column_keeps_every_row_and_reads_the_header_case(tmp_path: Path) -> None:
    r = reader("csv")(settings("csv", FIXTURES / "support.csv"))
    assert len(r.dialogues[0].utterances) == 5                          # no merging without speaker_column
    path = write(tmp_path / "chat.txt", "\ufeffconv;line", "1;Hello", "1;Hi, you")
    r = reader("csv")(settings("csv", path, csv={"id_column": "conv", "text_column": "line", "delimiter": ";"}))
    assert [(d.id, d.utterances) for d in r.dialogues] == [("1", ("Hello", "Hi, you"))]


def test_csv_header_without_the_configured_column_stops_in_one_line() -> None:
    with pytest.raises(raw.RawInputError) as err:
        reader("csv")(settings("csv", FIXTURES / "support.csv", csv={"text_column": "utterance"}))
    assert str(err.value) == ("support.csv:1: no column 'utterance' in the header ['dialogue_id', 'speaker', "
                              "'text', 'timestamp']; name the column in datasets.mydata.csv.text_column")


def test_csv_read_with_the_wrong_delimiter_names_the_delimiter_key(tmp_path: Path) -> None:
    path = write(tmp_path / "chat.csv", "dialogue_id;text", "1;Hello", "1;Hi, you")       # ';' but read with ','
    with pytest.raises(raw.RawInputError) as err:
        reader("csv")(settings("csv", path))
    assert str(err.value) == ("chat.csv:1: no column 'dialogue_id' in the header ['dialogue_id;text']; the header is "
                              "one field: if the file is separated by ';', set datasets.mydata.csv.delimiter")


def test_csv_malformed_rows_bad_bytes_and_empty_files_are_counted_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "chats"
    folder.mkdir()
    write(folder / "a.csv", "dialogue_id,text", "1,hello", "1,too,many,fields", ",no id", '1,"bad"quote',
          b"1,un " + LATIN1, "1,bye")
    write(folder / "b.tsv", "dialogue_id\ttext", "2\thi, there", "2\thello")
    write(folder / "c.csv", "dialogue_id,text")
    (folder / "d.csv").write_bytes(b"")
    r = reader("csv")(settings("csv", folder))
    assert [(d.id, d.utterances) for d in r.dialogues] == [("1", ("hello", "un caf\ufffd", "bye")),
                                                            ("2", ("hi, there", "hello"))]
    assert (r.records, r.malformed, r.empty, r.bad_bytes) == (10, 3, 2, 1)
    assert r.files == {"a.csv": {"malformed": 3, "bad_bytes": 1}, "c.csv": {"empty": 1}, "d.csv": {"empty": 1}}
    assert r.malformed_examples == ["a.csv:3: 4 fields, expected 2 (delimiter ',')", "a.csv:4: empty dialogue_id",
                                    "a.csv:5: not readable as CSV (',' expected after '\"')",
                                    "c.csv: no row under the header", "d.csv: empty file"]
    assert r.bad_byte_examples == ["a.csv:6: bytes that are not UTF-8 replaced"]


def test_csv_quote_never_closed_is_named_by_the_line_that_opens_it(tmp_path: Path) -> None:
    """A text that starts with a quote and never closes it swallows every row after it: the line that opened it is
    the one to fix, not the file's last."""
    rows = [f"{i},line {i}" for i in range(2, 9)]
    rows[2] = '4,"Hello, she said'
    path = write(tmp_path / "quoted.csv", "dialogue_id,text", *rows)
    r = reader("csv")(settings("csv", path))
    assert r.malformed_examples == ["quoted.csv:4: not readable as CSV (unexpected end of data; the row runs from line "
                                    "4 to line 8)"]


# ---------------------------------------------------------------------------------------------- the share, split


def test_too_many_malformed_lines_stop_preprocessing_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.jsonl", *[f'["q {i}", "a {i}"]' for i in range(8)], "{oops", '"just text"')
    d = replace(settings("jsonl", path), malformed_max_share=0.1)
    out = {k: str(tmp_path / "out" / f"{k}.out") for k in ("train", "valid", "test", "vocab", "stats", "notes")}
    with pytest.raises(MalformedRecords) as err:
        preprocess.run(*out.values(), d)
    assert str(err.value) == (
        f"{path}: 2 of 10 raw records malformed (20.00% > malformed_max_share 10.00%); first: mine.jsonl:9: not "
        "JSON (Expecting property name enclosed in double quotes, column 2); mine.jsonl:10: a JSON str: expected "
        "an array of turns or an object with 'turns'")
    assert not (tmp_path / "out").exists()
    check_share(reader("jsonl")(d), 0.2, str(path))                      # within the share: no stop
    bad = write(tmp_path / "bad.csv", "dialogue_id,text", b"1," + LATIN1, "1,fine")
    with pytest.raises(MalformedRecords, match=r"^x: 1 of 2 raw records hold bytes that are not UTF-8"):
        check_share(reader("csv")(settings("csv", bad)), 0.1, "x")


def test_a_corpus_of_empty_files_says_so_rather_than_as_a_share(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.csv")
    with pytest.raises(MalformedRecords) as err:
        check_share(reader("csv")(settings("csv", empty)), 0.01, str(empty))
    assert str(err.value) == f"{empty}: nothing to read (empty.csv: empty file)"
    folder = tmp_path / "chats"
    folder.mkdir()
    write(folder / "a.csv", "dialogue_id,text")
    write(folder / "b.csv")
    with pytest.raises(MalformedRecords) as err:
        check_share(reader("csv")(settings("csv", folder)), 0.01, str(folder))
    assert str(err.value) == f"{folder}: nothing to read (a.csv: no row under the header; b.csv: empty file)"


def test_with_fractions_too_many_malformed_lines_still_stop_on_the_share(tmp_path: Path) -> None:
    """Fractions make the reader split: the share check comes first, so a file of junk is named as such rather
    than as too small for the split."""
    path = write(tmp_path / "junk.jsonl", *["this is not json"] * 30)
    with pytest.raises(MalformedRecords, match=rf"^{path}: 30 of 30 raw records malformed"):
        reader("jsonl")(settings("jsonl", path, valid_dialogues=0.1, test_dialogues=0.1))


def test_too_few_dialogues_with_a_pair_name_the_corpus_and_the_split_key(tmp_path: Path) -> None:
    path = write(tmp_path / "alone.jsonl", *[f'["only turn {i}"]' for i in range(20)], '["q", "a"]')
    with pytest.raises(ValueError) as err:
        reader("jsonl")(settings("jsonl", path, valid_dialogues=0.1, test_dialogues=0.1))
    assert str(err.value) == (f"{path}: 1 dialogues with two or more non-empty utterances (20 of 21 dialogues hold "
                              f"one utterance, e.g. '{path.name}:1': a pair needs two, and consecutive turns of one "
                              "speaker are merged into one), too few for datasets.mydata.split: valid 1 + test 1 "
                              "leave none for training; add dialogues")


@pytest.mark.parametrize("csv, n", [
    ({"id_column": "id"}, 30),                      # each message's own id read as the dialogue id
    ({"speaker_column": "dialogue_id"}, 10),        # a column that gives all of a dialogue's rows one speaker
])
def test_dialogues_of_one_utterance_are_named_as_the_reason(tmp_path: Path, csv: dict, n: int) -> None:
    """The wrong id or speaker column leaves each dialogue one utterance: the line says so, not only 'add
    dialogues'."""
    path = write(tmp_path / "chats.csv", "id,dialogue_id,text", *[f"{i},{i // 3},hello {i}" for i in range(30)])
    out = [str(tmp_path / f"{k}.out") for k in ("train", "valid", "test", "vocab", "stats", "notes")]
    with pytest.raises(ValueError) as err:
        preprocess.run(*out, settings("csv", path, csv=csv), "quick")
    assert str(err.value) == (
        f"{path}: 0 dialogues with two or more non-empty utterances ({n} of {n} dialogues hold one utterance, e.g. "
        f"'0': a pair needs two, and consecutive turns of one speaker are merged into one), too few for "
        f"datasets.mydata.split: valid 1 + test 1 leave none for training; add dialogues")
    assert not [p for p in out if Path(p).exists()]


@pytest.mark.parametrize("held_out", [0.1, 1])               # fractions: the reader splits; counts: preprocessing
def test_text_that_normalises_to_nothing_is_named_as_the_reason(tmp_path: Path, held_out: float) -> None:
    """A corpus in another script keeps no utterance: the line says so, not only that it has too few dialogues."""
    path = write(tmp_path / "zh.jsonl", *['["你好", "谢谢", "hi 2"]'] * 20)
    d = settings("jsonl", path, valid_dialogues=held_out, test_dialogues=held_out)
    out = [str(tmp_path / f"{k}.out") for k in ("train", "valid", "test", "vocab", "stats", "notes")]
    with pytest.raises(ValueError) as err:
        preprocess.run(*out, d, "quick")
    assert str(err.value) == (
        f"{path}: 0 dialogues with two or more non-empty utterances (40 of 60 utterances normalise to nothing, e.g. "
        f"'你好': lower-cased, accents dropped, only a-z, 0-9 and ' . - are kept, so the pipeline reads text in the "
        f"Latin alphabet), too few for datasets.mydata.split: valid 1 + test 1 leave none for training; add dialogues")
    assert not [p for p in out if Path(p).exists()]


def test_fractions_fix_a_seeded_split_of_the_usable_dialogues() -> None:
    def split(seed: int) -> dict[str, str]:
        d = replace(settings("jsonl", FIXTURES / "dialogues.jsonl", valid_dialogues=0.1, test_dialogues=0.2,
                             order="random"), seed=seed)
        return reader("jsonl")(d).split
    got = split(1)
    assert Counter(got.values()) == {"train": 25, "valid": 4, "test": 7}    # round(3.6), round(7.2) of 36
    assert split(1) == got and split(2) != got
    counted = reader("jsonl")(settings("jsonl", FIXTURES / "dialogues.jsonl", valid_dialogues=4, test_dialogues=7))
    assert counted.split is None                                          # counts: preprocessing splits


def test_fractions_count_only_dialogues_that_hold_a_pair(tmp_path: Path) -> None:
    lines = [f'["question {i}", "answer {i}"]' for i in range(18)] + ['["alone"]', '["!!!", "?"]']
    r = reader("jsonl")(settings("jsonl", write(tmp_path / "m.jsonl", *lines), valid_dialogues=0.1,
                                 test_dialogues=0.1))
    assert r.notes["usable_dialogues"] == 18 and Counter(r.split.values()) == {"train": 14, "valid": 2, "test": 2}
    assert list(r.split.values())[-4:] == ["valid", "valid", "test", "test"]   # file order: the last ones held out


def test_preprocess_writes_the_fraction_split(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = settings("jsonl", FIXTURES / "dialogues.jsonl", valid_dialogues=0.15, test_dialogues=0.15, order="random")
    out = {k: str(tmp_path / f"{k}.out") for k in ("train", "valid", "test", "vocab", "stats", "notes")}
    with caplog.at_level("INFO", logger="negtrain_core.data.preprocess"):
        stats = preprocess.run(*out.values(), d, "quick")
    assert stats["dialogues"].tolist() == [26, 5, 5]
    assert ("split fixed by the reader (its own rule, or the config's fractions it resolved): 26 train, 5 valid, 5 "
            "test dialogues; 0 dialogues in no split") in caplog.messages     # the log says the fractions were used
    notes = json.loads(Path(out["notes"]).read_text())
    assert (notes["split_valid_dialogues"], notes["format"], notes["raw_records"]) == (5, "jsonl", 36)


# ---------------------------------------------------------------------------------------------- config


def own_config(**block) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["datasets"]["my_data2"] = {"reader": "jsonl", "raw": {"path": "raw/my_data2/dialogues.jsonl"}, **block}
    return cfg


def test_a_dataset_of_any_name_takes_what_it_leaves_out_from_dataset_defaults() -> None:
    cfg = ncfg.validate(own_config(train={"lr": 0.5}))
    s = ncfg.settings(cfg, "my_data2")
    d = cfg["dataset_defaults"]
    assert (s.data.vocab_size, s.train.lr, s.train.batch_size, s.model.dropout) == (d["vocab_size"], 0.5, 64, 0.3)
    assert [f.r_thres for f in s.frequent] == d["frequent"]["r_thres"] and s.malicious.hit_type == "avg"
    assert s.data.csv == ncfg.CSV_FORMAT and cfg["human_eval"]["ratings"]["my_data2"] is None
    assert ncfg.dataset_names(cfg)[-1] == "my_data2"
    alone = ncfg.validate(yaml.safe_load((ROOT / "config.yaml").read_text()))
    for name in ncfg.dataset_names(alone):                                  # the named blocks take nothing from it
        assert cfg["datasets"][name] == alone["datasets"][name]


@pytest.mark.parametrize("change, message", [
    (lambda c: c["datasets"].update({"My-Data": c["datasets"].pop("my_data2")}),
     "config key 'datasets': 'My-Data' is not a dataset name: a-z, 0-9 and _, starting with a letter (it names "
     "folders and rule wildcards)"),
    (lambda c: c["datasets"].update({"targets": c["datasets"].pop("my_data2")}),
     "config key 'datasets.targets': the name 'targets' is taken by the workflow's results/targets/; choose "
     "another dataset name"),
    (lambda c: c.update(run_datasets=["mydata"]),
     "config key 'run_datasets': 'mydata' has no block under 'datasets' (did you mean 'my_data2'?)"),
    (lambda c: c.update(run_datasets=["reddit"]), "config key 'run_datasets': 'reddit' has no block under 'datasets'"),
    (lambda c: c["human_eval"].update(ratings={"chitcat": "filled.csv"}),
     "config key 'human_eval.ratings.chitcat': 'chitcat' has no block under 'datasets' (did you mean 'chitchat'?)"),
    (lambda c: c["datasets"].update(swithcboard={"vocab_size": 5000}),     # an overlay of a misspelt dataset
     "config key 'datasets.swithcboard': 'reader' is a required property (a new dataset block: did you mean "
     "'switchboard'?)"),
    (lambda c: c["datasets"]["my_data2"].update(frequent={"r_thres": [0.1, 0.1000001]}),
     "config key 'datasets.my_data2.frequent.r_thres': [0.1, 0.1000001] names one Algorithm 2 run twice (its files "
     "are freq-<r_thres>.pt); give distinct values"),
    (lambda c: c["datasets"]["my_data2"].update(raw={}),
     "config key 'datasets.my_data2.raw.path': None is not of type 'string'"),
    (lambda c: c["datasets"]["chitchat"]["raw"].update(path="chitchat.json"),
     "config key 'datasets.chitchat.raw.path': reader chitchat reads the installed chitchat-dataset package, not a "
     "file; for a file of dialogues use reader jsonl or csv"),
    (lambda c: c["datasets"]["ubuntu"]["split"].update(valid_dialogues=0.1),
     "config key 'datasets.ubuntu.split.valid_dialogues': 0.1 is not of type 'integer' (reader udc_v1 takes a count "
     "of dialogues; a fraction is for readers jsonl and csv)"),
])
def test_dataset_names_and_keys_refused_in_one_line(change, message: str) -> None:
    cfg = own_config()
    change(cfg)
    with pytest.raises(ncfg.ConfigError) as err:
        ncfg.validate(cfg)
    assert str(err.value) == message


def test_missing_own_file_says_what_to_put_where() -> None:
    cfg = ncfg.validate(own_config())
    with pytest.raises(raw.MissingRawInput) as err:
        raw.raw_inputs(cfg, "my_data2")
    assert str(err.value) == (
        "negtrain: raw input for 'my_data2' not found: raw/my_data2/dialogues.jsonl -- put your dialogues as JSON "
        'Lines (one dialogue a line: ["utterance", ...] or {"id": ..., "turns": [...]}) at '
        "raw/my_data2/dialogues.jsonl, or set datasets.my_data2.raw.path in the config")
    cfg = ncfg.validate(own_config(reader="csv", csv={"text_column": "utterance"}))
    with pytest.raises(raw.MissingRawInput, match=r"as CSV or TSV \(a header, then one row an utterance, with "
                                                  r"columns dialogue_id and utterance\) at raw/my_data2/"):
        raw.raw_inputs(cfg, "my_data2")


def test_a_built_in_name_read_as_own_data_needs_no_split_file(tmp_path: Path) -> None:
    """datasets.switchboard given reader jsonl keeps the authors' split file from config.yaml's block (overlays
    deep-merge); only the SwDA readers read that file, so the raw inputs are the corpus alone."""
    corpus = tmp_path / "my.jsonl"
    corpus.write_text('["hi", "hello"]\n')
    cfg = ncfg.load(ROOT / "config.yaml")
    ncfg.deep_update(cfg["datasets"]["switchboard"], {"reader": "jsonl", "raw": {"path": str(corpus), "url": None}})
    cfg = ncfg.validate(cfg)
    assert cfg["datasets"]["switchboard"]["split"]["authors_file"] == "raw/switchboard/he_glass_test.txt"
    assert raw.raw_inputs(cfg, "switchboard") == [str(corpus)]


def test_snakemake_names_a_missing_own_file_in_one_line(tmp_path: Path) -> None:
    cfg = {"datasets": {"mydata": {"reader": "csv", "raw": {"path": "mine.tsv"}}}}
    (tmp_path / "mydata.yaml").write_text(yaml.safe_dump(cfg))
    run = snakemake(tmp_path, "-n", "results/mydata/table4.csv", overlays=[tmp_path / "mydata.yaml"])
    assert run.returncode == 1 and "Traceback" not in run.stdout
    assert stderr_lines(run.stderr) == [
        "negtrain: raw input for 'mydata' not found: mine.tsv -- put your dialogues as CSV or TSV (a header, then "
        "one row an utterance, with columns dialogue_id and text) at mine.tsv, or set datasets.mydata.raw.path in "
        "the config"]


@pytest.mark.parametrize("overlay, target, line", [
    ({"targets": {"train": "my_targets.txt"}}, "results/chitchat/table3.csv",
     "negtrain: config key 'targets.train': my_targets.txt: no such file"),
    ({"human_eval": {"ratings": {"chitchat": "filled.csv"}}}, "results/chitchat/table6.csv",
     "negtrain: config key 'human_eval.ratings.chitchat': filled.csv: no such file"),
])
def test_snakemake_names_a_missing_configured_file_and_its_key_in_one_line(tmp_path: Path, overlay: dict,
                                                                            target: str, line: str) -> None:
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    run = snakemake(tmp_path, "-n", "--config", "scale=quick", "--", target, overlays=[tmp_path / "overlay.yaml"])
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    assert stderr_lines(run.stderr) == [line]


# ---------------------------------------------------------------------------------------------- end to end


def test_quick_pipeline_on_own_jsonl_to_table4(tmp_path: Path) -> None:
    """The README's route: a block of one's own and a Snakemake target, with the models and comparisons made tiny
    (the config overlay) so that its dozen jobs stay cheap."""
    shutil.copy(FIXTURES / "dialogues.jsonl", tmp_path / "mine.jsonl")
    overlay = {
        "device": "cpu",
        "datasets": {"mydata": {"reader": "jsonl", "raw": {"path": "mine.jsonl"}, "frequent": {"r_thres": [0.1]},
                                "split": {"valid_dialogues": 0.15, "test_dialogues": 0.15, "order": "random"}}},
        "quick": {"embedding_dim": 8, "hidden_dim": 16, "epochs": 1, "max_train_pairs": 200},
        "gan": {"g_lrs": [0.01]}, "mmi": {"lambdas": [0.1], "gammas": [1]},
        "targets": {"max_oov_share": 1.0},   # a 40-dialogue corpus knows few of the list's words; Table 4 needs none
    }
    (tmp_path / "mydata.yaml").write_text(yaml.safe_dump(overlay))
    run = snakemake(tmp_path, "--cores", "2", "--config", "scale=quick", "--", "results/mydata/table4.csv",
                    overlays=[tmp_path / "mydata.yaml"])
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    table4 = pd.read_csv(tmp_path / "results/mydata/table4.csv")
    assert table4["row"].tolist() == ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1"]
    assert set(table4["scale"]) == {"quick"} and table4["paper_PPL"].isna().all()
    stats = pd.read_csv(tmp_path / "results/mydata/data/stats.csv")
    assert stats["dialogues"].tolist() == [26, 5, 5] and set(stats["raw_records"]) == {36}
