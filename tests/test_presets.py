"""The presets of configs/. release.yaml, the overlay that turns the release's readings on together: it validates
against the schema over config.yaml, each of its keys changes config.yaml's value, the settings the stages take carry
them, and the whole quick pipeline runs under it. paper_levels.yaml, a part of it. transformer.yaml, the Transformer
recipe measured at paper scale: valid, every key a change, carried to every model, and exactly the overlays of the
committed Switchboard runs. fast.yaml, the speed options: valid on every preset and changing speed fields only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from negtrain_core import config as ncfg
from negtrain_core.models import checkpoint
from snakemake_cli import quick_pipeline

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "configs" / "release.yaml"
TRANSFORMER = ROOT / "configs" / "transformer.yaml"
RUNS = ROOT / "docs" / "reproduction" / "switchboard"


def _leaves(block: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every non-mapping value in ``block``."""
    out: dict[str, object] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_release_overlay_validates_and_changes_every_key_it_sets():
    cfg = ncfg.load(ROOT / "config.yaml", overlays=(OVERLAY,))       # raises ConfigError on a bad key or value
    default = _leaves(ncfg.load(ROOT / "config.yaml"))
    overlay = _leaves(yaml.safe_load(OVERLAY.read_text()))
    assert overlay and all(default[k] != v for k, v in overlay.items()), "a key that restates the default"
    assert all(_leaves(cfg)[k] == v for k, v in overlay.items())


def test_the_release_overlay_reaches_the_models_baseline_training_and_gan():
    cfg = ncfg.load(ROOT / "config.yaml", overlays=(OVERLAY,))
    s = ncfg.settings(cfg, "switchboard")
    for model in (s.model, s.paraphrase.model):
        assert (model.attention, model.decoder_init, model.dropout_sites, model.init) == (
            "release", "zero", "decoder", "release")
    for train in (s.train, s.paraphrase.train):
        assert (train.keep, train.shuffle, train.drop_last_batch, train.clip_scope,
                train.reset_momentum_each_epoch) == ("last", False, True, "per_module", True)
    assert s.train.epochs == 21
    # the baselines' SGD momentum, on every corpus (config.yaml trains them with plain SGD)
    assert {ncfg.settings(cfg, name).train.momentum for name in cfg["datasets"]} == {0.9}
    assert cfg["dataset_defaults"]["train"]["momentum"] == 0.9
    assert s.data.target_cut == s.paraphrase.data.target_cut == "release"
    assert (s.train.for_kind("lm").batch_size, s.train.for_kind("seq2seq").batch_size) == (64, 32)
    assert (s.gan.separate_convs, s.gan.dropout, s.gan.gate_bias, s.gan.align, s.gan.highway_hidden,
            s.gan.d_optimizer, s.gan.d_weight_decay, s.gan.projection) == (True, 0.3, -2.0, "right", 2400, "sgd", 1e-5,
                                                                           False)


@pytest.mark.slow
def test_quick_pipeline_with_the_release_preset(tmp_path: Path):
    """Every stage under every release reading at once (``rule all``, tests/quick_tiny.yaml): each table is written
    and the models are the release's."""
    results = quick_pipeline(tmp_path, OVERLAY, tiny=True)
    cfg = checkpoint.load(results / "models" / "negtr-io-0.5k.pt").model.cfg
    assert (cfg.attention, cfg.decoder_init, cfg.dropout_sites, cfg.init) == ("release", "zero", "decoder", "release")
    table3 = pd.read_csv(results / "table3.csv").set_index("training")
    assert table3.loc["+neg-tr(0.5k)", "status"] == "ok"


# the overlays of the Switchboard runs that retrained the release preset with one reading changed: runs 48 on, less
# run 60 (config.yaml's whole set, tested below)
PRESET_RUN_OVERLAYS = sorted(p for n in range(48, 100) if n != 60 for p in (RUNS / f"run{n}").glob("*.yaml")
                             if p.name != "share.yaml")


