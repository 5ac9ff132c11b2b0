"""text.normalize / tokenize: the paper's lower-casing and punctuation removal, PTB clitics, numbers, hyphens."""

from __future__ import annotations

import random

import pytest

from negtrain_core.data.text import normalize, tokenize


@pytest.mark.parametrize("raw, expected", [
    ("I don't know", "i do n't know"),
    ("We're here, I'm sure", "we 're here i 'm sure"),
    ("Can't won't shouldn't", "ca n't wo n't should n't"),
    ("you'll, they've, he'd", "you 'll they 've he 'd"),
    ("Tom's car", "tom 's car"),
    ("he'd've", "he 'd 've"),
    ("it\u2019s", "it 's"),                       # curly apostrophe is an apostrophe
    ("I'M", "i 'm"),
    ("y'all o'clock", "y'all o'clock"),           # not a clitic: the apostrophe stays inside the word
])
def test_clitics_are_split_ptb_style(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Hello, world! How are you?", "hello world how are you"),
    ("'quoted' words", "quoted words"),
    ("students' books", "students books"),
    ("e-mail me at joe@x.com", "e-mail me at joe x com"),
    ("(a) [b] {c} \"d\" ;:", "a b c d"),
    ("!!! ... ???", ""),
    ("``shares''", "shares"),
])
def test_punctuation_is_removed(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_casing_and_unicode_folding() -> None:
    assert normalize("HELLO World") == "hello world"
    assert normalize("Caf\u00c9 na\u00efve") == "cafe naive"
    assert normalize("\ufb01ne \uff26\uff55\uff4c\uff4c") == "fine full"


@pytest.mark.parametrize("raw, expected", [
    ("It costs 1,000 dollars", "it costs 1000 dollars"),
    ("2.5 euros.", "2.5 euros"),
    ("version 3.", "version 3"),
    ("the 90's", "the 90 's"),
    ("-5 degrees", "5 degrees"),
])
def test_numbers(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("uh-huh - well -- yes", "uh-huh well yes"),
    ("a well-known fact-", "a well-known fact-"),  # a cut-off word keeps its hyphen (authors: "whi-")
    ("- well -", "well"),
    ("--flag", "flag"),
])
def test_hyphens_survive_only_inside_words(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_is_idempotent_on_random_strings() -> None:
    rng = random.Random(0)
    alphabet = "ab dnt'srvelm.,-0123 A\u00e9\u2019!?"
    for _ in range(20000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        once = normalize(s)
        assert normalize(once) == once, s


def test_tokenize_splits_the_normalised_text() -> None:
    assert tokenize("  I don't   KNOW!  ") == ["i", "do", "n't", "know"]
    assert tokenize("") == []


def test_cannot_is_split_as_in_the_penn_treebank() -> None:
    assert normalize("I cannot, Cannot.") == "i can not can not"
