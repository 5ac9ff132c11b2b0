"""Configuration: schema validation with defaults, and the frozen, typed settings every stage takes.

``schemas/config.schema.yaml`` is the single place where defaults live. ``validate`` fills them in and refuses
unknown keys with a one-line error naming the key; ``settings(config, dataset)`` is the one function that turns the
validated mapping into the frozen dataclasses each stage takes (one per config block), and the one place where the
quick-scale overlay (``scale: quick``, config block ``quick:``) is applied.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, overload

import yaml

from negtrain_core.gpu_slots import rule_base

if TYPE_CHECKING:                                   # for annotations only: imported lazily below
    import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
CONFIG_PATH = SCHEMA_PATH.parent.parent / "config.yaml"      # the repository's config, the Snakefile's configfile
CSV_FORMAT = {"id_column": "dialogue_id", "text_column": "text", "speaker_column": None, "delimiter": None}
# Dataset names the workflow's own results/ folders take (the target lists, the paraphraser).
RESERVED_DATASET_NAMES = ("targets", "paraphrase")
AUGMENTED_SIZES = ("1k", "2.5k")   # the paper's names of the lists with copies[0] and copies[1] paraphrases
# ``model`` keys only the LSTM reads (models/lstm.py); set away from their defaults with arch: transformer they stop
# the run
LSTM_ONLY_MODEL_KEYS = ("attention", "mask_source_padding", "decoder_init", "dropout_sites", "init")


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


def _describe(err: "jsonschema.ValidationError", schema: dict[str, Any] | None = None) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        known = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(known))
        key = extra[0] if where == "<top level>" else f"{where}.{extra[0]}"
        placed = _placement_hint(list(err.absolute_path), extra[0], schema or {})
        return f"unknown config key '{key}'{placed or _known_keys_hint(extra[0], known)}"
    hint = _text_hint(err, where)
    if err.validator in ("anyOf", "oneOf", "pattern") and "description" in err.schema:  # the allowed forms, in words
        return f"config key '{where}': {err.instance!r} is not {err.schema['description']}{hint}"
    return f"config key '{where}': {err.message}{hint}"


def _text_hint(err: "jsonschema.ValidationError", where: str) -> str:
    """Why a value written as a number or boolean arrived as text, and what to do, or ''. Snakemake's --config parses
    a top-level value as int, float or True/False but keeps every value inside a mapping
    (``--config 'quick={vocab_size: 5000}'``) as text, which the schema then refuses."""
    if not isinstance(err.instance, str):
        return ""
    boolean = err.instance.lower() in ("true", "false")
    if boolean and "." not in where:
        return f" (with --config, write {err.instance.capitalize()})"
    try:
        number = isinstance(yaml.safe_load(err.instance), (int, float))
    except yaml.YAMLError:
        number = False
    nested = (boolean or number) and "." in where
    return " (set it in a --configfile: nested --config values stay text)" if nested else ""


def near_hint(name: str, known, lead: str = "did you mean") -> str:
    """' (did you mean X?)' with the known name nearest to ``name`` (a misspelling), or ''."""
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" ({lead} '{near[0]}'?)" if near else ""


def _placement_hint(path: list, key: str, schema: dict[str, Any]) -> str:
    """Where ``key`` belongs when it sits in the wrong one of a section's two homes: ``train``, ``malicious`` and
    ``frequent`` hold the settings every dataset shares, ``datasets.<name>.<section>`` (and ``dataset_defaults``)
    the ones each dataset sets for itself (batch sizes, learning rates, epochs), or ''."""
    defs, top = schema.get("$defs", {}), schema.get("properties", {})
    if len(path) == 1 and key in defs.get(f"dataset_{path[0]}", {}).get("properties", {}):
        return (f" (set per dataset: datasets.<name>.{path[0]}.{key}, or dataset_defaults.{path[0]}.{key} for every "
                f"dataset)")
    if len(path) == 3 and path[0] == "datasets" or len(path) == 2 and path[0] == "dataset_defaults":
        if key in top.get(path[-1], {}).get("properties", {}):
            return f" (one setting for every dataset: {path[-1]}.{key})"
    return ""


def _known_keys_hint(key: str, known: list[str]) -> str:
    """What the unknown ``key`` may have meant: the nearest known key at its level, else (where few) all of them."""
    return near_hint(key, known) or (f" (keys here: {', '.join(known)})" if 0 < len(known) <= 10 else "")


def validate(config: dict[str, Any], schema_path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Validate ``config`` in place, filling defaults (``dataset_defaults`` first, then the schema's); raise
    ``ConfigError`` naming the first bad key."""
    import jsonschema  # lazily: only validation needs it (the models import this module on GPU hosts)

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)
    _merge_dataset_defaults(config)
    errors = sorted(validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        message, path = _describe(errors[0], schema), list(errors[0].absolute_path)
        if len(path) == 2 and path[0] == "datasets" and errors[0].validator == "required":
            message += near_hint(path[1], set(config["datasets"]) - {path[1]},     # a misspelt dataset's overlay
                                  "a new dataset block: did you mean")
        raise ConfigError(message + _fraction_hint(errors[0], config, schema))
    _check_datasets(config)
    return config


def _fraction_hint(err: "jsonschema.ValidationError", config: dict[str, Any], schema: dict[str, Any]) -> str:
    """Why a fraction of held-out dialogues is refused: its dataset's reader takes counts (the schema's if-branch
    lists the readers that take fractions), or ''."""
    path = list(err.absolute_path)
    if not (len(path) == 4 and path[:3:2] == ["datasets", "split"] and err.validator == "type"
            and isinstance(err.instance, float)):
        return ""
    fractions = schema["$defs"]["dataset"]["if"]["properties"]["reader"]["enum"]
    return (f" (reader {config['datasets'][path[1]].get('reader')} takes a count of dialogues; a fraction is for "
            f"readers {' and '.join(fractions)})")


def dataset_names(config: dict[str, Any]) -> tuple[str, ...]:
    """The datasets of a validated config: its ``datasets`` blocks, in config order."""
    return tuple(config["datasets"])


def _merge_dataset_defaults(config: dict[str, Any]) -> None:
    """Give each ``datasets`` block the ``dataset_defaults`` keys it leaves out (recursively: a block's own values
    win). Runs before the schema fills its defaults, which then complete what neither sets."""
    defaults, blocks = config.get("dataset_defaults"), config.get("datasets")
    if isinstance(defaults, dict) and isinstance(blocks, dict):   # else the schema names what is wrong
        for block in blocks.values():
            if isinstance(block, dict):
                _fill_missing(block, defaults)


def _fill_missing(base: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Add to ``base`` each key of ``defaults`` it lacks (a copy), recursing where both hold a mapping."""
    for key, value in defaults.items():
        if key not in base:
            base[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(base[key], dict):
            _fill_missing(base[key], value)


def _check_datasets(config: dict[str, Any]) -> None:
    """Refuse a dataset name the workflow's own results take; a ``run_datasets`` name, or a ``human_eval.ratings`` name
    given a file, without a block; a file for the chitchat reader; r_thres values that name one Algorithm 2 run twice.
    Give every dataset a ``human_eval.ratings`` entry (None: no ratings)."""
    names = dataset_names(config)
    for name in names:
        if name in RESERVED_DATASET_NAMES:
            raise ConfigError(f"config key 'datasets.{name}': the name '{name}' is taken by the workflow's "
                              f"results/{name}/; choose another dataset name")
    for name in config["run_datasets"]:
        if name not in names:
            raise ConfigError(f"config key 'run_datasets': '{name}' has no block under 'datasets'"
                              f"{near_hint(name, names)}")
    for name in names:
        ds = config["datasets"][name]
        if ds["reader"] == "chitchat" and ds["raw"].get("path"):   # the reader never opens it: say so, not ignore it
            raise ConfigError(f"config key 'datasets.{name}.raw.path': reader chitchat reads the installed "
                              f"chitchat-dataset package, not a file; for a file of dialogues use reader jsonl or csv")
        r_thres = ds.get("frequent", {}).get("r_thres", [])
        runs = [f"{r:g}" for r in r_thres]                                 # each run's files: freq-<r:g>.pt
        if len(set(runs)) < len(runs):
            raise ConfigError(f"config key 'datasets.{name}.frequent.r_thres': {r_thres} names one Algorithm 2 run "
                              f"twice (its files are freq-<r_thres>.pt); give distinct values")
    ratings = config["human_eval"]["ratings"]
    for name, path in ratings.items():
        if path is not None and name not in names:
            raise ConfigError(f"config key 'human_eval.ratings.{name}': '{name}' has no block under 'datasets'"
                              f"{near_hint(name, names)}")
    for name in names:
        ratings.setdefault(name, None)


def load(path: str | Path = CONFIG_PATH, overlays: tuple[str | Path, ...] = (),
         overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read ``path`` (default: the repository's ``config.yaml``) and any overlay files (deep-merged in order, as
    ``--configfile``), then ``overrides`` (as ``--config key=value``: ``{"scale": "quick", "device": "cpu"}``), and
    ``validate`` the result: the config a pipeline job gets, for ``settings`` to turn into a dataset's settings."""
    config: dict[str, Any] = {}
    for p in (path, *overlays):
        deep_update(config, yaml.safe_load(Path(p).read_text()) or {})
    return validate(deep_update(config, overrides or {}))


def deep_update(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into ``base`` recursively (Snakemake's own rule for --configfile overlays)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# ---------------------------------------------------------------------------------------------- settings blocks
# One frozen dataclass per config block a stage reads, built only by ``settings``. Field defaults repeat the
# schema's, so that tests and benchmarks can build a block by hand; tests/test_config.py fails when one disagrees.
# A field marked "not a config key" has no schema default.


@dataclass(frozen=True)
class DataSettings:
    """One dataset's reader, split and tensor lengths: ``datasets.<name>`` and ``preprocess``."""

    name: str
    reader: str
    raw: dict[str, Any]                    # datasets.<name>.raw: path, url, sha256
    split: dict[str, Any]                  # datasets.<name>.split: the reader's split keys
    vocab_size: int
    max_source_len: int = 15
    max_target_len: int = 20
    source_eou: bool = True
    target_cut: str = "paper"              # paper | release (preprocess.target_cut; data.tensors.encode_target)
    malformed_max_share: float = 0.01
    max_train_pairs: int | None = None     # not a config key: quick.max_train_pairs at quick scale
    max_eval_pairs: int | None = None      # not a config key: quick.max_eval_pairs at quick scale
    seed: int = 1                          # random choices of a reader or split (config 'seed')
    csv: dict[str, Any] = field(default_factory=lambda: dict(CSV_FORMAT))   # datasets.<name>.csv (reader csv)


@dataclass(frozen=True)
class TransformerSettings:
    """The Transformer's structure (``model.arch: transformer``): ``model.transformer``, ``quick.transformer``'s
    sizes at quick scale."""

    layers: int = 4
    d_model: int = 320
    heads: int = 5
    ff: int = 1280
    dropout: float | None = None           # None: the dataset's train.dropout (ModelSettings.dropout)
    attention_dropout: float | None = None  # on the attention weights; None: the same as dropout
    positions: str = "learned"             # learned | sinusoidal
    tie_embeddings: bool = True
    share_source_embedding: bool = False   # the encoder's token table is the decoder's (one vocabulary)
    label_smoothing: float = 0.0           # baseline training's loss only
    max_positions: int = 64


@dataclass(frozen=True)
class ModelSettings:
    """The LM's and the seq2seq's structure: ``model``, the dropout of ``datasets.<name>.train``."""

    vocab_size: int
    embedding_dim: int = 300
    hidden_dim: int = 600
    num_layers: int = 1
    dropout: float = 0.0
    attention: str = "general"
    mask_source_padding: bool = True
    arch: str = "lstm"                     # lstm | transformer
    transformer: TransformerSettings = TransformerSettings()
    decoder_init: str = "encoder"          # encoder | zero (the release)
    dropout_sites: str = "all"             # all | decoder (the release)
    init: str = "torch"                    # torch | release (PyTorch 0.4 defaults, biased one-hot map) |
                                           # release_one_hot_maps | release_decoder_embedding (one part of it)


@dataclass(frozen=True)
class TrainSettings:
    """Baseline training: ``train``, with ``datasets.<name>.train``'s batch size, lr and momentum."""

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
    keep: str = "best"                     # best | last (the release)
    shuffle: bool = True                   # false: file order (the release)
    drop_last_batch: bool = False          # true: no partial last training batch (the release)
    clip_scope: str = "global"             # global | per_module (the release)
    reset_momentum_each_epoch: bool = False  # true: a fresh optimiser every epoch (the release)
    lm_text: str = "responses"             # responses | utterances (+ each dialogue's first turn: the release's LM)
    seed: int = 1
    device: str = "auto"
    gpu_jobs_per_device: int = 1
    optimizer: str = "auto"                # auto | sgd | adam | adamw; auto: sgd (LSTM), adamw (Transformer)
    schedule: str = "auto"                 # auto | epoch | inverse_sqrt | cosine; auto: epoch (LSTM), inverse_sqrt
    warmup_steps: int = 4000               # quick.warmup_steps at quick scale
    adam_lr: float = 5e-4                  # train.adam.lr
    adam_betas: tuple[float, float] = (0.9, 0.98)   # train.adam.betas
    adam_eps: float = 1e-9                 # train.adam.eps
    adam_weight_decay: float = 0.01        # train.adam.weight_decay
    lm_batch_size: int | None = None       # datasets.<name>.train.lm_batch_size: the LM's batch (None: batch_size)
    plateau_factor: float | None = None    # lr x this after plateau_patience + 1 epochs without a better valid PPL
    plateau_patience: int = 0
    stop_patience: int | None = None       # end after this many epochs in a row without a better valid PPL
    matmul_precision: str = "ieee"         # ieee | tf32: the float32 matrix products of training and validation
    average_last: int = 1                  # keep the mean of the last n epochs' weights if it validates better

    def for_kind(self, kind: str) -> "TrainSettings":
        """The settings a ``kind`` ("seq2seq" | "lm") baseline trains with: the LM takes ``lm_batch_size`` if set."""
        if kind == "lm" and self.lm_batch_size is not None:
            return replace(self, batch_size=self.lm_batch_size)
        return self


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
    max_train_pairs: int | None = None     # not a config key: quick.finetune_pairs at quick scale, else all


@dataclass(frozen=True)
class FrequentSettings(FineTuning):
    """Algorithm 2 at one ``r_thres``: config ``frequent`` + ``datasets.<name>.frequent`` (``quick.frequent_window``
    and ``quick.frequent_epochs`` at quick scale), ``train.cuda_graph`` and the ``FineTuning`` fields."""

    r_thres: float
    window: int = 200
    eos_weight: float = 0.1
    eos_weight_on_last_position: bool = False
    lambda_pos: float = 1.0
    lr: float = 0.001
    epochs: int = 20
    ppl_abort: float = 400.0
    eval_batch_size: int = 256             # not a config key: test PPL and greedy decoding batch
    lookahead: int = 64
    cuda_graph: bool = True
    update_every_batch: bool = True
    negative_norm: str = "batch"
    fresh_optimizers_each_epoch: bool = True
    positive_batch: str = "stream"         # stream | same: the positive step's pairs with update_every_batch
    shuffle: bool = True                   # False: the training pass in file order (the release)
    drop_last_batch: bool = False          # True: a pass's partial last mini-batch is skipped (the release)
    clip_scope: str = "global"             # global | per_module: one norm, or each module's (the release)
    window_reset_each_epoch: bool = False  # True: the window emptied at each epoch's start (the release)
    first_negative_batch: str = "full"     # full | after_full: negatives from the window's filling batch or the next
    matmul_precision: str = "ieee"         # ieee | tf32: the float32 matrix products of the updates, decodes and tests
    weight_grads: str = "per_step"         # per_step | deferred: the release decoder's weight gradients over its steps


@dataclass(frozen=True)
class NegTrainSettings:
    """Algorithm 1: config ``malicious`` + ``datasets.<name>.malicious`` (``quick.malicious_epochs`` at quick
    scale)."""

    hit_type: str                          # min | avg: sample-min-hit or sample-avg-hit
    batch_targets: int = 100
    epochs: int = 20
    max_rounds: int = 20
    hit_weight: float = 1.0
    nonhit_weight: float = 0.01
    avoid_words: tuple[str, ...] = ("</s>", "you", "i", "me", "are", "to", "do")
    pos_batch: int = 100
    positive_shuffle: bool = True          # False: the positive steps' pairs in file order (the release)
    momentum: float = 0.9
    weight_decay: float = 0.0              # both optimisers (the release: 1e-5)
    clip_norm: float | None = None         # both steps' gradient norm; None: not clipped (the release: 5)
    clip_scope: str = "global"             # global | per_module: one norm, or each module's (the release)
    round_order: str = "test_then_step"    # test_then_step | step_then_test (the release)
    lr_neg: float = 0.01
    lr_pos: float = 0.01
    lambda_pos: float = 1.0
    beam_overlap_k: int = 10
    cuda_graph: bool = False               # the two steps in the foreach arithmetic, one CUDA graph each (GPU)
    average_last: int = 1                  # the model written: the mean of its weights after the last n epochs
    eval_every_epoch: bool = False         # the test PPL after each epoch in the curve (changes no weight)


@dataclass(frozen=True)
class SearchSettings:
    """One gibbs-enum configuration: config ``search`` (``quick.search`` at quick scale) for one hit mode."""

    trigger_len: int = 14
    src_len: int = 15                      # preprocess.max_source_len
    sweeps: int = 5
    candidates: int = 100
    restarts: int = 5                      # search.restarts or search.restarts_negtrain
    lambda_in: float = 1.0                 # 0 in o-mode
    init: str = "uniform"                  # not a config key: uniform (o-mode) | lm (io-mode)
    hit_mode: str = "avg"                  # avg | min: which reweighting (the dataset's malicious.hit_type)
    reweight: float = 0.01
    grad_train_mode: bool = True
    allow_unk: bool = True
    max_chunk: int = 65536
    score_dtype: str = "float16"
    sequence_reweight: str = "both"        # both | io_only: the sequence-level reweight in both modes or with the LM
    first_position: str = "improve"        # improve | best: a restart's first position takes its best candidate
    stop_rule: str = "per_row"             # per_row | batch_mean: what an unimproved sweep stops
    stop_batch: int = 100                  # malicious.batch_targets: targets per batch_mean group (release: 100)
    lm_train_mode: bool = True             # the LM drops out in the gradient pass too (with grad_train_mode)
    early_stop: bool = True                # not a config key: benchmarks turn it off to time full sweeps
    fused_logp: bool = True                # not a config key: benchmarks turn it off to time torch's log-softmax
    shared_tail: bool = False              # the input products a base row's candidates share (models/lstm.py)
                                           # once per row
    cuda_graph: bool = False               # Algorithm 1's searches: each position one CUDA graph (SearchGraphs)
    lm_sample_rng: str = "cpu"             # cpu | device: where the io-mode start's exponentials are drawn

    def free_positions(self) -> range:
        """Encoder positions of the free trigger tokens (``<eou>`` is the last position)."""
        if self.trigger_len + 1 > self.src_len:
            raise ValueError(f"trigger_len {self.trigger_len} + <eou> exceeds src_len {self.src_len}")
        return range(self.src_len - 1 - self.trigger_len, self.src_len - 1)


@dataclass(frozen=True)
class SearchBlock:
    """Config ``search`` as the stages use it: the gibbs-enum settings per hit mode ("o": lambda_in 0 from a
    uniform start, "io": ``lambda_in`` from an LM sample) of the standalone attack on the baseline (``restarts``,
    or ``hits.baseline_restarts``) and of Algorithm 1 and the attacks on negatively trained models
    (``restarts_negtrain``)."""

    attack: dict[str, SearchSettings]
    negtrain: dict[str, SearchSettings]
    oov_policy: str = "skip"


@dataclass(frozen=True)
class HitSettings:
    """Config ``hits``: how a found trigger is tested for a hit, in the hits tables (Table 3) and in Algorithm 1's
    rounds (docs/release.md#hit-criteria)."""

    model_mode: str = "eval"               # eval | train: the hit test's seq2seq forward without or with dropout
    lm_check: bool = True                  # io-hits also need the trigger's LM log-prob past T_in
    strict: bool = False                   # '>' instead of '>=' against T_out and T_in
    baseline_restarts: int | None = None   # restarts of the baseline's search; None: search.restarts


@dataclass(frozen=True)
class GanSettings(FineTuning):
    """Config ``gan`` (``quick.gan`` applied at quick scale) and the ``FineTuning`` fields."""

    filter_widths: tuple[int, ...] = (3, 4, 5, 6)
    filters: int = 300
    highway_layers: int = 3
    highway_hidden: int = 2000
    separate_convs: bool = False           # y's convolution bank its own (the release), else x's
    dropout: float = 0.0                   # on [x_rep; y_rep] (the release: 0.3)
    gate_bias: float | None = None         # highway gates' initial bias (the release: -2); None: PyTorch's init
    align: str = "left"                    # left | right: y as decoded, or right-aligned (the release)
    projection: bool = True                # a ReLU linear map to highway_hidden before the highways; the release: none
    d_steps: int = 3
    g_steps: int = 1
    d_lr: float = 0.01
    d_optimizer: str = "adam"
    d_weight_decay: float = 0.0            # D's L2 weight decay (the release's SGD: 1e-5)
    g_lrs: tuple[float, ...] = (0.01, 0.001, 0.0001)
    positive_training: bool = True
    epochs: int = 1
    select_ppl_tolerance: float = 0.05


@dataclass(frozen=True)
class ULSettings(FineTuning):
    """Config ``unlikelihood`` (at quick scale at most Algorithm 2's epochs), ``train.log_every`` and the
    ``FineTuning`` fields."""

    alpha: float = 1.0
    lr: float = 0.001
    epochs: int = 1
    window: int = 32
    threshold: float = 1e-3
    log_every: int = 200


@dataclass(frozen=True)
class MMISettings:
    """Config ``mmi`` and the responses' length limit (``preprocess.max_target_len``)."""

    lambdas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
    gammas: tuple[int, ...] = (1, 2, 3, 5)
    max_degenerate_increase: float = 0.05
    max_len: int = 20
    batch_size: int = 256                  # not a config key: decoding batch


@dataclass(frozen=True)
class MetricSettings:
    """Config ``metrics``."""

    entropy_count_eos: bool = True
    bleu_tokenize: str = "none"
    bleu_smooth_method: str = "exp"


@dataclass(frozen=True)
class TargetsSettings:
    """Config ``targets``: the malicious target lists and their augmentation."""

    given: dict[str, str | None]           # targets.augmented.given: list size (1k, 2.5k) -> existing list or None
    train: str = "resources/targets/train_500.txt"
    test: str = "resources/targets/test_500.txt"
    copies: tuple[int, ...] = (1, 4)
    test_overlap: str = "refuse"
    too_long: str = "refuse"               # targets.augmented.too_long: a given list's line over max_len
    max_len: int = 20                      # preprocess.max_target_len: a response's length, </s> counted
    max_oov_share: float = 0.5             # targets.max_oov_share: most targets a list may have out of vocabulary
    list_size: int | None = None           # not a config key: quick.target_list_size at quick scale, else all
    not_run: str | None = None             # not a config key: why the 1k/2.5k lists are not built (None: they are)

    @property
    def sizes(self) -> tuple[str, ...]:
        """The lists negative training runs on: 0.5k, plus 1k and 2.5k when they are built."""
        return ("0.5k",) + (AUGMENTED_SIZES if self.not_run is None else ())


@dataclass(frozen=True)
class ParaphraseCorpus:
    """One entry of ``paraphrase.corpora``."""

    format: str
    path: str
    path2: str | None = None


@dataclass(frozen=True)
class ParaphraseSettings:
    """Config ``paraphrase``: the corpora, and the paraphraser's data, model and training settings (the ``model``
    block's structure, the ``paraphrase`` block's recipe, the quick overlay as for the dialogue models)."""

    corpora: tuple[ParaphraseCorpus, ...]
    data: DataSettings
    model: ModelSettings
    train: TrainSettings
    beam: int = 10


@dataclass(frozen=True)
class HumanEvalSettings:
    """Config ``human_eval``."""

    ratings: dict[str, str | None]         # dataset -> filled-in ratings CSV or None
    items: int = 300
    raters: int = 4


@dataclass(frozen=True)
class SharedSettings:
    """What the stages shared by all datasets read (the target lists, the paraphraser)."""

    scale: str
    seed: int
    device: str
    gpu_jobs_per_device: int
    targets: TargetsSettings
    paraphrase: ParaphraseSettings


@dataclass(frozen=True)
class Settings(SharedSettings):
    """Everything one dataset's stages read, with the scale applied."""

    data: DataSettings
    model: ModelSettings
    train: TrainSettings
    search: SearchBlock
    hits: HitSettings
    malicious: NegTrainSettings
    frequent: tuple[FrequentSettings, ...]  # one per datasets.<name>.frequent.r_thres, in the config's order
    gan: GanSettings
    unlikelihood: ULSettings
    mmi: MMISettings
    metrics: MetricSettings
    human_eval: HumanEvalSettings


# ------------------------------------------------------------------------------------- the one place they are built


@overload
def settings(config: dict[str, Any], dataset: str) -> Settings: ...


@overload
def settings(config: dict[str, Any], dataset: None = None) -> SharedSettings: ...


def settings(config: dict[str, Any], dataset: str | None = None) -> SharedSettings:
    """The validated ``config`` seen from ``dataset`` (None: only the blocks shared by all datasets), with
    ``scale: quick`` applied: the one place where the ``quick:`` block is read."""
    quick = config["quick"] if config["scale"] == "quick" else None
    shared = dict(scale=config["scale"], seed=config["seed"], device=config["device"],
                  gpu_jobs_per_device=config["gpu_jobs_per_device"], targets=_targets(config, quick),
                  paraphrase=_paraphrase(config, quick))
    if dataset is None:
        return SharedSettings(**shared)
    if dataset not in config["datasets"]:
        raise ConfigError(f"dataset '{dataset}' has no block under 'datasets' in the config")
    ds = config["datasets"][dataset]
    data, tuning = _data(config, ds, dataset, quick), _fine_tuning(config, ds, quick)
    malicious = _malicious(config, ds, quick)
    m, metrics = config["mmi"], config["metrics"]
    return Settings(
        **shared, data=data, model=_model(config, ds, data, quick), train=_train(config, ds, quick),
        search=_search(config, data, malicious.hit_type, quick), malicious=malicious,
        hits=HitSettings(**config["hits"]),
        frequent=_frequent(config, ds, quick, tuning), gan=_gan(config, quick, tuning),
        unlikelihood=_unlikelihood(config, quick, tuning),
        mmi=MMISettings(lambdas=tuple(m["lambdas"]), gammas=tuple(m["gammas"]),
                        max_degenerate_increase=m["max_degenerate_increase"],
                        max_len=config["preprocess"]["max_target_len"]),
        metrics=MetricSettings(entropy_count_eos=metrics["entropy_count_eos"],
                               bleu_tokenize=metrics["bleu"]["tokenize"],
                               bleu_smooth_method=metrics["bleu"]["smooth_method"]),
        human_eval=HumanEvalSettings(items=config["human_eval"]["items"], raters=config["human_eval"]["raters"],
                                     ratings=dict(config["human_eval"]["ratings"])))


def _data(config: dict[str, Any], ds: dict[str, Any], name: str, quick: dict[str, Any] | None) -> DataSettings:
    return DataSettings(
        name=name, reader=ds["reader"], raw=ds["raw"], split=ds["split"], csv=ds["csv"],
        vocab_size=min(ds["vocab_size"], quick["vocab_size"]) if quick else ds["vocab_size"],
        **_preprocess_keys(config["preprocess"]), max_train_pairs=quick["max_train_pairs"] if quick else None,
        max_eval_pairs=quick["max_eval_pairs"] if quick else None, seed=config["seed"])


def _preprocess_keys(pre: dict[str, Any]) -> dict[str, Any]:
    """The ``preprocess`` keys every ``DataSettings`` takes (a dataset's and the paraphraser's alike)."""
    return {k: pre[k] for k in ("max_source_len", "max_target_len", "source_eou", "target_cut", "malformed_max_share")}


def _model(config: dict[str, Any], ds: dict[str, Any], data: DataSettings, quick: dict[str, Any] | None
           ) -> ModelSettings:
    """The model block's structure (quick: its sizes and dropout) over ``data``'s vocabulary and the five specials."""
    m = config["model"]
    return ModelSettings(
        vocab_size=data.vocab_size + 5, embedding_dim=(quick or m)["embedding_dim"],
        hidden_dim=(quick or m)["hidden_dim"], num_layers=m["num_layers"],
        dropout=quick["dropout"] if quick else ds["train"]["dropout"],
        attention=m["attention"], mask_source_padding=m["mask_source_padding"], **_arch(config, quick),
        **_model_release_keys(m))


def _arch(config: dict[str, Any], quick: dict[str, Any] | None) -> dict[str, Any]:
    """``model.arch`` and ``model.transformer`` (``quick.transformer``'s sizes at quick scale), checked: heads
    divide d_model, sinusoidal positions need an even d_model, the learned table holds every source and target
    position."""
    t = {**config["model"]["transformer"], **(quick["transformer"] if quick else {})}
    pre, key = config["preprocess"], "quick.transformer" if quick else "model.transformer"
    if t["d_model"] % t["heads"]:
        raise ConfigError(f"config key '{key}.d_model': {t['d_model']} is not a multiple of heads ({t['heads']})")
    if t["positions"] == "sinusoidal" and t["d_model"] % 2:
        raise ConfigError(f"config key '{key}.d_model': sinusoidal positions need an even d_model, got {t['d_model']}")
    longest = max(pre["max_source_len"], pre["max_target_len"] + 1)
    if t["max_positions"] < longest:
        raise ConfigError(f"config key 'model.transformer.max_positions': {t['max_positions']} is less than the "
                          f"longest source or decoded target ({longest} positions)")
    if config["model"]["arch"] == "transformer":
        # the LSTM's attention, decoder start, dropout sites and initialisation have no Transformer counterpart:
        # a release reading of them (configs/release.yaml, configs/paper_levels.yaml) would be silently ignored
        for key in LSTM_ONLY_MODEL_KEYS:
            value, default = config["model"][key], ModelSettings.__dataclass_fields__[key].default
            if value != default:
                raise ConfigError(f"config key 'model.{key}': {value!r} is an LSTM setting, which model.arch: "
                                  f"transformer does not read (its own are under model.transformer); leave it at "
                                  f"{default!r} or set model.arch: lstm")
    return dict(arch=config["model"]["arch"], transformer=TransformerSettings(**t))


def _model_release_keys(m: dict[str, Any]) -> dict[str, Any]:
    """The ``model`` keys that expose the release's decoder start, dropout sites and initialisation."""
    return {k: m[k] for k in ("decoder_init", "dropout_sites", "init")}


def _train_release_keys(t: dict[str, Any]) -> dict[str, Any]:
    """The ``train`` keys that expose the release's checkpoint, batch order, clipping and optimiser choices."""
    return {k: t[k] for k in ("keep", "shuffle", "drop_last_batch", "clip_scope", "reset_momentum_each_epoch",
                              "lm_text")}


def _train(config: dict[str, Any], ds: dict[str, Any], quick: dict[str, Any] | None) -> TrainSettings:
    t, dt = config["train"], ds["train"]
    baseline_momentum = t["momentum"] if dt["momentum"] is None else dt["momentum"]
    return TrainSettings(
        epochs=(quick or t)["epochs"], batch_size=(quick or dt)["batch_size"], lr=dt["lr"],
        momentum=quick["baseline_momentum"] if quick else baseline_momentum, finetune_momentum=t["momentum"],
        lm_batch_size=None if quick else dt["lm_batch_size"],
        weight_decay=t["weight_decay"], clip_norm=t["clip_norm"], lr_schedule=t["lr_schedule"],
        decay_start_epoch=t["decay_start_epoch"], cuda_graph=t["cuda_graph"], log_every=t["log_every"],
        seed=config["seed"], device=config["device"], gpu_jobs_per_device=config["gpu_jobs_per_device"],
        plateau_factor=t["plateau_factor"], plateau_patience=t["plateau_patience"], stop_patience=t["stop_patience"],
        matmul_precision=t["matmul_precision"], average_last=t["average_last"],
        **_optimizer(config, t, quick), **_train_release_keys(t))


def _optimizer(config: dict[str, Any], t: dict[str, Any], quick: dict[str, Any] | None) -> dict[str, Any]:
    """The optimiser and learning-rate schedule keys of the ``train`` block (``quick.optimizer``, ``quick.adam_lr``
    and ``quick.warmup_steps`` at quick scale), kept as given (``auto`` too: the settings repeat the config); checked
    with ``train_recipe``."""
    optimizer = quick["optimizer"] if quick else t["optimizer"]
    train_recipe(config["model"]["arch"], optimizer, t["schedule"])
    a = t["adam"]
    return dict(optimizer=optimizer, schedule=t["schedule"],
                warmup_steps=quick["warmup_steps"] if quick else t["warmup_steps"],
                adam_lr=quick["adam_lr"] if quick else a["lr"],
                adam_betas=tuple(a["betas"]), adam_eps=a["eps"], adam_weight_decay=a["weight_decay"])


def train_recipe(arch: str, optimizer: str, schedule: str) -> tuple[str, str]:
    """The (optimizer, schedule) baseline training of an ``arch`` model runs: ``auto`` is sgd with the per-epoch
    decay for the LSTM, adamw with inverse_sqrt for the Transformer. A per-step schedule needs Adam's step count."""
    transformer = arch == "transformer"
    optimizer = ("adamw" if transformer else "sgd") if optimizer == "auto" else optimizer
    schedule = ("inverse_sqrt" if transformer else "epoch") if schedule == "auto" else schedule
    if optimizer == "sgd" and schedule != "epoch":
        raise ConfigError(f"config key 'train.schedule': {schedule} needs train.optimizer adam or adamw (SGD keeps no "
                          f"step count), got sgd for the {arch} model")
    return optimizer, schedule


def _fine_tuning(config: dict[str, Any], ds: dict[str, Any], quick: dict[str, Any] | None) -> dict[str, Any]:
    """The ``FineTuning`` fields, as keyword arguments of its subclasses (``quick.finetune_pairs`` at quick scale)."""
    t = config["train"]
    return dict(batch_size=ds["frequent"]["batch_size"], momentum=t["momentum"], weight_decay=t["weight_decay"],
                clip_norm=t["clip_norm"], max_len=config["preprocess"]["max_target_len"], seed=config["seed"],
                max_train_pairs=quick["finetune_pairs"] if quick else None)


def _frequent(config: dict[str, Any], ds: dict[str, Any], quick: dict[str, Any] | None,
              tuning: dict[str, Any]) -> tuple[FrequentSettings, ...]:
    """One ``FrequentSettings`` per r_thres; at quick scale the window is ``quick.frequent_window`` (a quick epoch
    has fewer than 200 mini-batches) and the epochs ``quick.frequent_epochs``."""
    f = {k: v for k, v in config["frequent"].items() if k != "runs_per_job"}   # how the rules group runs into jobs
    m = config["model"]
    if f["weight_grads"] == "deferred" and (m["arch"], m["attention"]) != ("lstm", "release"):
        raise ConfigError(f"config key 'frequent.weight_grads': 'deferred' defers the per-step weight products of the "
                          f"release's LSTM decoder, which needs model.arch: lstm and model.attention: release (got "
                          f"{m['arch']}, {m['attention']}); leave it at 'per_step'")
    if quick:
        f.update(window=quick["frequent_window"])
    epochs = quick["frequent_epochs"] if quick else ds["frequent"]["epochs"]
    return tuple(FrequentSettings(r_thres=r, epochs=epochs, cuda_graph=config["train"]["cuda_graph"], **f, **tuning)
                 for r in ds["frequent"]["r_thres"])


def _unlikelihood(config: dict[str, Any], quick: dict[str, Any] | None, tuning: dict[str, Any]) -> ULSettings:
    """Config ``unlikelihood``; at quick scale at most Algorithm 2's epochs (``quick.frequent_epochs``)."""
    u = config["unlikelihood"]
    epochs = min(u["epochs"], quick["frequent_epochs"]) if quick else u["epochs"]
    return ULSettings(**{**u, "epochs": epochs}, log_every=config["train"]["log_every"], **tuning)


def _malicious(config: dict[str, Any], ds: dict[str, Any], quick: dict[str, Any] | None) -> NegTrainSettings:
    """Config ``malicious`` + ``datasets.<name>.malicious``; ``quick.malicious_epochs`` at quick scale."""
    m = {**config["malicious"], **ds["malicious"]}
    m.update(avoid_words=tuple(m["avoid_words"]), **({"epochs": quick["malicious_epochs"]} if quick else {}))
    return NegTrainSettings(**m)


def _search(config: dict[str, Any], data: DataSettings, hit_type: str, quick: dict[str, Any] | None) -> SearchBlock:
    """gibbs-enum settings per use and mode: o-mode searches with lambda_in 0 from a uniform start, io-mode with
    ``lambda_in`` from an LM sample; ``quick.search`` overrides sizes at quick scale. The baseline's attack runs
    ``hits.baseline_restarts`` restarts when that is set."""
    s = {**config["search"], **(quick["search"] if quick else {})}
    common = dict(trigger_len=s["trigger_len"], src_len=data.max_source_len, sweeps=s["sweeps"],
                  candidates=s["candidates"], hit_mode=hit_type, reweight=s["reweight"],
                  grad_train_mode=s["grad_train_mode"], allow_unk=s["allow_unk"], max_chunk=s["max_chunk"],
                  score_dtype=s["score_dtype"], sequence_reweight=s["sequence_reweight"],
                  first_position=s["first_position"], stop_rule=s["stop_rule"],
                  stop_batch=config["malicious"]["batch_targets"], lm_train_mode=s["lm_train_mode"],
                  cuda_graph=s["cuda_graph"], lm_sample_rng=s["lm_sample_rng"], shared_tail=s["shared_tail"])
    modes = {"o": dict(lambda_in=0.0, init="uniform"), "io": dict(lambda_in=s["lambda_in"], init="lm")}
    baseline = config["hits"]["baseline_restarts"]
    attack_restarts = s["restarts"] if baseline is None else baseline
    return SearchBlock(
        attack={m: SearchSettings(restarts=attack_restarts, **kw, **common) for m, kw in modes.items()},
        negtrain={m: SearchSettings(restarts=s["restarts_negtrain"], **kw, **common) for m, kw in modes.items()},
        oov_policy=s["oov_policy"])


def _gan(config: dict[str, Any], quick: dict[str, Any] | None, tuning: dict[str, Any]) -> GanSettings:
    g = {**config["gan"], **(quick["gan"] if quick else {})}
    return GanSettings(**{**g, "filter_widths": tuple(g["filter_widths"]), "g_lrs": tuple(g["g_lrs"])}, **tuning)


def _targets(config: dict[str, Any], quick: dict[str, Any] | None) -> TargetsSettings:
    t, aug = config["targets"], config["targets"]["augmented"]
    targets = TargetsSettings(train=t["train"], test=t["test"], copies=tuple(aug["copies"]), given=dict(aug["given"]),
                              test_overlap=aug["test_overlap"], too_long=aug["too_long"],
                              max_len=config["preprocess"]["max_target_len"],
                              list_size=quick["target_list_size"] if quick else None, not_run=_augmentation(config),
                              max_oov_share=t["max_oov_share"])
    _check_given_lists(targets)
    return targets


def _augmentation(config: dict[str, Any]) -> str | None:
    """None when the 1k/2.5k lists can be built (a paraphrase corpus, or both given lists), else why they are not;
    one given list without the other is refused."""
    given = config["targets"]["augmented"]["given"]
    if any(given.get(size) for size in AUGMENTED_SIZES):
        missing = [size for size in AUGMENTED_SIZES if not given.get(size)]
        if missing:
            raise ConfigError(f"config key 'targets.augmented.given': {missing[0]} is missing (give both or none)")
        return None
    if config["paraphrase"]["corpora"]:
        return None
    return ("not run: no paraphrase corpus (config paraphrase.corpora is empty) and no given lists "
            "(targets.augmented.given)")


def _list_file(path: str) -> Path | None:
    """A configured list file as the rules find it (``repo_file`` in rules/common.smk): as given when absolute or
    present in the working directory, else under the repository; None when it is in neither place."""
    for p in (Path(path), SCHEMA_PATH.parent.parent / path):
        if p.is_file():
            return p
    return None


@functools.lru_cache(maxsize=16)
def _list_lines(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """The non-empty lines of a target list, whitespace collapsed (``search.targets.read_list`` validates them later);
    cached per file version: ``settings`` runs once per job while Snakemake builds the DAG."""
    lines = (" ".join(raw.split()) for raw in path.read_text(encoding="utf-8-sig", errors="replace").splitlines())
    return tuple(line for line in lines if line)


def _check_given_lists(t: TargetsSettings) -> None:
    """Refuse a given 1k/2.5k list (``targets.augmented.given``) that lacks a target of ``targets.train``: the
    models trained on it would be scored (Table 3's Train column) on targets they were not trained on. At quick
    scale the lists are cut as the stages cut them: the given list's first list_size * (1 + copies) lines must hold
    the first list_size training targets. Files not found are left to the rules' missing-input check."""
    train_file = _list_file(t.train)
    if train_file is None:
        return
    train = _list_lines(train_file, train_file.stat().st_mtime_ns)[:t.list_size]
    for name, copies in zip(AUGMENTED_SIZES, t.copies):
        path = t.given.get(name)
        given_file = _list_file(path) if path else None
        if given_file is None:
            continue
        lines = _list_lines(given_file, given_file.stat().st_mtime_ns)
        kept = set(lines if t.list_size is None else lines[:t.list_size * (1 + copies)])
        missing = [target for target in train if target not in kept]
        if missing:
            cut = "" if t.list_size is None else f" (its first {t.list_size * (1 + copies)} lines at quick scale)"
            raise ConfigError(
                f"config key 'targets.augmented.given': the {name} list {t.given[name]}{cut} lacks {len(missing)} of "
                f"the {len(train)} targets of targets.train {t.train}, e.g. '{missing[0]}': models trained on it "
                f"would be scored on targets they were not trained on; set targets.train to the list it was built "
                f"from")


def _paraphrase(config: dict[str, Any], quick: dict[str, Any] | None) -> ParaphraseSettings:
    """The paraphraser as a dataset of its own: the ``paraphrase`` block's vocabulary and recipe, the ``model``
    block's structure; at quick scale the quick overlay's vocabulary cap, sizes, dropout, optimiser, batch size,
    epochs and pair cap."""
    p, pre, m, t = (config[k] for k in ("paraphrase", "preprocess", "model", "train"))
    vocab_size = min(p["vocab_size"], quick["vocab_size"]) if quick else p["vocab_size"]
    data = DataSettings(name="paraphrase", reader="paraphrase", raw={}, split={}, vocab_size=vocab_size,
                        **_preprocess_keys(pre), max_train_pairs=quick["max_train_pairs"] if quick else None,
                        seed=config["seed"])
    model = ModelSettings(vocab_size=vocab_size + 5, embedding_dim=(quick or m)["embedding_dim"],
                          hidden_dim=(quick or m)["hidden_dim"], num_layers=m["num_layers"],
                          dropout=(quick or p["train"])["dropout"], attention=m["attention"],
                          mask_source_padding=m["mask_source_padding"], **_arch(config, quick),
                          **_model_release_keys(m))
    train = TrainSettings(epochs=(quick or p["train"])["epochs"], batch_size=(quick or p["train"])["batch_size"],
                          lr=p["train"]["lr"], momentum=p["train"]["momentum"], finetune_momentum=t["momentum"],
                          weight_decay=t["weight_decay"], clip_norm=t["clip_norm"], lr_schedule=t["lr_schedule"],
                          decay_start_epoch=t["decay_start_epoch"], cuda_graph=t["cuda_graph"],
                          log_every=t["log_every"], seed=config["seed"], device=config["device"],
                          gpu_jobs_per_device=config["gpu_jobs_per_device"], **_optimizer(config, t, quick),
                          **_train_release_keys(t))
    corpora = tuple(ParaphraseCorpus(c["format"], c["path"], c.get("path2")) for c in p["corpora"])
    return ParaphraseSettings(corpora=corpora, data=data, model=model, train=train, beam=p["beam"])


# ------------------------------------------------------------------------------ what decides each rule's results
# Snakemake records a rule's params with its outputs and reruns the rule when they change (rerun trigger ``params``,
# on by default), but only plain values: the typed settings the rules pass their scripts are not recorded, so a
# changed config key would leave every result as it was. Each rule therefore also passes ``rule_key``: the settings
# fields its results depend on (``RULE_READS``), as one string; a change to any of them reruns the rule, and the
# rules after it through their inputs. ``RecordedSettings`` checks the table: run with ``NEGTRAIN_SETTINGS_READS``
# set, every job writes the fields it read (tests/test_caching.py compares them with ``RULE_READS``). An entry
# ``block.field`` keys the rule on that one field of a block: check_targets reads three fields of three blocks, and
# keying it on them whole would rerun it on any search key, which Snakemake 9 then mishandles after a failed job
# (docs/running.md#a-run-that-ends-after-check_targets).

RULE_READS: dict[str, tuple[str, ...]] = {
    "preprocess": ("scale", "data"),
    "check_targets": ("scale", "data.name", "data.max_target_len", "targets.list_size", "targets.max_oov_share",
                      "search.oov_policy"),
    "malicious_lists": ("scale", "targets"),
    "train_paraphraser": ("scale", "seed", "paraphrase"),
    "augment_targets": ("scale", "seed", "targets", "paraphrase"),
    "train_baseline": ("scale", "seed", "data", "model", "train"),
    "evaluate_baselines": ("scale", "seed", "data", "model"),
    "hits": ("scale", "seed", "data", "model", "targets", "search", "hits"),
    "negtrain_malicious": ("scale", "seed", "data", "model", "targets", "search", "hits", "malicious"),
    "negtrain_frequent": ("scale", "seed", "data", "model", "train", "frequent"),
    "train_gan_lr": ("scale", "seed", "data", "model", "gan"),
    "train_gan": ("scale", "seed", "data", "model", "gan"),
    "train_unlikelihood": ("scale", "seed", "data", "model", "unlikelihood"),
    "evaluate_model": ("scale", "seed", "data", "model", "metrics"),
    "evaluate_mmi": ("scale", "seed", "data", "model", "metrics", "mmi"),
    "beam_overlap": ("scale", "seed", "data", "model", "malicious"),
}
"""Settings fields each rule's results depend on; rules not named here (tables, report) take every field. "model"
is in every rule that loads a checkpoint: the stage checks the file's architecture against model.arch."""
READS_ENV = "NEGTRAIN_SETTINGS_READS"  # a folder: each job writes there the settings fields it read (stage.main)
# where and how fast a job runs, not what it computes: left out of the keys at any depth
RESOURCE_KEYS = frozenset({"device", "gpu_jobs_per_device", "log_every", "max_chunk"})
# options added after results may have been cached, whose value here reproduces those results: left out of the keys
# at that value, so that upgrading reruns nothing a user has not asked for
KEY_NEUTRAL = {"eval_every_epoch": False, "lm_sample_rng": "cpu"}


def rule_reads(rule: str) -> tuple[str, ...] | None:
    """``RULE_READS`` of a rule by its name (``negtrain_frequent_<dataset>[_<i>]``, one rule per dataset and job,
    reads as ``negtrain_frequent``); None for a rule not in the table."""
    return RULE_READS.get(rule_base(rule))


def rule_key(s: SharedSettings, rule: str) -> str:
    """The settings that decide ``rule``'s results (``rule_reads``; every field for other rules) as sorted JSON,
    without ``RESOURCE_KEYS``; a ``block.field`` entry is keyed by that name."""
    names = rule_reads(rule) or [f.name for f in dataclasses.fields(s)]
    return json.dumps({n: plain(functools.reduce(getattr, n.split("."), s)) for n in names
                       if hasattr(s, n.partition(".")[0]) and n not in RESOURCE_KEYS}, sort_keys=True, default=str)


def keyed_fields(value: Any) -> dict[str, Any]:
    """A dataclass's fields by name, less those of ``KEY_NEUTRAL`` at their neutral value."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
            if f.name not in KEY_NEUTRAL or getattr(value, f.name) != KEY_NEUTRAL[f.name]}


def plain(value: Any, dropped: frozenset[str] = RESOURCE_KEYS) -> Any:
    """Dataclasses (``keyed_fields``), mappings and sequences as dicts and lists, without the keys ``dropped`` (the
    rules' keys: ``RESOURCE_KEYS``; Algorithm 1's resumable state keeps them) at any depth."""
    if dataclasses.is_dataclass(value):
        value = keyed_fields(value)
    if isinstance(value, dict):
        return {str(k): plain(v, dropped) for k, v in value.items() if k not in dropped}
    if isinstance(value, (list, tuple)):
        return [plain(v, dropped) for v in value]
    if isinstance(value, (set, frozenset)):                  # in a fixed order: str hashes vary by process
        return sorted(plain(v, dropped) for v in value)
    return value


class _RecordsReads:
    """Adds every settings field read (by name, through any copy) to ``READ``, the process's record."""

    READ: ClassVar[set[str]] = set()
    _FIELDS: ClassVar[frozenset[str]] = frozenset()

    def __getattribute__(self, name: str) -> Any:
        if name in type(self)._FIELDS:
            _RecordsReads.READ.add(name)
        return super().__getattribute__(name)


@dataclass(frozen=True)
class RecordedShared(_RecordsReads, SharedSettings):
    """``SharedSettings`` that records its reads."""


@dataclass(frozen=True)
class RecordedSettings(_RecordsReads, Settings):
    """``Settings`` that records its reads."""


RecordedShared._FIELDS = frozenset(f.name for f in dataclasses.fields(SharedSettings))
RecordedSettings._FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


def recorded(s: SharedSettings) -> SharedSettings:
    """``s`` as a ``Recorded*`` copy: equal fields, every read recorded in ``_RecordsReads.READ``."""
    cls = RecordedSettings if isinstance(s, Settings) else RecordedShared
    return cls(**{f.name: getattr(s, f.name) for f in dataclasses.fields(s)})


def settings_read() -> list[str]:
    """The settings fields read so far in this process through ``recorded`` settings."""
    return sorted(_RecordsReads.READ)


def format_lr(g_lr: float) -> str:
    """A GAN generator lr as paths spell it (``models/gan/g_lr-{format_lr(g_lr)}.pt``): the shortest text that reads
    back as the same float, so ``float(format_lr(x)) == x`` and a job's lr is exactly the configured one."""
    return repr(float(g_lr))
