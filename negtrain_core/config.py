"""Configuration: schema validation with defaults, the quick-scale overlay, and frozen dataclasses per stage.

``schemas/config.schema.yaml`` is the single place where defaults live. ``validate`` fills them in and refuses
unknown keys with a one-line error naming the key; ``settings(config, dataset)`` turns the validated mapping into
the frozen dataclasses each stage takes, with ``scale: quick`` applied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
DATASETS = ("chitchat", "switchboard", "ubuntu", "opensubtitles")


class ConfigError(ValueError):
    """A configuration problem, stated in one line that names the key."""


def _with_defaults(cls: type) -> type:
    """A jsonschema validator class that writes each property's ``default`` into the instance."""
    import jsonschema  # imported here: GPU hosts without jsonschema can still import the models

    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                sub = validator._resolver.lookup(sub["$ref"]).contents if "$ref" in sub else sub
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _describe(err: "jsonschema.ValidationError") -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"unknown config key '{where}.{extra[0]}'" if where != "<top level>" else f"unknown config key '{extra[0]}'"
    return f"config key '{where}': {err.message}"


def validate(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate ``config`` in place, filling defaults; raise ``ConfigError`` naming the first bad key."""
    import jsonschema  # lazily: only validation needs it (the models import this module on GPU hosts)

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)
    errors = sorted(validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    return config


def load(path: str | Path, overlays: tuple[str | Path, ...] = ()) -> dict[str, Any]:
    """Read ``path`` and any overlay files (deep-merged in order), then ``validate``."""
    config: dict[str, Any] = {}
    for p in (path, *overlays):
        deep_update(config, yaml.safe_load(Path(p).read_text()) or {})
    return validate(config)


def deep_update(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into ``base`` recursively (Snakemake's own rule for --configfile overlays)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


@dataclass(frozen=True)
class DataSettings:
    name: str
    reader: str
    raw: dict[str, Any]
    split: dict[str, Any]
    vocab_size: int
    max_source_len: int = 15
    max_target_len: int = 20
    source_eou: bool = True
    malformed_max_share: float = 0.01
    max_train_pairs: int | None = None     # quick scale: cap on training pairs
    max_eval_pairs: int | None = None      # quick scale: cap on valid/test pairs
    seed: int = 1                          # random choices of a reader or split (config 'seed')


@dataclass(frozen=True)
class ModelSettings:
    vocab_size: int
    embedding_dim: int = 300
    hidden_dim: int = 600
    num_layers: int = 1
    dropout: float = 0.0
    attention: str = "general"
    mask_source_padding: bool = True


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1.0
    momentum: float = 0.9                  # baseline training (datasets.X.train.momentum, else train.momentum)
    finetune_momentum: float = 0.9         # the release's momentum of every fine-tuning optimiser (train.momentum)
    weight_decay: float = 1e-5
    clip_norm: float = 5.0
    lr_schedule: str = "release"
    decay_start_epoch: int = 10
    cuda_graph: bool = True
    log_every: int = 200
    seed: int = 1
    device: str = "auto"
    gpu_jobs_per_device: int = 1


@dataclass(frozen=True, kw_only=True)
class FineTuning:
    """The settings every SGD fine-tuning of a trained seq2seq (Algorithm 2, the GAN's generator, unlikelihood)
    shares; ``FrequentSettings``, ``GanSettings`` and ``ULSettings`` extend it (keyword-only fields)."""

    batch_size: int = 64                   # datasets.<name>.frequent.batch_size
    momentum: float = 0.9                  # train.momentum (TrainSettings.finetune_momentum)
    weight_decay: float = 1e-5             # train.weight_decay
    clip_norm: float = 5.0                 # train.clip_norm
    max_len: int = 20                      # preprocess.max_target_len: the decoded responses' length
    seed: int = 1                          # seed

    @staticmethod
    def kwargs_from(s: Settings) -> dict[str, Any]:
        """These fields' values in ``s``, as keyword arguments of a subclass's constructor."""
        return dict(batch_size=s.frequent["batch_size"], momentum=s.train.finetune_momentum,
                    weight_decay=s.train.weight_decay, clip_norm=s.train.clip_norm, max_len=s.data.max_target_len,
                    seed=s.seed)


@dataclass(frozen=True)
class Settings:
    """Everything one dataset's stages need, with the scale applied."""

    scale: str
    seed: int
    device: str
    data: DataSettings
    model: ModelSettings
    train: TrainSettings
    search: dict[str, Any] = field(default_factory=dict)
    malicious: dict[str, Any] = field(default_factory=dict)
    frequent: dict[str, Any] = field(default_factory=dict)
    raw_config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    gpu_jobs_per_device: int = 1


def settings(config: dict[str, Any], dataset: str) -> Settings:
    """The validated ``config`` seen from one dataset, with ``scale: quick`` applied."""
    if dataset not in config["datasets"]:
        raise ConfigError(f"dataset '{dataset}' has no block under 'datasets' in the config")
    ds = config["datasets"][dataset]
    pre, quick = config["preprocess"], config["quick"]
    is_quick = config["scale"] == "quick"
    data = DataSettings(
        name=dataset, reader=ds["reader"], raw=ds["raw"], split=ds["split"],
        vocab_size=min(ds["vocab_size"], quick["vocab_size"]) if is_quick else ds["vocab_size"],
        max_source_len=pre["max_source_len"], max_target_len=pre["max_target_len"], source_eou=pre["source_eou"],
        malformed_max_share=pre["malformed_max_share"],
        max_train_pairs=quick["max_train_pairs"] if is_quick else None,
        max_eval_pairs=quick["max_eval_pairs"] if is_quick else None,
        seed=config["seed"],
    )
    m = config["model"]
    model = ModelSettings(
        vocab_size=data.vocab_size + 5,
        embedding_dim=quick["embedding_dim"] if is_quick else m["embedding_dim"],
        hidden_dim=quick["hidden_dim"] if is_quick else m["hidden_dim"],
        num_layers=m["num_layers"], dropout=ds["train"]["dropout"], attention=m["attention"],
        mask_source_padding=m["mask_source_padding"],
    )
    t = config["train"]
    train = TrainSettings(
        epochs=quick["epochs"] if is_quick else t["epochs"], batch_size=ds["train"]["batch_size"],
        lr=ds["train"]["lr"],
        momentum=quick["baseline_momentum"] if is_quick else (
            t["momentum"] if ds["train"]["momentum"] is None else ds["train"]["momentum"]),
        finetune_momentum=t["momentum"], weight_decay=t["weight_decay"], clip_norm=t["clip_norm"],
        lr_schedule=t["lr_schedule"], decay_start_epoch=t["decay_start_epoch"], cuda_graph=t["cuda_graph"],
        log_every=t["log_every"], seed=config["seed"], device=config["device"],
        gpu_jobs_per_device=config["gpu_jobs_per_device"],
    )
    search = dict(config["search"], **(quick["search"] if is_quick else {}))
    malicious = dict(config["malicious"], **ds["malicious"])
    frequent = dict(config["frequent"], **ds["frequent"])
    if is_quick:
        malicious["epochs"] = quick["malicious_epochs"]
        malicious["target_list_size"] = quick["target_list_size"]
        frequent["epochs"] = quick["frequent_epochs"]
    return Settings(scale=config["scale"], seed=config["seed"], device=config["device"],
                    gpu_jobs_per_device=config["gpu_jobs_per_device"], data=data, model=model,
                    train=train, search=search, malicious=malicious, frequent=frequent, raw_config=config)


def gan_block(s: Settings) -> dict[str, Any]:
    """Config ``gan`` as a run sees it: ``quick.gan`` applied at quick scale."""
    cfg = dict(s.raw_config["gan"])
    if s.scale == "quick":
        cfg.update(s.raw_config["quick"]["gan"])
    return cfg


def format_lr(g_lr: float) -> str:
    """A GAN generator lr as paths spell it (``models/gan/g_lr-{format_lr(g_lr)}.pt``): the shortest text that reads
    back as the same float, so ``float(format_lr(x)) == x`` and a job's lr is exactly the configured one."""
    return repr(float(g_lr))
