"""The release's readings of Algorithms 1 and 2 as config options (docs/presets.md), the Ubuntu lambda_POS default and
the given augmented lists' check: each option's test fails when the option is ignored."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from negtrain_core import config as ncfg
from negtrain_core.config import FrequentSettings, ModelSettings, NegTrainSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, Vocab
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.models.steps import PositiveBatches, mle_loss
from negtrain_core.negtrain import frequent as F
from negtrain_core.negtrain import malicious as mal

from toy_data import alg1_pair, alg1_settings

ROOT = Path(__file__).resolve().parent.parent
V = 12


def _model(seed: int = 0, hidden: int = 8) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=hidden, dropout=0.0))


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------------------------ Algorithm 1


def _train(model: Seq2Seq, s: NegTrainSettings, is_hit) -> list[dict[str, float]]:
    """Algorithm 1 on the two targets of ``alg1_pair`` under fixed triggers, positive pairs = the same pairs."""
    trig, tgt = alg1_pair()
    pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
    find = lambda model, t: (trig[: len(t)], torch.ones(len(t), dtype=torch.bool))   # noqa: E731
    return mal.negative_train(model, tgt, pos, find, is_hit, torch.tensor([PAD_ID]), s)


def _hits_for(tests: int):
    """A hit test that finds every target hit in its first ``tests`` calls and none after."""
    calls = []

    def is_hit(out, lm_ok):
        calls.append(1)
        return torch.full((len(lm_ok),), len(calls) <= tests, dtype=torch.bool)
    return is_hit


def _rounds(rows) -> list[tuple[int, int, bool]]:
    """(round, hits, stepped) per curve row."""
    return [(r["round"], r["hits"], not math.isnan(r["neg_loss"])) for r in rows]


def test_step_then_test_steps_once_on_a_batch_without_hits():
    """The release: every batch gets a negative and a positive step, even when its first test finds no hit; the
    paper's order takes none."""
    for order, stepped in (("test_then_step", False), ("step_then_test", True)):
        model = _model()
        before = _params(model)
        rows = _train(model, alg1_settings(round_order=order), _hits_for(0))
        assert _rounds(rows) == [(0, 0, stepped)]
        assert not math.isnan(rows[0]["pos_nll"]) == stepped
        changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
        assert changed == stepped, order


def test_step_then_test_stops_after_the_first_round_without_hits():
    """Hits at the first two tests: the paper's order steps twice and ends on a third test; the release steps after
    each of the three tests and tests no more."""
    assert _rounds(_train(_model(), alg1_settings(), _hits_for(2))) == [(0, 2, True), (1, 2, True), (2, 0, False)]
    rows = _train(_model(), alg1_settings(round_order="step_then_test"), _hits_for(2))
    assert _rounds(rows) == [(0, 2, True), (1, 2, True), (2, 0, True)]


def test_max_rounds_counts_the_rounds_with_steps_in_either_order():
    """Always hit: max_rounds 3 gives 3 steps either way; the paper's order adds a final test."""
    paper = _train(_model(), alg1_settings(max_rounds=3), _hits_for(10 ** 6))
    release = _train(_model(), alg1_settings(max_rounds=3, round_order="step_then_test"), _hits_for(10 ** 6))
    assert _rounds(paper) == [(r, 2, r < 3) for r in range(4)]
    assert _rounds(release) == [(r, 2, True) for r in range(3)]


def test_weight_decay_shrinks_the_weights_in_both_steps():
    """No gradient (weight 0 on every target, lambda_POS 0): each step only decays, p <- p (1 - lr wd), once with
    the negative rate and once with the positive one."""
    wd, s = 0.2, alg1_settings(round_order="step_then_test", nonhit_weight=0.0, lambda_pos=0.0)
    model = _model()
    before = _params(model)
    _train(model, s, _hits_for(0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))     # weight_decay 0: no change
    _train(model, dataclasses.replace(s, weight_decay=wd), _hits_for(0))
    shrink = (1 - s.lr_neg * wd) * (1 - s.lr_pos * wd)
    for a, b in zip(before, model.parameters()):
        assert torch.allclose(b, a * shrink, atol=1e-7)


