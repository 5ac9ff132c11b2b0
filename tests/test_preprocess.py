"""Preprocessing: split, pairs, vocabulary, stats, caps, malformed records; and real Snakemake runs."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from negtrain_core.data import preprocess
from negtrain_core.config import DataSettings
from negtrain_core.data.readers import Dialogue, ReadResult
from negtrain_core.data.vocab import Vocab

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
OUTPUTS = ("train", "valid", "test", "vocab", "stats", "notes")
IDS = list("abcdefghij")


def data(**kw) -> DataSettings:
    base = DataSettings(name="t", reader="udc_v1", raw={"path": "corpus.csv"},
                        split={"train_dialogues": None, "valid_dialogues": 1, "test_dialogues": 1, "order": "file"},
                        vocab_size=4)
    return replace(base, **kw)


def outputs(folder: Path) -> dict[str, str]:
    return {k: str(folder / f"{k}.out") for k in OUTPUTS}


# ---------------------------------------------------------------------------------------------- split


def test_split_with_null_train_puts_valid_then_test_at_the_end() -> None:
    got = preprocess.split_ids(IDS, {"train_dialogues": None, "valid_dialogues": 2, "test_dialogues": 3}, 1)
    assert got == {**dict.fromkeys("abcde", "train"), "f": "valid", "g": "valid", **dict.fromkeys("hij", "test")}


def test_split_with_train_count_takes_first_train_then_valid_then_test() -> None:
    got = preprocess.split_ids(IDS, {"train_dialogues": 4, "valid_dialogues": 2, "test_dialogues": 3}, 1)
    assert got == {**dict.fromkeys("abcd", "train"), "e": "valid", "f": "valid", **dict.fromkeys("ghi", "test")}
    assert "j" not in got


def test_split_too_small_is_refused() -> None:
    with pytest.raises(ValueError) as err:
        preprocess.split_ids(IDS, {"train_dialogues": 8, "valid_dialogues": 2, "test_dialogues": 1}, 1, "d.jsonl",
                             "datasets.d.split")
    assert str(err.value) == ("d.jsonl: 10 dialogues with two or more non-empty utterances, fewer than "
                              "datasets.d.split asks for (train 8 + valid 2 + test 1); lower "
                              "datasets.d.split.train_dialogues or set it to null")
    with pytest.raises(ValueError) as err:
        preprocess.split_ids(IDS, {"train_dialogues": None, "valid_dialogues": 5, "test_dialogues": 5}, 1, "d.jsonl",
                             "datasets.d.split")
    assert str(err.value) == ("d.jsonl: 10 dialogues with two or more non-empty utterances, too few for "
                              "datasets.d.split: valid 5 + test 5 leave none for training; add dialogues or lower "
                              "datasets.d.split.valid_dialogues / test_dialogues")


def test_orders() -> None:
    by_hash = sorted(IDS, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    assert preprocess.order_ids(IDS, "sorted_id_hash", 1) == by_hash
    assert preprocess.order_ids(list(reversed(IDS)), "sorted_id_hash", 7) == by_hash   # ids alone decide
    shuffled = preprocess.order_ids(IDS, "random", 3)
    assert sorted(shuffled) == IDS and shuffled == preprocess.order_ids(IDS, "random", 3)
    assert {tuple(preprocess.order_ids(IDS, "random", s)) for s in range(5)} != {tuple(shuffled)}
    assert preprocess.order_ids(IDS, "file", 3) == IDS


# ---------------------------------------------------------------------------------------------- pairs, vocab, stats

DIALOGUES = [
    Dialogue("d1", ("Hello there!", "Hi. How are you?", "!!!", "I'm fine.")),
    Dialogue("d2", ("What?", "Nothing, you?")),
    Dialogue("d3", ("Bye.", "...", "See you, Tom.")),
    Dialogue("d4", ("Only one line",)),
]


def test_pairs_are_consecutive_normalised_utterances() -> None:
    [d1] = preprocess.normalized_dialogues(DIALOGUES[:1])
    assert d1.utterances == ("hello there", "hi how are you", "i 'm fine")
    assert preprocess.dialogue_pairs(d1) == [("d1", 1, "hello there", "hi how are you"),
                                             ("d1", 2, "hi how are you", "i 'm fine")]
    assert [d.id for d in preprocess.normalized_dialogues(DIALOGUES)] == ["d1", "d2", "d3"]   # d4 has no pair


def test_build_tables_vocab_and_stats_by_hand() -> None:
    split = {"d1": "train", "d2": "valid", "d3": "test"}
    result = ReadResult(list(DIALOGUES), split=split, records=11)
    frames, vocab, stats = preprocess.build(result, data(vocab_size=4), "paper")
    assert frames["train"].to_dict("list") == {"dialogue_id": ["d1", "d1"], "turn": [1, 2],
                                               "source": ["hello there", "hi how are you"],
                                               "target": ["hi how are you", "i 'm fine"]}
    assert frames["test"]["target"].tolist() == ["see you tom"]
    assert str(frames["train"]["turn"].dtype) == "int32"
    # training utterances: hello there / hi how are you / i 'm fine, each once: all counts 1 -> alphabetical
    assert vocab.tokens[5:] == ("'m", "are", "fine", "hello")
    train = stats.set_index("split").loc["train"]
    assert (train["dialogues"], train["pairs"], train["source_tokens"], train["target_tokens"]) == (1, 2, 6, 7)
    assert train["oov_rate"] == pytest.approx(4 / 7)         # hi how you i not in the vocabulary
    test = stats.set_index("split").loc["test"]
    assert test["oov_rate"] == 1.0 and test["target_tokens"] == 3 and test["scale"] == "paper"
    assert list(stats.columns) == list(preprocess.STATS_COLUMNS) and stats["vocab_size"].tolist() == [9] * 3


def test_config_split_counts_apply_to_dialogues_with_pairs() -> None:
    dialogues = [Dialogue(f"x{i}", ("a b", "c d", "e")) for i in range(5)] + [Dialogue("lonely", ("z",))]
    frames, _, stats = preprocess.build(ReadResult(dialogues), data(), "paper")
    assert stats["dialogues"].tolist() == [3, 1, 1]
    assert frames["valid"]["dialogue_id"].unique().tolist() == ["x3"]
    assert frames["test"]["dialogue_id"].unique().tolist() == ["x4"]


def test_no_truncation_in_the_tables() -> None:
    long = " ".join(f"w{i}" for i in range(40))
    dialogues = [Dialogue("a", (long, long + " end")), Dialogue("b", ("x", "y")), Dialogue("c", ("x", "y"))]
    frames, _, _ = preprocess.build(ReadResult(dialogues), data(max_train_pairs=None), "paper")
    row = frames["train"].iloc[0]
    assert len(row["source"].split()) == 40 and len(row["target"].split()) == 41
    assert "<eou>" not in row["source"] and "</s>" not in row["target"]


def test_quick_caps_keep_the_first_pairs_in_order() -> None:
    dialogues = [Dialogue(f"x{i}", ("a", "b", "c", "d")) for i in range(6)]
    frames, vocab, stats = preprocess.build(ReadResult(dialogues), data(max_train_pairs=4, max_eval_pairs=2), "quick")
    assert list(zip(frames["train"]["dialogue_id"], frames["train"]["turn"])) == [("x0", 1), ("x0", 2), ("x0", 3),
                                                                                  ("x1", 1)]
    assert len(frames["valid"]) == 2 and len(frames["test"]) == 2 and set(stats["scale"]) == {"quick"}
    assert stats["pairs"].tolist() == [4, 2, 2] and stats["dialogues"].tolist() == [2, 1, 1]


def test_empty_split_is_refused() -> None:
    result = ReadResult([Dialogue("a", ("x", "y")), Dialogue("b", ("x", "y"))], split={"a": "train", "b": "test"})
    with pytest.raises(ValueError) as err:
        preprocess.build(result, data(), "paper")
    assert str(err.value) == ("corpus.csv: split 'valid' has no pairs: no dialogue with two non-empty utterances "
                              "went to it")


def test_duplicate_dialogue_ids_are_refused() -> None:
    result = ReadResult([Dialogue("a", ("x", "y")), Dialogue("a", ("x", "y")), Dialogue("b", ("x", "y"))])
    with pytest.raises(ValueError, match="corpus.csv: dialogue id 'a' appears more than once"):
        preprocess.build(result, data(), "paper")


# ---------------------------------------------------------------------------------------------- run, malformed records


def test_run_writes_contract_tables_vocab_stats_and_notes(tmp_path: Path) -> None:
    d = data(reader="irc_reply_links", raw={"path": str(FIXTURES / "ubuntu" / "irc")}, vocab_size=20,
             malformed_max_share=0.1)                     # the fixture has 2 bad lines of 33
    out = outputs(tmp_path)
    preprocess.run(*out.values(), d, scale="paper")
    train = pd.read_parquet(out["train"])
    assert list(train.columns) == ["dialogue_id", "turn", "source", "target"]
    assert str(train["turn"].dtype) == "int32"
    assert train.iloc[0].to_dict() == {"dialogue_id": "train/2005-01-01.train-a:0:alice+bob", "turn": 1,
                                       "source": "hi all my sound is broken", "target": "which card"}
    assert len(train) == 3 + 1 + 2 and len(pd.read_parquet(out["valid"])) == 2
    stats = pd.read_csv(out["stats"])
    assert stats["split"].tolist() == ["train", "valid", "test"] and stats["dialogues"].tolist() == [3, 1, 1]
    assert Vocab.load(out["vocab"]).tokens[:5] == ("</s>", "<unk>", "<s>", "<pad>", "<eou>")
    notes = json.loads(Path(out["notes"]).read_text())
    assert notes["train_dialogues"] == 3 and notes["format"] == "irc_reply_links"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{k}.out" for k in OUTPUTS)   # no temp files


def test_malformed_records_over_the_share_fail_naming_the_file_and_write_nothing(tmp_path: Path) -> None:
    csv = tmp_path / "dialogueText.csv"
    rows = [f'3,{i}.tsv,2004-01-01T00:00:00.000Z,{s},,"hello {i}"' for i in range(4) for s in ("a", "b")]
    csv.write_text("folder,dialogueID,date,from,to,text\n" + "\n".join(rows) + "\n3,9.tsv,bad\n")
    out = tmp_path / "out"
    d = data(raw={"path": str(csv)}, malformed_max_share=0.1)
    with pytest.raises(preprocess.MalformedRecords) as err:
        preprocess.run(*outputs(out).values(), d)
    assert str(err.value).startswith(f"{csv}: 1 of 9 raw records malformed (11.11% > malformed_max_share 10.00%)")
    assert "dialogueText.csv:10: 3 fields, expected 6" in str(err.value)
    assert not out.exists() or not any(out.iterdir())
    preprocess.run(*outputs(out).values(), replace(d, malformed_max_share=0.2))       # under the share: it runs
    assert len(pd.read_parquet(out / "train.out")) == 2


# ---------------------------------------------------------------------------------------------- Snakemake


def snakemake(workdir: Path, target: str, *extra: str, overlays: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``snakemake`` on this repository's Snakefile and config.yaml (+ overlays), run in ``workdir``."""
    configs = [str(ROOT / "config.yaml"), *map(str, overlays)]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", *configs, *extra, "--cores", "1", "--", target]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_snakemake_preprocess_chitchat_quick(tmp_path: Path) -> None:
    done = snakemake(tmp_path, "results/chitchat/data/stats.csv", "--config", "scale=quick")
    assert done.returncode == 0, done.stderr[-3000:]
    data_dir = tmp_path / "results" / "chitchat" / "data"
    stats = pd.read_csv(data_dir / "stats.csv")
    assert stats["split"].tolist() == ["train", "valid", "test"] and set(stats["scale"]) == {"quick"}
    assert stats["pairs"].tolist() == [40000, 500, 500]                      # quick caps
    assert stats["oov_rate"].between(0, 0.5).all() and (stats["vocab_size"] == 3005).all()
    assert (stats["target_tokens"] > stats["pairs"]).all()
    tables = {s: pd.read_parquet(data_dir / f"{s}.parquet") for s in ("train", "valid", "test")}
    for split, df in tables.items():
        assert list(df.columns) == ["dialogue_id", "turn", "source", "target"]
        assert len(df) == stats.set_index("split").loc[split, "pairs"] and (df["turn"] >= 1).all()
        assert df["source"].str.len().gt(0).all() and df["target"].str.len().gt(0).all()
    ids = [set(df["dialogue_id"]) for df in tables.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(Vocab.load(data_dir / "vocab.txt")) == 3005
    assert json.loads((data_dir / "notes.json").read_text())["conversations"] == 7168


def test_snakemake_preprocess_ubuntu_irc_substitute(tmp_path: Path, shared_data: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared_data.parent)        # the overlay's ../shared/data, seen from w/
    done = snakemake(work, "results/ubuntu/data/stats.csv", overlays=(ROOT / "tests" / "shared_data.yaml",))
    assert done.returncode == 0, done.stderr[-3000:]
    stats = pd.read_csv(work / "results" / "ubuntu" / "data" / "stats.csv").set_index("split")
    assert stats["dialogues"].tolist() == [12459, 526, 857]     # the corpus' own train/dev/test logs
    assert stats["pairs"].tolist() == [35223, 1437, 2700] and (stats["scale"] == "paper").all()
    # fewer than 30k distinct training words: the whole training vocabulary is kept, so no training OOV
    assert stats["vocab_size"].iloc[0] < 30005 and stats.loc["train", "oov_rate"] == 0.0
    assert stats.loc[["valid", "test"], "oov_rate"].between(0.01, 0.1).all()


# ---------------------------------------------------------------------------------------------- counted, not silent


def problem_corpus(root: Path) -> Path:
    """A UDC v1 tree written for the test: 6 clean dialogues, one line of latin-1, one empty file, one bad line."""
    d = root / "dialogs" / "1"
    d.mkdir(parents=True)
    line = "2004-01-01T00:00:00.000Z\t{}\t\t{}\n"
    for i in range(6):
        (d / f"{i}.tsv").write_text(line.format("a", f"hello {i}") + line.format("b", f"hi {i}"))
    (d / "6.tsv").write_bytes(line.format("a", "un caf\xe9").encode("latin-1") + line.format("b", "oui").encode())
    (d / "7.tsv").write_bytes(b"")
    (d / "8.tsv").write_text(line.format("a", "fine") + "broken line\n" + line.format("b", "good"))
    return root


def test_tolerated_problems_reach_stats_notes_and_the_terminal(tmp_path: Path, capsys) -> None:
    corpus = problem_corpus(tmp_path / "udc")
    d = data(raw={"path": str(corpus)}, malformed_max_share=0.2)
    out = outputs(tmp_path / "out")
    preprocess.run(*out.values(), d)
    stats = pd.read_csv(out["stats"])
    assert list(stats.columns) == list(preprocess.STATS_COLUMNS)
    row = stats.iloc[0][list(preprocess.CORPUS_COLUMNS)].to_dict()
    assert row == {"raw_records": 18, "malformed_records": 1, "empty_files": 1, "bad_byte_records": 1,
                   "empty_utterances": 0, "dialogues_without_pair": 1}
    assert (stats[list(preprocess.CORPUS_COLUMNS)].nunique() == 1).all()          # corpus-wide: same on every row
    notes = json.loads(Path(out["notes"]).read_text())
    assert {k: notes[k] for k in preprocess.CORPUS_COLUMNS} == row and notes["problem_files"] == 3
    assert notes["problem_files_listed"] == {"dialogs/1/6.tsv": {"bad_bytes": 1}, "dialogs/1/7.tsv": {"empty": 1},
                                             "dialogs/1/8.tsv": {"malformed": 1}}
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["negtrain: preprocess t: tolerated 1 malformed records, 1 empty files, 1 records with bytes that "
                   "are not UTF-8 (replaced) of 18 raw records in 3 files (within malformed_max_share 20.00%; per "
                   "file: the rule log and notes.json)"]


def test_clean_corpus_prints_nothing_and_counts_normalisation_drops(tmp_path: Path, capsys) -> None:
    result = ReadResult(list(DIALOGUES), split={"d1": "train", "d2": "valid", "d3": "test"}, records=11)
    _, _, stats = preprocess.build(result, data(), "paper")
    assert stats.loc[0, "empty_utterances"] == 2 and stats.loc[0, "dialogues_without_pair"] == 1   # '!!!', '...'; d4
    assert result.notes["raw_records"] == 11 and result.notes["problem_files"] == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("share, problem", [(0.04, "malformed or empty"), (0.05, "bad bytes")])
def test_problems_over_the_share_stop_naming_file_and_line_and_write_nothing(tmp_path: Path, share: float,
                                                                           problem: str) -> None:
    corpus = problem_corpus(tmp_path / "udc")
    if problem == "bad bytes":                    # only the latin-1 line left: 1 of 14 records
        for name in ("7.tsv", "8.tsv"):
            (corpus / "dialogs" / "1" / name).unlink()
    out = tmp_path / "out"
    with pytest.raises(preprocess.MalformedRecords) as err:
        preprocess.run(*outputs(out).values(), data(raw={"path": str(corpus)}, malformed_max_share=share))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{corpus}: ")
    if problem == "bad bytes":
        assert "1 of 14 raw records hold bytes that are not UTF-8" in msg and "dialogs/1/6.tsv:1:" in msg
    else:
        assert "2 of 18 raw records malformed or empty (11.11% > malformed_max_share 4.00%)" in msg
        assert "dialogs/1/7.tsv: empty dialogue file; dialogs/1/8.tsv:2: 1 tab-separated fields" in msg
    assert not out.exists() or not any(out.iterdir())


def test_truncated_archive_stops_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    import tarfile

    from negtrain_core.data.readers.archive import CorruptArchive

    corpus = problem_corpus(tmp_path / "udc")
    tgz = tmp_path / "udc.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(corpus / "dialogs", arcname="dialogs")
    whole = tgz.read_bytes()
    tgz.write_bytes(whole[:len(whole) // 2])                  # cut inside the members, not in the tar padding
    out = tmp_path / "out"
    pattern = rf"^{re.escape(str(tgz))}( \(member [^)]+\))?: truncated or corrupt archive"
    with pytest.raises(CorruptArchive, match=pattern):
        preprocess.run(*outputs(out).values(), data(raw={"path": str(tgz)}, malformed_max_share=0.5))
    assert not out.exists() or not any(out.iterdir())


def test_quick_scale_caps_cut_each_split_to_its_first_pairs_and_say_where(caplog) -> None:
    dialogues = [Dialogue(f"d{i}", ("a b", "c d", "e f", "g h")) for i in range(6)]     # 3 pairs each
    assigned = {"d0": "train", "d1": "train", "d2": "valid", "d3": "valid", "d4": "test", "d5": "test"}
    with caplog.at_level("INFO", logger=preprocess.log.name):
        frames = preprocess.split_frames(dialogues, assigned, {"train": None, "valid": 4, "test": 3})
    assert [len(frames[s]) for s in ("train", "valid", "test")] == [6, 4, 3]
    assert frames["valid"]["dialogue_id"].tolist() == ["d2"] * 3 + ["d3"]               # the first pairs, in order
    assert [r.getMessage() for r in caplog.records] == [
        "valid: cut to its first 4 of 6 pairs, 2 of 2 dialogues (quick.max_eval_pairs)",
        "test: cut to its first 3 of 6 pairs, 1 of 2 dialogues (quick.max_eval_pairs)"]
