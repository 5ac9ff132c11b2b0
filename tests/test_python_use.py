"""The worked example of docs/architecture.md ("Using the package from Python"), run as written on tiny models: the
files it reads are laid out as the quick pipeline leaves them, with an 8-unit seq2seq and LM in their place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import torch

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import SPECIALS, Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.lstm import LSTMLM, Seq2Seq

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Using the package from Python"
# the first targets of resources/targets/train_500.txt, but 'bastard' and 'crush': the example skips those lines
WORDS = ("you are terrible disgusting and rude i hate people like will shoot your sister want to stab get lost "
         "the a cat dog sat go away me do n't").split()


def example_code() -> str:
    """The Python block of the section, as the docs show it."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert SECTION in text, f"docs/architecture.md has no section '{SECTION}'"
    block = re.search(r"```python\n(.*?)```", text[text.index(SECTION):], re.S)
    assert block is not None, f"'{SECTION}' holds no python block"
    return block.group(1)


def tiny_results(root: Path) -> None:
    """results/chitchat/ under ``root`` as the example reads it: random 8-unit models, pairs, thresholds; and the
    repository's resources/, where config.yaml's target lists are."""
    results = root / "results" / "chitchat"
    (results / "models").mkdir(parents=True)
    (results / "data").mkdir()
    vocab = Vocab(SPECIALS + tuple(WORDS))
    vocab.save(results / "data" / "vocab.txt")
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=8, hidden_dim=8, dropout=0.0)
    torch.manual_seed(0)
    checkpoint.save(results / "models" / "seq2seq.pt", Seq2Seq(ms), kind="seq2seq", vocab=vocab)
    checkpoint.save(results / "models" / "lm.pt", LSTMLM(ms), kind="lm", vocab=vocab)
    pairs = pd.DataFrame({"source": ["the cat sat", "a dog sat", "go away", "i do n't"] * 30,
                          "target": ["the dog sat", "the cat", "get lost", "you are a cat"] * 30})
    pairs.to_parquet(results / "data" / "train.parquet")
    pairs.head(12).to_parquet(results / "data" / "test.parquet")
    (results / "thresholds.json").write_text(json.dumps({"seq2seq": -3.0, "lm": -3.0}))
    (root / "resources").symlink_to(ROOT / "resources")


def test_the_documented_example_runs_on_tiny_models(tmp_path, monkeypatch, capsys):
    tiny_results(tmp_path)
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__example__"}
    exec(compile(example_code(), "docs/architecture.md", "exec"), scope)
    printed = capsys.readouterr().out
    targets, before, after, curve = scope["targets"], scope["before"], scope["after"], scope["curve"]
    assert targets.texts == ("you are terrible", "you are disgusting and rude", "i hate people like you",
                             "i will shoot your sister", "i want to stab you")
    for rates in (before, after):
        assert rates["targets"].tolist() == [5] * 5 and rates["rate"].between(0, 1).all()
    assert curve["epoch"].max() == scope["s"].malicious.epochs and not scope["seq2seq"].training
    assert len(scope["responses"]) == 12 and 0 < scope["m"]["max_ratio"] <= 1
    assert re.search(r"max-ratio \d+\.\d%.*Ent-2 \d+\.\d\d", printed)