def test_clip_norm_bounds_each_step():
    """One negative step (lambda_POS 0: the positive step moves nothing, momentum 0): the weights move by
    lr_neg * min(|g|, clip_norm)."""
    s = alg1_settings(round_order="step_then_test", nonhit_weight=1.0, lambda_pos=0.0, lr_neg=1.0)
    moved = {}
    for clip in (None, 1e-3):
        model = _model()
        before = _params(model)
        _train(model, dataclasses.replace(s, clip_norm=clip), _hits_for(0))
        moved[clip] = torch.linalg.vector_norm(torch.cat([(b - a).flatten() for a, b in
                                                          zip(before, model.parameters())])).item()
    assert moved[None] > 1e-2
    assert moved[1e-3] == pytest.approx(1e-3, rel=1e-3)


def assert_clipped_step(model: Seq2Seq, step, scope: str, clip: float = 1e-3) -> None:
    """Run ``step()``, one lr-1 step of ``model`` whose gradient is far above ``clip``, and check how far it moved:
    ``clip`` in all with clip_scope global; with per_module each of the seq2seq's modules (one-hot map, encoder,
    decoder) by ``clip`` on its own, so sqrt(3) x ``clip`` in all."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step()
    moved = {n: p.detach() - before[n] for n, p in model.named_parameters()}

    def norm(names: list[str]) -> float:
        return torch.linalg.vector_norm(torch.cat([moved[n].flatten() for n in names])).item()

    assert norm(list(moved)) == pytest.approx(clip * (math.sqrt(3) if scope == "per_module" else 1.0), rel=1e-3)
    if scope == "per_module":
        for group in model.clip_modules():
            names = [n for n, p in model.named_parameters() if any(p is q for q in group)]
            assert norm(names) == pytest.approx(clip, rel=1e-3)


def test_clip_scope_per_module_bounds_each_modules_step():
    """Algorithm 1's negative step (lambda_POS 0, lr_neg 1) under clip_norm 1e-3, either clip_scope."""
    s = alg1_settings(round_order="step_then_test", nonhit_weight=1.0, lambda_pos=0.0, lr_neg=1.0, clip_norm=1e-3)
    for scope in ("global", "per_module"):
        model = _model()
        assert_clipped_step(model, lambda: _train(model, dataclasses.replace(s, clip_scope=scope), _hits_for(0)),
                            scope)


# ------------------------------------------------------------------------------------------------ Algorithm 2


def _freq_cfg(**kw) -> FrequentSettings:
    """Every sample negative once the window allows (r_thres below any ratio), updates only on negatives."""
    base = dict(r_thres=1e-9, window=3, lr=0.1, momentum=0.0, weight_decay=0.0, lambda_pos=1.0, clip_norm=1e9,
                update_every_batch=False, negative_norm="negatives", batch_size=4, epochs=2, max_len=4, lookahead=1)
    return FrequentSettings(**{**base, **kw})


