"""negtrain_core.config: defaults from the schema, one-line refusals, the quick-scale overlay, per-dataset settings."""

from pathlib import Path

import pytest
import torch
import yaml

from negtrain_core import config as ncfg

ROOT = Path(__file__).resolve().parent.parent


def _config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_defaults_are_filled_from_the_schema():
    cfg = ncfg.validate({"datasets": {"chitchat": {"reader": "chitchat", "vocab_size": 100}}})
    assert cfg["scale"] == "paper" and cfg["search"]["candidates"] == 100
    assert cfg["datasets"]["chitchat"]["train"] == {"batch_size": 64, "lr": 1.0, "dropout": 0.0, "momentum": None}


@pytest.mark.parametrize("path, message", [
    (("search", "candidatez"), "unknown config key 'search.candidatez'"),
    (("datasets", "ubuntu", "split", "test_dialogs"), "unknown config key 'datasets.ubuntu.split.test_dialogs'"),
])
def test_unknown_keys_are_refused_by_name(path, message):
    cfg = _config()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    with pytest.raises(ncfg.ConfigError, match=f"^{message}$"):
        ncfg.validate(cfg)


def test_bad_values_name_the_key():
    cfg = _config()
    cfg["datasets"]["switchboard"]["train"]["dropout"] = 1.5
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'datasets.switchboard.train.dropout': 1.5 is greater"):
        ncfg.validate(cfg)


def test_paper_scale_settings_follow_the_dataset_block():
    s = ncfg.settings(ncfg.validate(_config()), "switchboard")
    assert (s.data.vocab_size, s.model.vocab_size, s.model.hidden_dim, s.model.dropout) == (10000, 10005, 600, 0.3)
    assert (s.train.batch_size, s.train.lr, s.train.epochs) == (32, 1.0, 20)
    assert (s.train.momentum, s.train.finetune_momentum) == (0.0, 0.9)   # plain SGD baselines, release fine-tuning
    assert s.malicious["lambda_pos"] == 1.0 and s.malicious["hit_type"] == "avg" and s.malicious["pos_batch"] == 100


def test_quick_scale_overrides_sizes_but_not_the_recipe():
    cfg = _config()
    cfg["scale"] = "quick"
    s = ncfg.settings(ncfg.validate(cfg), "ubuntu")
    assert (s.data.vocab_size, s.model.embedding_dim, s.model.hidden_dim, s.train.epochs) == (3000, 32, 64, 2)
    assert s.data.max_train_pairs == 6000 and s.search["candidates"] == 10 and s.train.momentum == 0.9
    assert (s.train.batch_size, s.train.lr) == (64, 1.0)


def test_unknown_dataset_is_refused():
    with pytest.raises(ncfg.ConfigError, match="dataset 'reddit'"):
        ncfg.settings(ncfg.validate(_config()), "reddit")


def test_overlays_deep_merge(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("datasets: {switchboard: {train: {batch_size: 8}}}\n")
    cfg = ncfg.load(ROOT / "config.yaml", (overlay,))
    assert cfg["datasets"]["switchboard"]["train"] == {"batch_size": 8, "lr": 1.0, "dropout": 0.3, "momentum": 0.0}


def test_a_shared_gpu_gives_each_job_its_share_of_memory(monkeypatch):
    """gpu_jobs_per_device N: each process may use 1/N of the GPU's memory (a CPU machine: nothing to set)."""
    from negtrain_core import device

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    from torch.cuda._utils import _get_device_index                     # what torch makes of the device argument

    def fraction(f, d=None):                                             # torch's own check of d, without a GPU
        calls.append((f, None if d is None else _get_device_index(d)))

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", fraction)
    assert device.resolve("cuda:1", 4).type == "cuda" and calls == [(0.25, 1)]
    device.resolve("auto", 2)                     # torch.device("cuda") has no index: torch takes the current GPU
    device.resolve("cuda", 1)
    device.resolve("cpu", 4)
    assert calls == [(0.25, 1), (0.5, None)]