@pytest.mark.parametrize("overlay", PRESET_RUN_OVERLAYS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_preset_runs_overlays_still_load_on_the_recipe_they_ran_with(overlay: Path):
    """The committed commands of runs 48 on (docs/reproduction/switchboard/README.md) layer each run's overlay over
    the raw-corpus paths (run14/overlay.yaml), configs/release.yaml and run48/share.yaml: a key renamed or retired
    since would make a committed run impossible to repeat, and the overlays ready for the next runs must load before
    a GPU is spent on them."""
    ncfg.load(ROOT / "config.yaml",
              overlays=(RUNS / "run14" / "overlay.yaml", OVERLAY, RUNS / "run48" / "share.yaml", overlay))


def test_the_paper_levels_overlay_is_a_valid_part_of_the_release_preset():
    """configs/paper_levels.yaml (the release attention and hit test alone): every key it sets changes config.yaml's
    value and carries the release preset's value, so the two overlays cannot drift apart."""
    part = ROOT / "configs" / "paper_levels.yaml"
    ncfg.load(ROOT / "config.yaml", overlays=(part,))                  # raises ConfigError on a bad key or value
    default, release = _leaves(ncfg.load(ROOT / "config.yaml")), _leaves(yaml.safe_load(OVERLAY.read_text()))
    keys = _leaves(yaml.safe_load(part.read_text()))
    assert set(keys) == {"model.attention", "model.decoder_init", "hits.model_mode", "hits.lm_check", "hits.strict",
                         "hits.baseline_restarts"}
    assert all(default[k] != v and release[k] == v for k, v in keys.items())
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", overlays=(part,)), "switchboard")
    assert (s.model.attention, s.model.decoder_init, s.model.dropout_sites, s.model.init) == (
        "release", "zero", "all", "torch")


FAST = ROOT / "configs" / "fast.yaml"
SPEED_FIELDS = frozenset({"cuda_graph", "matmul_precision", "lm_sample_rng", "shared_tail"})


@pytest.mark.parametrize("preset", [None, OVERLAY, ROOT / "configs" / "paper_levels.yaml", TRANSFORMER],
                         ids=["config.yaml", "release", "paper_levels", "transformer"])
def test_the_fast_overlay_changes_speed_fields_only(preset):
    """configs/fast.yaml stacks on every preset, each of its keys changes config.yaml's value, and the settings
    every stage takes differ from the preset's alone in speed fields only (roundings and random draws, not the
    method): a key that changes what a stage computes, added to it, fails here."""
    below = (preset,) if preset else ()
    default = _leaves(ncfg.load(ROOT / "config.yaml"))
    keys = _leaves(yaml.safe_load(FAST.read_text()))
    assert keys and all(default[k] != v for k, v in keys.items()), "a key that restates the default"
    assert {k.rsplit(".", 1)[1] for k in keys} <= SPEED_FIELDS
    fast = ncfg.load(ROOT / "config.yaml", overlays=(*below, FAST))      # raises ConfigError on a bad key or value
    plain = ncfg.load(ROOT / "config.yaml", overlays=below)
    for name in plain["datasets"]:
        with_fast, without = ncfg.settings(fast, name), ncfg.settings(plain, name)
        assert with_fast != without
        assert ncfg.plain(with_fast, SPEED_FIELDS) == ncfg.plain(without, SPEED_FIELDS)   # less speed fields
    s = ncfg.settings(fast, "switchboard")
    assert {(c.cuda_graph, c.lm_sample_rng, c.shared_tail) for c in [*s.search.attack.values(),
                                                                     *s.search.negtrain.values()]} == {
        (True, "device", True)}
    assert (s.train.matmul_precision, s.malicious.cuda_graph) == ("tf32", True)
    assert {f.matmul_precision for f in s.frequent} == {"tf32"}


def test_the_whole_set_run_trains_its_baselines_as_run_20_did():
    """Run 60's stack (docs/reproduction/switchboard/README.md): the coherent base, the whole set's overlay,
    configs/fast.yaml, then ieee_train.yaml, which must undo fast.yaml's TF32 baselines so that Table 8 can equal
    run 20's (its assembler checks it); fast.yaml's other speed options stay, and each r_thres is a job of its own."""
    stack = (RUNS / "run20" / "overlay.yaml", RUNS / "run60" / "whole_set.yaml", FAST,
             RUNS / "run60" / "ieee_train.yaml")
    cfg = ncfg.load(ROOT / "config.yaml", overlays=stack)               # raises ConfigError on a bad key or value
    s, run20 = ncfg.settings(cfg, "switchboard"), ncfg.settings(ncfg.load(ROOT / "config.yaml", overlays=stack[:1]),
                                                                "switchboard")
    assert (s.train.matmul_precision, s.malicious.cuda_graph, cfg["frequent"]["runs_per_job"]) == ("ieee", True, 1)
    assert [f.matmul_precision for f in s.frequent] == ["tf32"] * len(s.frequent)
    assert s.train == run20.train and s.model == run20.model


def test_the_transformer_preset_validates_and_changes_every_key_it_sets():
    ncfg.load(ROOT / "config.yaml", overlays=(TRANSFORMER,))          # raises ConfigError on a bad key or value
    default = _leaves(ncfg.load(ROOT / "config.yaml"))
    preset = _leaves(yaml.safe_load(TRANSFORMER.read_text()))
    assert preset and all(default[k] != v for k, v in preset.items()), "a key that restates the default"


def test_the_transformer_preset_reaches_every_model_of_the_study():
    cfg = ncfg.load(ROOT / "config.yaml", overlays=(TRANSFORMER,))
    s = ncfg.settings(cfg, "switchboard")
    for model in (s.model, s.paraphrase.model):
        assert model.arch == "transformer"
    assert s.model.transformer.share_source_embedding
    assert (s.train.epochs, s.train.plateau_factor, s.train.stop_patience, s.train.average_last) == (12, 0.5, 2, 3)
    assert s.train.for_kind("seq2seq").batch_size == 128
    assert (s.malicious.lr_neg, s.malicious.lr_pos) == (0.005, 0.005)
    other = ncfg.settings(cfg, "chitchat")                  # the batch size and the steps are Switchboard's alone
    default = ncfg.settings(ncfg.load(ROOT / "config.yaml"), "chitchat")
    assert other.train.for_kind("seq2seq").batch_size == default.train.for_kind("seq2seq").batch_size
    assert (other.malicious.lr_neg, other.malicious.lr_pos) == (default.malicious.lr_neg, default.malicious.lr_pos)


def test_the_transformer_preset_is_the_committed_runs_configuration():
    """The preset's merged config equals run 25's overlay with runs 31 and 36's on top, so the figures the preset's
    comment quotes came from exactly this configuration."""
    runs = ncfg.load(ROOT / "config.yaml", overlays=(RUNS / "run25" / "transformer.yaml",
                                                     RUNS / "run31" / "average_last3.yaml",
                                                     RUNS / "run36" / "lr_005.yaml"))
    assert ncfg.load(ROOT / "config.yaml", overlays=(TRANSFORMER,)) == runs


def test_the_transformer_preset_takes_the_release_hit_test_and_refuses_its_lstm_readings():
    """docs/presets.md: the release's hit test combines with the Transformer; the presets that set the LSTM's
    attention stop the run in one line instead of running a Transformer that ignores it."""
    hits_only = RUNS / "run14" / "release_hits.yaml"
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", overlays=(TRANSFORMER, hits_only)), "switchboard")
    assert (s.model.arch, s.hits.model_mode, s.hits.baseline_restarts) == ("transformer", "train", 1)
    for overlay in (OVERLAY, ROOT / "configs" / "paper_levels.yaml"):
        cfg = ncfg.load(ROOT / "config.yaml", overlays=(TRANSFORMER, overlay))
        with pytest.raises(ncfg.ConfigError, match=r"^config key 'model.attention': 'release' is an LSTM setting"):
            ncfg.settings(cfg)