def _freq_data(n: int = 20) -> tuple[Vocab, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    src = torch.randint(5, V, (n, 6), generator=gen)
    tgt = torch.cat([torch.full((n, 1), BOS_ID), torch.randint(5, V, (n, 3), generator=gen),
                     torch.full((n, 1), EOS_ID)], 1)
    return Vocab(SPECIALS + tuple(f"w{i}" for i in range(V - 5))), (src, tgt)


def _negative_batches(cfg: FrequentSettings) -> list[int]:
    """Cumulative mini-batches with negatives after each epoch (5 mini-batches per epoch)."""
    vocab, train = _freq_data()
    (curve,) = F.train_frequent([_model(hidden=16)], train, (train[0][:8], train[1][:8]), vocab, [cfg])
    return curve["negative_steps"].tolist()[1:]


def test_window_reset_each_epoch_delays_every_epochs_first_negatives():
    """Window 3, 5 mini-batches an epoch: negatives from the 3rd mini-batch; the persistent window has them at
    every mini-batch of epoch 2, the emptied one from its 3rd again."""
    assert _negative_batches(_freq_cfg()) == [3, 8]
    assert _negative_batches(_freq_cfg(window_reset_each_epoch=True)) == [3, 6]


def test_first_negative_batch_after_full_starts_one_batch_later():
    assert _negative_batches(_freq_cfg(epochs=1)) == [3]
    assert _negative_batches(_freq_cfg(epochs=1, first_negative_batch="after_full")) == [2]
    assert _negative_batches(_freq_cfg(window_reset_each_epoch=True, first_negative_batch="after_full")) == [2, 4]


def test_window_after_full_counts_the_last_window_batches_including_the_current_one():
    w = F.FrequencyWindow(2, batch_size=1, max_len=2, first_negative_batch="after_full")
    a, b = torch.tensor([[5, EOS_ID]]), torch.tensor([[6, EOS_ID]])
    for rows in (a, a):
        w.push(rows)
        assert not w.full and not w.flags(rows, 0.0).any()
    w.push(b)                                              # the 3rd batch: the window holds the 2nd and the 3rd
    assert w.full and w.flags(b, 0.49).tolist() == [True] and w.counts(a).tolist() == [1]
    w.clear()
    assert (w.pushed, w.total, w.full) == (0, 0, False) and w.counts(a).tolist() == [0]


def _decoded_sources(monkeypatch, cfg: FrequentSettings) -> torch.Tensor:
    """The sources of every greedy decode of a one-epoch run, in the order they were decoded."""
    seen = []
    greedy = F.decoding.greedy

    def record(model, src, **kw):
        seen.append(src.clone())
        return greedy(model, src, **kw)

    monkeypatch.setattr(F.decoding, "greedy", record)
    vocab, train = _freq_data()
    F.train_frequent([_model(hidden=16)], train, (train[0][:8], train[1][:8]), vocab, [cfg])
    return torch.cat(seen[1:-1])                          # the first and the last decode are the test set's


def test_shuffle_false_takes_the_mini_batches_in_file_order(monkeypatch):
    _, (src, _) = _freq_data()
    assert torch.equal(_decoded_sources(monkeypatch, _freq_cfg(epochs=1, shuffle=False, r_thres=1.0)), src)
    shuffled = _decoded_sources(monkeypatch, _freq_cfg(epochs=1, r_thres=1.0))
    assert shuffled.shape == src.shape and not torch.equal(shuffled, src)


def test_drop_last_batch_skips_a_passs_partial_mini_batch(monkeypatch):
    """20 pairs in mini-batches of 6 (file order): the release's loader yields the three full ones only."""
    _, (src, _) = _freq_data()
    cfg = _freq_cfg(epochs=1, shuffle=False, r_thres=1.0, batch_size=6)
    assert torch.equal(_decoded_sources(monkeypatch, cfg), src)
    assert torch.equal(_decoded_sources(monkeypatch, dataclasses.replace(cfg, drop_last_batch=True)), src[:18])


def test_drop_last_batch_keeps_the_positive_streams_batches_full_too(monkeypatch):
    """positive_batch "stream", 20 pairs in batches of 6, two epochs: the stream's 4th batch would be the 2 pairs left
    of its first pass; with drop_last_batch it starts its second pass instead."""
    cfg = _freq_cfg(epochs=2, update_every_batch=True, negative_norm="batch", batch_size=6)
    sizes = [len(pos[0]) for _, _, pos in _positives(monkeypatch, cfg)]
    assert sizes == [6, 6, 6, 2, 6, 6, 6, 2]
    sizes = [len(pos[0]) for _, _, pos in _positives(monkeypatch, dataclasses.replace(cfg, drop_last_batch=True))]
    assert sizes == [6] * 6


def test_frequent_clip_scope_per_module_bounds_each_modules_step():
    """Algorithm 2's negative step (lr 1, momentum 0) with clip_norm 1e-3: clip_scope per_module (the release's
    neg_d_train) moves each of the seq2seq's modules by 1e-3 on its own, sqrt(3) x 1e-3 in all; global: 1e-3."""
    _, (src, tgt) = _freq_data()
    src, tgt = src[:4], tgt[:4]
    for scope in ("global", "per_module"):
        model = _model(hidden=16)
        updates = F.Updates(model, _freq_cfg(lr=1.0, clip_norm=1e-3, clip_scope=scope), 4, use_graph=False)
        assert_clipped_step(model, lambda: updates.negative(src, tgt, (tgt[:, 1:] != PAD_ID).float(),
                                                            torch.tensor(12)), scope)


def test_eos_weight_on_last_position_reaches_the_negative_step():
    """Samples that never emit </s>: the negative step's weights put eos_weight on each one's last position with
    the release's quirk, and weight every position 1 without it."""
    seen = []

    class Recorder:
        model = torch.nn.Linear(1, 1)

        def negative(self, src, tgt, weights, norm):
            seen.append(weights)

        def positive(self, src, tgt, weights, norm):
            pass

    samples = torch.tensor([[5, 6, 7], [8, 9, 10]])                          # no </s>
    src, tgt = samples, torch.cat([torch.full((2, 1), BOS_ID), samples], 1)
    for quirk in (False, True):
        cfg = _freq_cfg(update_every_batch=True, negative_norm="batch", max_len=3, batch_size=2, r_thres=0.0,
                        window=1, eos_weight_on_last_position=quirk)
        window = F.FrequencyWindow(1, 2, 3)
        F.frequent_step(Recorder(), src, tgt, samples, window, cfg)
    assert seen[0].tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    assert torch.allclose(seen[1], torch.tensor([[1.0, 1.0, 0.1], [1.0, 1.0, 0.1]]))


def _positives(monkeypatch, cfg: FrequentSettings) -> list[tuple[torch.Tensor, torch.Tensor, tuple | None]]:
    """(batch src, batch tgt, positive pairs passed) of every step of a one-epoch run."""
    seen = []
    step = F.frequent_step

    def record(updates, src, tgt, samples, window, cfg, positive=None):
        seen.append((src, tgt, positive))
        return step(updates, src, tgt, samples, window, cfg, positive)

    monkeypatch.setattr(F, "frequent_step", record)
    vocab, train = _freq_data()
    F.train_frequent([_model(hidden=16)], train, (train[0][:8], train[1][:8]), vocab, [cfg])
    return seen


def test_positive_batch_same_steps_on_the_penalised_batch(monkeypatch):
    """update_every_batch: "stream" takes other pairs than the batch, "same" the batch itself."""
    cfg = _freq_cfg(epochs=1, update_every_batch=True, negative_norm="batch")
    stream = _positives(monkeypatch, cfg)
    assert all(pos is not None for _, _, pos in stream)
    assert not all(torch.equal(src, pos[0]) for src, _, pos in stream)
    same = _positives(monkeypatch, dataclasses.replace(cfg, positive_batch="same"))
    assert len(same) == 5 and all(pos is None for _, _, pos in same)    # frequent_step then steps on (src, tgt)


def test_positive_batch_same_moves_the_weights_as_the_batchs_own_positive_step():
    """positive_batch "same" under update_every_batch: the run equals the one whose stream yields each batch."""
    vocab, train = _freq_data()
    cfg = _freq_cfg(epochs=1, update_every_batch=True, negative_norm="batch", shuffle=False, positive_batch="same")
    same, aligned = _model(hidden=16), _model(hidden=16)
    F.train_frequent([same], train, (train[0][:8], train[1][:8]), vocab, [cfg])
    run = F.FrequentRun(aligned, train, (train[0][:8], train[1][:8]), vocab,
                        dataclasses.replace(cfg, positive_batch="stream"), log_every=10 ** 6)
    run.pos_stream = iter([(train[0][i:i + 4], train[1][i:i + 4]) for i in range(0, 20, 4)])
    for _ in run.epoch(1):
        pass
    assert all(torch.equal(a, b) for a, b in zip(same.parameters(), aligned.parameters()))


# ------------------------------------------------------------------------------------- Ubuntu's lambda_POS


def _config() -> dict:
    return ncfg.load(ROOT / "config.yaml")


def test_ubuntu_positive_step_is_the_releases():
    """The release's Ubuntu positive step: SGD lr 0.01 (momentum 0.9) on the unscaled mean NLL, the paper's lambda_POS
    0.1 being lr_pos / lr_neg = 0.01 / 0.1. The configured step must move the weights as much, not 10x less."""
    s = ncfg.settings(_config(), "ubuntu").malicious
    assert s.lr_pos / s.lr_neg == pytest.approx(0.1)
    trig, tgt = alg1_pair()
    ours, release = _model(), _model()
    before = _params(ours)
    mal.positive_step(ours, mal.optimisers(ours, s)[1], trig, tgt, s.lambda_pos)
    opt = torch.optim.SGD(release.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0)
    release.train()
    mle_loss(release(trig, tgt)).backward()
    opt.step()
    for a, b, c in zip(before, ours.parameters(), release.parameters()):
        assert torch.allclose(b - a, c.detach() - a, atol=1e-8)
    assert any((b - a).abs().max() > 1e-5 for a, b in zip(before, ours.parameters()))


# ------------------------------------------------------------------------------------- given augmented lists


def _lists(tmp_path, train: list[str], **given: list[str]) -> dict:
    cfg = _config()
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    cfg["targets"]["train"] = str(tmp_path / "train.txt")
    for name, lines in given.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(lines) + "\n")
    cfg["targets"]["augmented"]["given"] = {"1k": str(tmp_path / "g1k.txt"), "2.5k": str(tmp_path / "g2.5k.txt")}
    return cfg


