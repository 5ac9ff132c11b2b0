"""negtrain_core.config: defaults from the schema, one-line refusals, the quick-scale overlay, per-dataset settings."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from negtrain_core import config as ncfg

ROOT = Path(__file__).resolve().parent.parent


def _config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_defaults_are_filled_from_the_schema():
    cfg = ncfg.validate({"datasets": {"chitchat": {"reader": "chitchat", "vocab_size": 100}}})
    assert cfg["scale"] == "paper" and cfg["search"]["candidates"] == 100
    assert cfg["datasets"]["chitchat"]["train"] == {"batch_size": 64, "lr": 1.0, "dropout": 0.0, "momentum": None,
                                                  "lm_batch_size": None}


@pytest.mark.parametrize("path, message", [
    (("search", "candidatez"), "unknown config key 'search.candidatez' (did you mean 'candidates'?)"),
    (("datasets", "ubuntu", "split", "test_dialogs"),
     "unknown config key 'datasets.ubuntu.split.test_dialogs' (did you mean 'test_dialogues'?)"),
    (("trian",), "unknown config key 'trian' (did you mean 'train'?)"),
    (("datasets", "ubuntu", "format"), "unknown config key 'datasets.ubuntu.format' (keys here: csv, frequent, "
                                       "malicious, raw, reader, split, train, vocab_size)"),
    (("malicious", "learning_rate"), "unknown config key 'malicious.learning_rate'"),   # no near key, too many to list
    # a key in the wrong one of its section's two homes: shared by every dataset, or set per dataset
    (("train", "batch_size"), "unknown config key 'train.batch_size' (set per dataset: datasets.<name>.train."
                              "batch_size, or dataset_defaults.train.batch_size for every dataset)"),
    (("datasets", "ubuntu", "train", "optimizer"),
     "unknown config key 'datasets.ubuntu.train.optimizer' (one setting for every dataset: train.optimizer)"),
    (("dataset_defaults", "frequent", "window"),
     "unknown config key 'dataset_defaults.frequent.window' (one setting for every dataset: frequent.window)"),
])
def test_unknown_keys_are_refused_by_name(path, message):
    cfg = _config()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = 1
    with pytest.raises(ncfg.ConfigError) as err:
        ncfg.validate(cfg)
    assert str(err.value) == message


def test_bad_values_name_the_key():
    cfg = _config()
    cfg["datasets"]["switchboard"]["train"]["dropout"] = 1.5
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'datasets.switchboard.train.dropout': 1.5 is greater"):
        ncfg.validate(cfg)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["datasets"]["chitchat"]["split"].update(valid_dialogues=1.5),
     "config key 'datasets.chitchat.split.valid_dialogues': 1.5 is not a count of dialogues, or (readers jsonl and "
     "csv only) a fraction below 1 of the usable dialogues"),
    (lambda c: c.update(download="true"),
     "config key 'download': 'true' is not of type 'boolean' (with --config, write True)"),
    (lambda c: c["frequent"].update(shuffle="True"),
     "config key 'frequent.shuffle': 'True' is not of type 'boolean' (set it in a --configfile: nested --config "
     "values stay text)"),
    (lambda c: c["quick"].update(vocab_size="5000"),       # --config 'quick={vocab_size: 5000}'
     "config key 'quick.vocab_size': '5000' is not of type 'integer' (set it in a --configfile: nested --config "
     "values stay text)"),
    (lambda c: c["datasets"]["chitchat"]["split"].update(valid_dialogues="0.1"),
     "config key 'datasets.chitchat.split.valid_dialogues': '0.1' is not a count of dialogues, or (readers jsonl and "
     "csv only) a fraction below 1 of the usable dialogues (set it in a --configfile: nested --config values stay "
     "text)"),
    (lambda c: c["gan"].update(filter_widths=[]),          # the discriminator needs one convolution width at least
     "config key 'gan.filter_widths': [] should be non-empty"),
    (lambda c: c["datasets"]["chitchat"]["frequent"].update(r_thres=[0.1, 1]),   # no share of the window is above 1
     "config key 'datasets.chitchat.frequent.r_thres.1': 1 is greater than or equal to the maximum of 1"),
])
def test_refusals_say_what_is_allowed(change, message):
    cfg = _config()
    change(cfg)
    with pytest.raises(ncfg.ConfigError) as err:
        ncfg.validate(cfg)
    assert str(err.value) == message


def test_stop_patience_reaches_the_training_settings_and_zero_is_refused():
    cfg = _config()
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.stop_patience is None      # all epochs by default
    cfg["train"]["stop_patience"] = 3
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.stop_patience == 3
    cfg["train"]["stop_patience"] = 0
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'train.stop_patience': 0 is less than the minimum of 1"):
        ncfg.validate(cfg)


def test_matmul_precision_reaches_the_training_settings_and_other_values_are_refused():
    cfg = _config()
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.matmul_precision == "ieee"     # the committed runs'
    cfg["train"]["matmul_precision"] = "tf32"
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.for_kind("lm").matmul_precision == "tf32"
    cfg["train"]["matmul_precision"] = "bf16"
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'train.matmul_precision': 'bf16' is not one of"):
        ncfg.validate(cfg)


def test_frequent_weight_grads_reaches_every_run_and_needs_the_release_decoder():
    cfg = _config()
    assert {f.weight_grads for f in ncfg.settings(ncfg.validate(cfg), "switchboard").frequent} == {"per_step"}
    cfg["frequent"]["weight_grads"] = "deferred"
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'frequent.weight_grads': 'deferred' defers the per-step "
                                               r"weight products .* \(got lstm, general\)"):
        ncfg.settings(ncfg.validate(cfg), "switchboard")
    cfg["model"]["attention"] = "release"
    assert {f.weight_grads for f in ncfg.settings(ncfg.validate(cfg), "switchboard").frequent} == {"deferred"}
    cfg["frequent"]["weight_grads"] = "fused"
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'frequent.weight_grads': 'fused' is not one of"):
        ncfg.validate(cfg)


def test_average_last_reaches_the_training_settings_and_zero_is_refused():
    cfg = _config()
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.average_last == 1
    cfg["train"]["average_last"] = 3
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").train.average_last == 3
    cfg["train"]["average_last"] = 0
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'train.average_last': 0 is less than the minimum of 1"):
        ncfg.validate(cfg)


@pytest.mark.parametrize("key, value", [("attention", "release"), ("mask_source_padding", False),
                                        ("decoder_init", "zero"), ("dropout_sites", "decoder"), ("init", "release"),
                                        ("init", "release_one_hot_maps"), ("init", "release_decoder_embedding")])
def test_an_lstm_only_model_key_is_refused_with_the_transformer(key, value):
    """The LSTM's attention, decoder start, dropout sites and initialisation have no Transformer counterpart: set with
    arch: transformer they stop the run in one line naming the key, rather than being ignored; the LSTM takes them."""
    cfg = _config()
    cfg["model"][key] = value
    assert getattr(ncfg.settings(ncfg.validate(cfg), "switchboard").model, key) == value
    cfg["model"]["arch"] = "transformer"
    with pytest.raises(ncfg.ConfigError, match=rf"^config key 'model.{key}': {value!r} is an LSTM setting"):
        ncfg.settings(ncfg.validate(cfg))
    cfg["model"][key] = getattr(ncfg.ModelSettings, key)                # the default: the Transformer runs
    assert ncfg.settings(ncfg.validate(cfg), "switchboard").model.arch == "transformer"


def test_paper_scale_settings_follow_the_dataset_block():
    s = ncfg.settings(ncfg.validate(_config()), "switchboard")
    assert (s.data.vocab_size, s.model.vocab_size, s.model.hidden_dim, s.model.dropout) == (10000, 10005, 600, 0.3)
    assert (s.train.batch_size, s.train.lr, s.train.epochs) == (32, 1.0, 20)
    assert (s.train.momentum, s.train.finetune_momentum) == (0.0, 0.9)   # plain SGD baselines, release fine-tuning
    assert s.malicious.lambda_pos == 1.0 and s.malicious.hit_type == "avg" and s.malicious.pos_batch == 100


def test_quick_scale_overrides_sizes_and_the_baseline_recipe_it_names():
    paper = ncfg.settings(ncfg.validate(_config()), "ubuntu")
    cfg = _config()
    cfg["scale"] = "quick"
    s = ncfg.settings(ncfg.validate(cfg), "ubuntu")
    assert (s.data.vocab_size, s.model.embedding_dim, s.model.hidden_dim, s.train.epochs) == (3000, 64, 128, 3)
    assert s.data.max_train_pairs == 40000 and s.search.attack["io"].candidates == 10 and s.train.momentum == 0.9
    assert (paper.model.dropout, paper.train.optimizer, paper.train.batch_size) == (0.0, "auto", 64)
    assert (s.model.dropout, s.train.optimizer, s.train.adam_lr, s.train.batch_size) == (0.0, "adamw", 6e-3, 32)
    assert ncfg.train_recipe(s.model.arch, s.train.optimizer, s.train.schedule) == ("adamw", "epoch")
    assert {f.max_train_pairs for f in (*s.frequent, s.gan, s.unlikelihood)} == {12800}
    assert {f.max_train_pairs for f in (*paper.frequent, paper.gan, paper.unlikelihood)} == {None}
    assert s.train.lr == 1.0 and s.frequent[0].batch_size == 64                # what the quick block leaves alone
    switchboard = ncfg.settings(cfg, "switchboard")                          # dropout 0.3 at paper scale
    assert (switchboard.model.dropout, switchboard.train.batch_size) == (0.0, 32)


def test_augmentation_not_run_without_a_corpus_and_sizes_follow():
    cfg = ncfg.validate(_config())                                      # paraphrase.corpora is empty
    targets = ncfg.settings(cfg).targets
    assert "not run" in targets.not_run
    assert targets.sizes == ("0.5k",)
    cfg["paraphrase"]["corpora"] = [{"format": "mrpc", "path": "x.txt", "path2": None}]
    targets = ncfg.settings(cfg).targets
    assert targets.not_run is None and targets.sizes == ("0.5k", "1k", "2.5k")


def test_given_lists_must_come_in_pairs():
    cfg = ncfg.validate(_config())
    cfg["targets"]["augmented"]["given"] = {"1k": "a.txt", "2.5k": None}
    with pytest.raises(ValueError, match="2.5k is missing"):
        ncfg.settings(cfg)


def test_unknown_dataset_is_refused():
    with pytest.raises(ncfg.ConfigError, match="dataset 'reddit'"):
        ncfg.settings(ncfg.validate(_config()), "reddit")


def test_overlays_deep_merge(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("datasets: {switchboard: {train: {batch_size: 8}}}\n")
    cfg = ncfg.load(ROOT / "config.yaml", (overlay,))
    assert cfg["datasets"]["switchboard"]["train"] == {"batch_size": 8, "lr": 1.0, "dropout": 0.3, "momentum": 0.0,
                                                       "lm_batch_size": None}


def test_load_reads_the_repository_config_and_applies_overrides_after_the_overlays(tmp_path):
    """``load()`` is the config a job gets: config.yaml, then ``--configfile`` overlays, then ``--config`` keys."""
    assert ncfg.load() == ncfg.load(ROOT / "config.yaml")
    overlay = tmp_path / "o.yaml"
    overlay.write_text("scale: paper\nseed: 7\n")
    cfg = ncfg.load(overlays=(overlay,), overrides={"scale": "quick", "device": "cpu"})
    assert (cfg["scale"], cfg["device"], cfg["seed"]) == ("quick", "cpu", 7)
    s = ncfg.settings(cfg, "chitchat")
    q = cfg["quick"]
    assert (s.scale, s.model.hidden_dim, s.malicious.epochs) == ("quick", q["hidden_dim"], q["malicious_epochs"])
    with pytest.raises(ncfg.ConfigError, match=r"^config key 'scale': 'fast' is not one of"):
        ncfg.load(overrides={"scale": "fast"})                                          # validated like the rest


def test_the_release_overlay_validates_and_turns_the_search_and_hit_readings_on():
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", (ROOT / "configs" / "release.yaml",)), "switchboard")
    for c in [*s.search.attack.values(), *s.search.negtrain.values()]:
        assert (c.sequence_reweight, c.first_position, c.stop_rule, c.sweeps, c.lm_train_mode, c.stop_batch) == \
            ("io_only", "best", "batch_mean", 6, False, 100)
    assert s.hits == ncfg.HitSettings(model_mode="train", lm_check=False, strict=True, baseline_restarts=1)
    assert {c.restarts for c in [*s.search.attack.values(), *s.search.negtrain.values()]} == {1}


def test_search_lm_sample_rng_reaches_every_search(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("search: {lm_sample_rng: device}\n")
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", (overlay,)), "switchboard")
    assert {c.lm_sample_rng for c in [*s.search.attack.values(), *s.search.negtrain.values()]} == {"device"}
    overlay.write_text("search: {lm_sample_rng: gpu}\n")
    with pytest.raises(ncfg.ConfigError, match="lm_sample_rng"):
        ncfg.validate(ncfg.load(ROOT / "config.yaml", (overlay,)))


def test_search_shared_tail_reaches_every_search(tmp_path):
    """search.shared_tail: off by default (the plain path's roundings), on for every search when set."""
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml"), "switchboard")
    assert {c.shared_tail for c in [*s.search.attack.values(), *s.search.negtrain.values()]} == {False}
    overlay = tmp_path / "o.yaml"
    overlay.write_text("search: {shared_tail: true}\n")
    s = ncfg.settings(ncfg.load(ROOT / "config.yaml", (overlay,)), "switchboard")
    assert {c.shared_tail for c in [*s.search.attack.values(), *s.search.negtrain.values()]} == {True}
    overlay.write_text("search: {shared_tail: 1}\n")
    with pytest.raises(ncfg.ConfigError, match="shared_tail"):
        ncfg.validate(ncfg.load(ROOT / "config.yaml", (overlay,)))


# ------------------------------------------------------------------------- the schema holds every default

SCHEMA = yaml.safe_load(ncfg.SCHEMA_PATH.read_text())
FINE_TUNING = ("#dataset_frequent", "train", "")
# dataclass -> (schema objects where a field's name is looked up, in order ("#x": $defs.x, "": the top level);
#               fields whose key has another name; fields that are no config key)
SOURCES = {
    ncfg.DataSettings: (("preprocess", ""), {"csv": "#dataset.csv"}, {"max_train_pairs", "max_eval_pairs"}),
    ncfg.TransformerSettings: (("model.transformer",), {}, set()),
    ncfg.ModelSettings: (("model", "#dataset_train"), {}, {"transformer"}),       # a block: TransformerSettings
    ncfg.TrainSettings: (("#dataset_train", "train", ""),
                         {"momentum": "train.momentum", "finetune_momentum": "train.momentum",
                          **{f"adam_{k}": f"train.adam.{k}" for k in ("lr", "betas", "eps", "weight_decay")}}, set()),
    ncfg.FineTuning: (FINE_TUNING, {"max_len": "preprocess.max_target_len"}, {"max_train_pairs"}),
    ncfg.FrequentSettings: (("frequent", *FINE_TUNING), {"max_len": "preprocess.max_target_len"},
                            {"eval_batch_size", "max_train_pairs"}),
    ncfg.NegTrainSettings: (("malicious", "#dataset_malicious"), {}, set()),
    ncfg.SearchSettings: (("search",), {"src_len": "preprocess.max_source_len",
                                        "hit_mode": "#dataset_malicious.hit_type",
                                        "stop_batch": "malicious.batch_targets"}, {"init", "early_stop", "fused_logp"}),
    ncfg.SearchBlock: (("search",), {}, set()),
    ncfg.HitSettings: (("hits",), {}, set()),
    ncfg.GanSettings: (("gan", *FINE_TUNING), {"max_len": "preprocess.max_target_len"}, {"max_train_pairs"}),
    ncfg.ULSettings: (("unlikelihood", *FINE_TUNING), {"max_len": "preprocess.max_target_len"}, {"max_train_pairs"}),
    ncfg.MMISettings: (("mmi",), {"max_len": "preprocess.max_target_len"}, {"batch_size"}),
    ncfg.MetricSettings: (("metrics",), {"bleu_tokenize": "metrics.bleu.tokenize",
                                         "bleu_smooth_method": "metrics.bleu.smooth_method"}, set()),
    ncfg.TargetsSettings: (("targets", "targets.augmented"), {"max_len": "preprocess.max_target_len"},
                           {"list_size", "not_run"}),
    ncfg.ParaphraseCorpus: ((), {"path2": "paraphrase.corpora[].path2"}, set()),
    ncfg.ParaphraseSettings: (("paraphrase",), {}, set()),
    ncfg.HumanEvalSettings: (("human_eval",), {}, set()),
    ncfg.SharedSettings: ((), {}, set()),
    ncfg.Settings: ((), {}, set()),
}
MISSING = object()


def _schema_node(path: str) -> dict | None:
    """The schema of the config key at a dotted ``path`` ("#name" starts in $defs, "[]" steps into list items)."""
    node, parts = SCHEMA, path.split(".") if path else []
    if parts and parts[0].startswith("#"):
        node, parts = SCHEMA["$defs"][parts[0][1:]], parts[1:]
    for part in parts:
        name, items = part.removesuffix("[]"), part.endswith("[]")
        node = node.get("properties", {}).get(name)
        if node is None:
            return None
        if "$ref" in node:
            node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
        if items:
            node = node["items"]
    return node


def _schema_default(cls: type, name: str) -> object:
    blocks, renamed, _ = SOURCES[cls]
    paths = [renamed[name]] if name in renamed else [f"{b}.{name}".lstrip(".") for b in blocks]
    for path in paths:
        node = _schema_node(path)
        if node is not None:
            return node.get("default", MISSING)
    return MISSING


def _plain(value: object) -> object:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def test_every_settings_dataclass_says_where_its_fields_come_from():
    built = {obj for obj in vars(ncfg).values() if dataclasses.is_dataclass(obj) and obj.__module__ == ncfg.__name__
             and obj not in (ncfg.RecordedSettings, ncfg.RecordedShared)}     # copies that record their reads
    assert built == set(SOURCES)


@pytest.mark.parametrize("cls", list(SOURCES), ids=lambda c: c.__name__)
def test_dataclass_defaults_are_the_schema_defaults(cls):
    """A field's default repeats its config key's schema default; a field with a default and no config key is
    listed as such."""
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue
        if f.name in SOURCES[cls][2]:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        schema = _schema_default(cls, f.name)
        assert schema is not MISSING, f"{cls.__name__}.{f.name} has a default but no config key with one"
        assert _plain(default) == schema, f"{cls.__name__}.{f.name}: default {default!r}, schema {schema!r}"


def test_settings_of_an_empty_config_are_the_dataclass_defaults():
    """What runs when the config sets nothing: the schema's defaults, which the dataclasses repeat."""
    s = ncfg.settings(ncfg.validate({"datasets": {"chitchat": {"reader": "chitchat", "vocab_size": 100}}}),
                      "chitchat")
    assert s.data == ncfg.DataSettings(name="chitchat", reader="chitchat", raw=s.data.raw, split=s.data.split,
                                       vocab_size=100)
    assert s.model == ncfg.ModelSettings(vocab_size=105) and s.train == ncfg.TrainSettings()
    assert s.search.attack == {"o": ncfg.SearchSettings(lambda_in=0.0), "io": ncfg.SearchSettings(init="lm")}
    assert s.search.negtrain["io"] == ncfg.SearchSettings(init="lm", restarts=1)
    assert s.hits == ncfg.HitSettings()
    assert s.malicious == ncfg.NegTrainSettings(hit_type="avg")
    assert s.frequent == (ncfg.FrequentSettings(r_thres=0.01),)
    assert (s.gan, s.unlikelihood, s.mmi, s.metrics) == (ncfg.GanSettings(), ncfg.ULSettings(), ncfg.MMISettings(),
                                                          ncfg.MetricSettings())
    assert s.targets == ncfg.TargetsSettings(given={"1k": None, "2.5k": None}, not_run=s.targets.not_run)


def test_the_quick_overlay_applies_to_every_block_it_names():
    cfg = _config()
    cfg["scale"] = "quick"
    s, q = ncfg.settings(ncfg.validate(cfg), "chitchat"), cfg["quick"]
    assert [f.window for f in s.frequent] == [q["frequent_window"]] * 2
    assert [f.epochs for f in s.frequent] == [q["frequent_epochs"]] * 2
    assert s.malicious.epochs == q["malicious_epochs"] and s.targets.list_size == q["target_list_size"]
    assert (s.gan.filters, s.gan.highway_hidden) == (q["gan"]["filters"], q["gan"]["highway_hidden"])
    assert s.gan.g_lrs == tuple(q["gan"]["g_lrs"]) != tuple(cfg["gan"]["g_lrs"])
    assert s.unlikelihood.epochs == min(cfg["unlikelihood"]["epochs"], q["frequent_epochs"])
    assert all((c.candidates, c.sweeps) == (10, 2) for c in [*s.search.attack.values(), *s.search.negtrain.values()])
    assert s.search.attack["o"].restarts == q["search"]["restarts"]
    assert s.paraphrase.model.hidden_dim == q["hidden_dim"] and s.paraphrase.data.max_train_pairs == 40000
    assert (s.paraphrase.model.dropout, s.paraphrase.train.batch_size) == (q["dropout"], q["batch_size"])
    assert (s.paraphrase.train.optimizer, s.paraphrase.train.adam_lr) == (q["optimizer"], q["adam_lr"])
    assert ncfg.settings(cfg).targets == s.targets                     # the shared blocks, without a dataset


# ------------------------------------------------------------------ per-dataset keys and the quick overlay's caps


def test_a_datasets_frequent_epochs_and_batch_size_reach_every_fine_tuning_at_paper_scale():
    cfg = _config()
    cfg["datasets"]["switchboard"]["frequent"].update(epochs=7, batch_size=16)
    s = ncfg.settings(ncfg.validate(cfg), "switchboard")
    assert [f.epochs for f in s.frequent] == [7, 7]
    assert {f.batch_size for f in (*s.frequent, s.gan, s.unlikelihood)} == {16}
    assert [f.epochs for f in ncfg.settings(cfg, "ubuntu").frequent] == [20, 20]        # another dataset's own


def test_quick_scale_caps_the_vocabulary_and_never_raises_it():
    cfg = _config()
    cfg["scale"] = "quick"                                                # quick.vocab_size: 3000
    cfg["datasets"]["chitchat"]["vocab_size"] = 100
    cfg["paraphrase"]["vocab_size"] = 50
    s = ncfg.settings(ncfg.validate(cfg), "chitchat")
    assert (s.data.vocab_size, s.model.vocab_size) == (100, 105)
    assert (s.paraphrase.data.vocab_size, s.paraphrase.model.vocab_size) == (50, 55)
    assert ncfg.settings(cfg, "switchboard").data.vocab_size == 3000      # 10000 capped
    cfg["paraphrase"]["vocab_size"] = 20000
    assert ncfg.settings(cfg).paraphrase.data.vocab_size == 3000          # 20000 capped


def test_quick_scale_runs_unlikelihood_for_at_most_the_frequent_epochs():
    cfg = _config()
    cfg["scale"] = "quick"
    cfg["quick"]["frequent_epochs"] = 3
    cfg["unlikelihood"]["epochs"] = 2
    assert ncfg.settings(ncfg.validate(cfg), "chitchat").unlikelihood.epochs == 2         # fewer: its own
    cfg["unlikelihood"]["epochs"] = 5
    assert ncfg.settings(ncfg.validate(cfg), "chitchat").unlikelihood.epochs == 3         # more: capped


def test_the_paraphraser_trains_with_its_own_momentum_and_the_quick_epochs():
    cfg = _config()
    cfg["paraphrase"]["train"].update(momentum=0.5, epochs=9)
    s = ncfg.settings(ncfg.validate(cfg), "chitchat")
    assert (s.paraphrase.train.momentum, s.paraphrase.train.finetune_momentum, s.paraphrase.train.epochs) == \
        (0.5, 0.9, 9)
    cfg["scale"] = "quick"
    q = ncfg.settings(ncfg.validate(cfg), "chitchat").paraphrase.train
    assert (q.epochs, q.batch_size) == (3, 32)                            # quick.epochs, quick.batch_size


def test_quick_scale_caps_the_eval_pairs_and_drops_the_lm_batch_size():
    cfg = _config()
    cfg["datasets"]["switchboard"]["train"]["lm_batch_size"] = 64
    paper = ncfg.settings(ncfg.validate(cfg), "switchboard")
    assert (paper.data.max_eval_pairs, paper.train.for_kind("lm").batch_size) == (None, 64)
    cfg["scale"] = "quick"
    quick = ncfg.settings(ncfg.validate(cfg), "switchboard")
    assert quick.data.max_eval_pairs == 500 and quick.train.lm_batch_size is None
    assert quick.train.for_kind("lm").batch_size == quick.train.for_kind("seq2seq").batch_size == 32


def test_the_learned_position_table_must_hold_the_decoded_target_with_its_start_token():
    """max_target_len 20 decodes 21 positions (<s> + 20): a 20-row table is refused, 21 rows are enough."""
    cfg = _config()
    cfg["model"]["transformer"]["max_positions"] = 20
    with pytest.raises(ncfg.ConfigError,
                       match=r"'model.transformer.max_positions': 20 is less than .* \(21 positions\)"):
        ncfg.settings(ncfg.validate(cfg), "chitchat")
    cfg["model"]["transformer"]["max_positions"] = 21
    assert ncfg.settings(ncfg.validate(cfg), "chitchat").model.transformer.max_positions == 21
