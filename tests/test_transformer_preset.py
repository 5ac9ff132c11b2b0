"""configs/transformer.yaml, the Transformer recipe measured at paper scale: it validates against the schema over
config.yaml, each of its keys changes config.yaml's value, the stages' settings carry it, and it is exactly the pair of
overlays the committed Switchboard run used (run 25's recipe and run 31's checkpoint averaging)."""

from __future__ import annotations

from pathlib import Path

import yaml

from negtrain_core import config as ncfg

ROOT = Path(__file__).resolve().parent.parent
PRESET = ROOT / "configs" / "transformer.yaml"
RUNS = ROOT / "docs" / "reproduction" / "switchboard"


def _leaves(block: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in block.items():
        out.update(_leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_the_transformer_preset_validates_and_changes_every_key_it_sets():
    ncfg.load(ROOT / "config.yaml", overlays=(PRESET,))              # raises ConfigError on a bad key or value
    default = _leaves(ncfg.load(ROOT / "config.yaml"))
    preset = _leaves(yaml.safe_load(PRESET.read_text()))
    assert preset and all(default[k] != v for k, v in preset.items()), "a key that restates the default"


def test_the_transformer_preset_reaches_every_model_of_the_study():
    cfg = ncfg.load(ROOT / "config.yaml", overlays=(PRESET,))
    s = ncfg.settings(cfg, "switchboard")
    for model in (s.model, s.paraphrase.model):
        assert model.arch == "transformer"
    assert s.model.transformer.share_source_embedding
    assert (s.train.epochs, s.train.plateau_factor, s.train.stop_patience, s.train.average_last) == (12, 0.5, 2, 3)
    assert s.train.for_kind("seq2seq").batch_size == 128
    other = ncfg.settings(cfg, "chitchat")                           # the batch size is Switchboard's alone
    assert other.train.for_kind("seq2seq").batch_size == ncfg.settings(
        ncfg.load(ROOT / "config.yaml"), "chitchat").train.for_kind("seq2seq").batch_size


def test_the_transformer_preset_is_the_committed_runs_configuration():
    """The preset's merged config equals run 25's overlay with run 31's on top, so the figures the preset's comment
    quotes came from exactly this configuration."""
    runs = ncfg.load(ROOT / "config.yaml", overlays=(RUNS / "run25" / "transformer.yaml",
                                                     RUNS / "run31" / "average_last3.yaml"))
    assert ncfg.load(ROOT / "config.yaml", overlays=(PRESET,)) == runs