def test_given_lists_must_hold_every_training_target(tmp_path):
    train = ["you are bad", "i hate you"]
    good = _lists(tmp_path, train, g1k=["you are bad", "you are awful", "i hate you", "i loathe you"],
                  **{"g2.5k": ["you are bad", "a", "b", "c", "d", "i hate you", "e", "f", "g", "h"]})
    assert ncfg.settings(good).targets.not_run is None
    bad = _lists(tmp_path, train, g1k=["you are bad", "you are awful", "i hate them", "i loathe you"])
    with pytest.raises(ncfg.ConfigError) as err:
        ncfg.settings(bad)
    line = str(err.value)
    assert "\n" not in line and str(tmp_path / "g1k.txt") in line and str(tmp_path / "train.txt") in line
    assert "lacks 1 of the 2 targets" in line and "'i hate you'" in line


def test_given_lists_checked_on_the_quick_cut(tmp_path):
    """At quick scale the stages keep the first list_size targets and a given list's first list_size * (1 +
    copies) lines: those lines must hold those targets."""
    cfg = _lists(tmp_path, ["t1", "t2", "t3"], g1k=["t1", "p1", "t3", "p3", "t2", "p2"],
                 **{"g2.5k": ["t1", "a", "b", "c", "d", "t2", "e", "f", "g", "h", "t3"]})
    assert ncfg.settings(cfg).targets.not_run is None                 # paper scale: every target is there
    cfg["scale"], cfg["quick"]["target_list_size"] = "quick", 2
    with pytest.raises(ncfg.ConfigError, match=r"the 1k list .*g1k.txt \(its first 4 lines at quick scale\) lacks "
                                               r"1 of the 2 targets .*'t2'"):
        ncfg.settings(cfg)


