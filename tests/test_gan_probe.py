"""docs/reproduction/gan_probe.py on a tiny seq2seq: a baseline row, then one row per discriminator reading, seed and
generator lr, each reading's GAN trained with its own discriminator settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import torch
import yaml

from negtrain_core.comparisons import gan
from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import SPECIALS, Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.lstm import Seq2Seq

ROOT = Path(__file__).resolve().parent.parent
WORDS = "i hate you are bad so very go away yes no".split()


def _script(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "reproduction"))    # the script imports its neighbour ablation
    spec = importlib.util.spec_from_file_location("gan_probe", ROOT / "docs" / "reproduction" / "gan_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pairs(n: int, seed: int) -> pd.DataFrame:
    g = torch.Generator().manual_seed(seed)
    words = [[WORDS[i] for i in torch.randint(len(WORDS), (int(k),), generator=g)]
             for k in torch.randint(1, 6, (2 * n,), generator=g)]
    return pd.DataFrame({"dialogue_id": [str(i) for i in range(n)], "turn": [1] * n,
                         "source": [" ".join(w) for w in words[:n]], "target": [" ".join(w) for w in words[n:]]})


def test_probe_trains_each_reading_with_its_discriminator(tmp_path, monkeypatch):
    script = _script(monkeypatch)
    vocab = Vocab(SPECIALS + tuple(WORDS))
    vocab.save(tmp_path / "vocab.txt")
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=len(vocab), embedding_dim=6, hidden_dim=8, dropout=0.1))
    checkpoint.save(tmp_path / "s2s.pt", model, kind="seq2seq", vocab=vocab)
    _pairs(32, 1).to_parquet(tmp_path / "train.parquet")
    _pairs(16, 2).to_parquet(tmp_path / "valid.parquet")
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump({
        "scale": "quick", "device": "cpu",
        "quick": {"finetune_pairs": 32, "gan": {"filters": 4, "highway_hidden": 8, "g_lrs": [0.01, 0.001]}}}))
    seen = []
    train_gan = gan.train_gan
    monkeypatch.setattr(gan, "train_gan", lambda m, t, lr, cfg: seen.append(cfg) or train_gan(m, t, lr, cfg))
    table = script.main(["--dataset", "chitchat", "--seq2seq", str(tmp_path / "s2s.pt"),
                         "--vocab", str(tmp_path / "vocab.txt"), "--data", str(tmp_path),
                         "--overlay", str(tmp_path / "overlay.yaml"), "--seeds", "1", "2",
                         "--out", str(tmp_path / "probe.csv")])
    readings = ["paper", "release", "release, adam"]
    assert table["reading"].tolist() == ["baseline"] + [r for r in readings for _ in range(4)]
    assert table["g_lr"].iloc[1:5].tolist() == [0.01, 0.001, 0.01, 0.001]
    assert table["seed"].iloc[1:5].tolist() == [1, 1, 2, 2]
    assert table[["valid_ppl", "max_ratio", "ent2"]].notna().all().all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "probe.csv"), table, check_dtype=False)
    release = yaml.safe_load((ROOT / "configs" / "release.yaml").read_text())["gan"]
    paper, rel, adam = seen[0], seen[4], seen[8]
    assert (paper.separate_convs, paper.d_optimizer, paper.align) == (False, "adam", "left")
    assert (rel.separate_convs, rel.dropout, rel.gate_bias, rel.align, rel.projection, rel.d_optimizer,
            rel.d_weight_decay) == (release["separate_convs"], release["dropout"], release["gate_bias"],
                                    release["align"], release["projection"], release["d_optimizer"],
                                    release["d_weight_decay"])
    assert adam == rel.__class__(**{**rel.__dict__, "d_optimizer": "adam"})
    assert [c.seed for c in seen[:4]] == [1, 1, 2, 2]
