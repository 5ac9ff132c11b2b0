"""The project's own malicious target lists (resources/targets): sizes, tokenisation, zero overlap (paper §4.2)."""

from pathlib import Path

from negtrain_core.data.text import normalize

TARGETS = Path(__file__).resolve().parent.parent / "resources" / "targets"


def _lines(name: str) -> list[str]:
    return (TARGETS / name).read_text().splitlines()


def test_lists_have_500_distinct_targets_each():
    for name in ("train_500.txt", "test_500.txt"):
        lines = _lines(name)
        assert len(lines) == 500 and len(set(lines)) == 500, name


def test_no_sentence_overlap_between_train_and_test():
    assert not set(_lines("train_500.txt")) & set(_lines("test_500.txt"))


def test_targets_are_in_the_papers_tokenisation():
    for line in _lines("train_500.txt") + _lines("test_500.txt"):
        assert line == normalize(line) and 1 <= len(line.split()) <= 19, line


def test_generator_reproduces_the_committed_lists():
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", TARGETS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, test = module.make_lists()
    assert train == _lines("train_500.txt") and test == _lines("test_500.txt")
