"""Reader for OPUS OpenSubtitles XML (v2018 en.zip in config.yaml; the paper's OpenSubtitles, Appendix B).

Input: ``en.zip`` from OPUS (``OpenSubtitles/xml/en/<year>/<imdb id>/<n>.xml``), or the same tree as a folder or
tar.gz, with ``.xml`` or ``.xml.gz`` files. A movie is one ``<year>/<id>`` folder; when it holds several subtitle
files, the first by name is used. Each movie is one dialogue and each ``<s id=..>`` sentence one utterance: the
texts of its ``<w>`` tokens joined by spaces (or, in the untokenised OPUS ``raw`` XML, its text).

Split (paper Appendix B: 5k/50/50 movies, chosen at random): the movie list is sorted, shuffled with
``random.Random(data.seed)``, and the first ``valid_dialogues`` movies are the validation set, the next
``test_dialogues`` the test set, the next ``train_dialogues`` (all the rest when null) the training set. Only the
chosen movies are parsed, so the 5,100 movies are read out of the full dump without unpacking it.

Records are subtitle files; a file that is not well-formed XML (bytes that are not UTF-8 included) or a broken .gz
is malformed, one without a ``<s>`` sentence is empty, and its movie is dropped either way.
"""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from typing import BinaryIO

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import Dialogue, ReadResult
from negtrain_core.data.readers.archive import CorruptMember, Tally, iter_members, member_names

MOVIE_FILE = re.compile(r"(?:^|/)(\d+)/(\d+)/([^/]+\.xml)(?:\.gz)?$")


def movie_files(names: list[str]) -> dict[str, str]:
    """``{"<year>/<id>": member name}``: the first subtitle file (by name) of each movie folder."""
    movies: dict[str, str] = {}
    for name in sorted(names):
        m = MOVIE_FILE.search(name)
        if m:
            movies.setdefault(f"{m[1]}/{m[2]}", name)
    return movies


def choose_movies(movies: list[str], split: dict, seed: int, source: str = "the corpus",
                  key: str = "split") -> dict[str, str]:
    """``{movie: "train" | "valid" | "test"}`` for a seeded random choice of valid, test and train movies. Too few
    movies: one line naming ``source`` (the raw corpus) and ``key`` (its config block)."""
    order = sorted(movies)
    random.Random(seed).shuffle(order)
    n_valid, n_test = split["valid_dialogues"], split["test_dialogues"]
    n_train = split.get("train_dialogues")
    if len(order) < n_valid + n_test + 1:
        raise ValueError(f"{source}: {len(order)} movies, too few for {key}: valid {n_valid} + test {n_test} leave "
                         f"none for training; use the whole OPUS dump or lower {key}.valid_dialogues / test_dialogues")
    end = len(order) if n_train is None else n_valid + n_test + n_train
    names = ["valid"] * n_valid + ["test"] * n_test + ["train"] * (end - n_valid - n_test)
    return dict(zip(order[:end], names))


def sentences(f: BinaryIO) -> list[str]:
    """Text of each ``<s>`` of one subtitle file, in order: its ``<w>`` tokens joined by spaces, else its text.

    Raises ``ET.ParseError`` on XML that is not well formed.
    """
    out = []
    for _, elem in ET.iterparse(f, events=("end",)):
        if elem.tag == "s":
            words = [w.text or "" for w in elem.iter("w")]
            text = " ".join(words) if words else "".join(elem.itertext())
            out.append(" ".join(text.split()))
            elem.clear()
    return out


def read(data: DataSettings) -> ReadResult:
    """The randomly chosen movies of the OPUS XML dump at ``data.raw["path"]``, with the split fixed here."""
    path = data.raw["path"]
    movies = movie_files(member_names(path, lambda n: bool(MOVIE_FILE.search(n))))
    if not movies:
        raise ValueError(f"{path}: no <year>/<id>/<n>.xml(.gz) subtitle files inside: not OPUS OpenSubtitles XML")
    split = choose_movies(list(movies), data.split, data.seed, path, f"datasets.{data.name}.split")
    wanted = {movies[m]: m for m in split}
    tally, texts = Tally(), {}
    for name, f in iter_members(path, lambda n: n in wanted):
        try:
            found = sentences(f)
        except ET.ParseError as err:                         # bad XML (bytes that are not UTF-8 included)
            tally.bad(f"{name}:{err.position[0]}", f"not a well-formed XML file ({err})", file=name)
        except CorruptMember as err:                         # a broken .gz
            tally.bad(name, f"not a readable gzip file ({err.__cause__})")
        else:
            if found:
                texts[wanted[name]] = found
                tally.ok()
            else:
                tally.empty_file(name, "no <s> sentence")
    dialogues = [Dialogue(m, tuple(texts[m])) for m in sorted(texts)]
    notes = {"format": "opus_xml", "movies_available": len(movies), "movies_chosen": len(split),
             "seed": data.seed}
    return tally.result(dialogues, split={m: split[m] for m in texts}, notes=notes)