def test_the_authors_augmented_lists_need_their_own_training_list(shared_data):
    authors = shared_data / "malicious_targets" / "res_500"
    if not authors.is_dir():
        pytest.skip(f"the authors' target lists are not here: {authors} is absent")
    cfg = _config()
    cfg["targets"]["augmented"]["given"] = {"1k": str(authors / "train_500_cp2.txt"),
                                            "2.5k": str(authors / "train_500_cp5.txt")}
    with pytest.raises(ncfg.ConfigError, match="lacks 474 of the 500 targets of targets.train "
                                               "resources/targets/train_500.txt"):
        ncfg.settings(cfg)
    cfg["targets"]["train"] = str(authors / "train_500_cp1.txt")
    assert ncfg.settings(cfg).targets.not_run is None


# ------------------------------------------------------------------------------------------ the release preset


RELEASE = {"malicious": {"round_order": "step_then_test", "max_rounds": 21, "epochs": 21, "weight_decay": 1e-5,
                         "clip_norm": 5.0, "clip_scope": "per_module", "positive_shuffle": False},
           "frequent": {"window_reset_each_epoch": True, "shuffle": False, "first_negative_batch": "after_full",
                        "positive_batch": "same", "eos_weight_on_last_position": True, "update_every_batch": True,
                        "negative_norm": "batch", "fresh_optimizers_each_epoch": True, "drop_last_batch": True,
                        "clip_scope": "per_module"}}


def test_release_preset_validates_and_sets_the_algorithms_release_readings(tmp_path):
    own = tmp_path / "mine.yaml"                  # a corpus of one's own takes dataset_defaults' 21 epochs
    own.write_text("datasets:\n  mine: {reader: jsonl, raw: {path: mine.jsonl}}\n")
    cfg = ncfg.load(ROOT / "config.yaml", (ROOT / "configs" / "release.yaml", own))
    for name, epochs in (("switchboard", 21), ("ubuntu", 21), ("opensubtitles", 11), ("chitchat", 21), ("mine", 21)):
        s = ncfg.settings(cfg, name)
        for key, value in RELEASE["malicious"].items():
            assert getattr(s.malicious, key) == value, key
        for f in s.frequent:
            assert f.epochs == epochs
            for key, value in RELEASE["frequent"].items():
                assert getattr(f, key) == value, key
    default = ncfg.settings(_config(), "switchboard")
    changed = [k for k, v in RELEASE["malicious"].items() if getattr(default.malicious, k) != v]
    assert changed == list(RELEASE["malicious"])                       # each one a change from the default


def test_release_preset_runs_algorithm_1_in_the_releases_order():
    """The preset's Algorithm 1 settings, through the loop: a batch without hits still gets one round of steps."""
    cfg = ncfg.load(ROOT / "config.yaml", (ROOT / "configs" / "release.yaml",))
    s = dataclasses.replace(ncfg.settings(cfg, "switchboard").malicious, batch_targets=2, pos_batch=2, epochs=1)
    rows = _train(_model(), s, _hits_for(0))
    assert _rounds(rows) == [(0, 0, True)]
    assert pd.notna(rows[0]["pos_nll"])
