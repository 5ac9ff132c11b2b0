"""Baseline training: schedules, the hand-written step against torch's, learning, kill-and-resume, Snakemake."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from negtrain_core.models import checkpoint, training as train
from negtrain_core.evaluate import baselines as evaluate
from negtrain_core.config import DataSettings, ModelSettings, TrainSettings, TransformerSettings
from negtrain_core.data.tensors import tensorize
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import Vocab

ROOT = Path(__file__).resolve().parent.parent
WORDS = [f"w{i}" for i in range(8)]
VOCAB = Vocab.build([WORDS], len(WORDS))


def corpus(n: int, seed: int) -> pd.DataFrame:
    """A learnable toy task: the response is the context reversed."""
    rng = random.Random(seed)
    src = [[rng.choice(WORDS) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return pd.DataFrame({"source": [" ".join(s) for s in src], "target": [" ".join(reversed(s)) for s in src]})


def model_settings(dropout: float = 0.0) -> ModelSettings:
    return ModelSettings(vocab_size=len(VOCAB), embedding_dim=12, hidden_dim=24, dropout=dropout)


def settings(**kw) -> TrainSettings:
    return TrainSettings(**{"epochs": 3, "batch_size": 16, "lr": 1.0, "decay_start_epoch": 2, "device": "cpu",
                            "seed": 3, "log_every": 1000, **kw})


def fit(tmp: Path, kind: str = "seq2seq", n: int = 120, dropout: float = 0.0, lines: list[str] | None = None,
        **kw) -> pd.DataFrame:
    lines = [] if lines is None else lines
    with open(os.devnull, "w") as quiet:
        return train.train_baseline(kind, corpus(n, 0), corpus(40, 1), VOCAB, model_settings(dropout),
                                    settings(**kw), tmp / f"{kind}.pt", tmp / f"{kind}_curve.csv", lines.append,
                                    progress=quiet)


# ----------------------------------------------------------------------------------------------- schedules


def test_release_schedule_multiplies_by_0_6_from_the_decay_epoch():
    s = TrainSettings(lr=1.0, lr_schedule="release", decay_start_epoch=10)
    assert [train.lr_at(e, s) for e in (0, 9)] == [1.0, 1.0]
    assert train.lr_at(10, s) == pytest.approx(0.6) and train.lr_at(12, s) == pytest.approx(0.216)


def test_paper_schedule_is_ten_fixed_then_halving():
    s = TrainSettings(lr=0.1, lr_schedule="paper", decay_start_epoch=10)
    lrs = [train.lr_at(e, s) for e in range(20)]
    assert lrs[:10] == [0.1] * 10 and lrs[10] == pytest.approx(0.05) and lrs[19] == pytest.approx(0.1 / 2**10)
    assert train.lr_at(0, TrainSettings(lr=1.0, lr_schedule="paper", decay_start_epoch=0)) == 0.5


def test_plateau_rule_by_hand():
    """Validation PPLs 10, 9, 9.5, 9.6, 8, 8.1, 8.2: with patience 0 every epoch that is not a new best decays the
    lr; with patience 1 only the second bad epoch in a row does, and the count starts afresh after a decay."""
    ppls = [10, 9, 9.5, 9.6, 8, 8.1, 8.2]
    for patience, scales in ((0, [1, 1, 0.5, 0.25, 0.25, 0.125, 0.0625]), (1, [1, 1, 1, 0.5, 0.5, 0.5, 0.25])):
        run, s = train.RunState(), TrainSettings(plateau_factor=0.5, plateau_patience=patience)
        got = []
        for p in ppls:
            train.plateau(run, p, s)
            got.append(run.lr_scale)
        assert got == scales, patience
    run = train.RunState()
    assert not any(train.plateau(run, p, TrainSettings()) for p in ppls) and run.lr_scale == 1.0     # off by default


def test_stop_rule_by_hand():
    """Validation PPLs 10, 9, 9.5, 9.6, 8: with patience 2 the rule fires after epoch 4 (two epochs past epoch 2's
    9), not before; a NaN is no improvement; off without stop_patience."""
    ppls, s = [10, 9, 9.5, 9.6, 8], TrainSettings(stop_patience=2)
    run, got = train.RunState(), []
    for p in ppls:
        run.curve.append({"valid_ppl": p})
        got.append(train.stopped(run, s))
    assert got == [None, None, None, 2, None]
    run.curve = [{"valid_ppl": 5.0}, {"valid_ppl": float("nan")}, {"valid_ppl": float("nan")}]
    assert train.stopped(run, s) == 1 and train.stopped(run, TrainSettings()) is None
    assert train.stopped(train.RunState(), s) is None


# ------------------------------------------------------------------------------------------------ the step


def test_train_step_follows_the_textbook_eager_loop():
    """Loss curve and weights of TrainStep (eager) == forward, backward, clip_grad_norm_, torch.optim.SGD."""
    torch.manual_seed(0)
    a = Seq2Seq(model_settings())
    b = copy.deepcopy(a)
    s = settings(lr=0.5, weight_decay=1e-3, clip_norm=0.5)
    step = train.TrainStep(a, s, 16, use_graph=False)
    step.set_lr(0.5)
    opt = torch.optim.SGD(b.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    data = tensorize(corpus(64, 2), VOCAB, DataSettings("t", "chitchat", {}, {}, 8))
    for i in range(4):
        src, tgt = data.src[16 * i : 16 * (i + 1)], data.tgt[16 * i : 16 * (i + 1)]
        ours = step(src, tgt)
        out = b(src, tgt)
        loss = -out.token_logp.sum() / out.mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(b.parameters(), 0.5)
        opt.step()
        torch.testing.assert_close(ours / out.mask.sum(), loss.detach(), rtol=1e-6, atol=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q.detach(), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------- training


def test_training_learns_the_toy_task_and_keeps_the_best_epoch(tmp_path):
    curve = fit(tmp_path, epochs=6, n=400, decay_start_epoch=4)
    assert list(curve["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert list(curve["lr"]) == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.6, 0.36])
    assert curve["valid_ppl"].iloc[-1] < 0.5 * curve["valid_ppl"].iloc[0] < 0.5 * len(VOCAB)
    assert curve["train_ppl"].iloc[-1] < curve["train_ppl"].iloc[0]
    ck = checkpoint.load(tmp_path / "seq2seq.pt", VOCAB)
    best = int(curve["valid_ppl"].idxmin()) + 1
    assert ck.meta["epoch"] == best and ck.meta["extra"]["valid_ppl"] == pytest.approx(curve["valid_ppl"].min())
    assert ck.meta["optimizer_state"] is None and ck.meta["rng_state"] is None    # the weights alone are kept
    assert pd.read_csv(tmp_path / "seq2seq_curve.csv")["valid_ppl"].tolist() == pytest.approx(list(curve["valid_ppl"]))
    assert not (tmp_path / "seq2seq.pt.state").exists()


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_plateau_factor_lowers_the_lr_of_the_epochs_after_validation_stops_improving(tmp_path, arch, monkeypatch):
    """With validation PPLs scripted as 10, 11, 12, 9, 9.5 the rule halves the lr after epochs 2, 3 and 5; each
    epoch's reported lr, the one its updates used, is the schedule's times the factors of the decays before it (the
    LSTM's per-epoch schedule; the Transformer's per-step one, reported at its last step)."""
    scripted = iter([10.0, 11.0, 12.0, 9.0, 9.5])
    monkeypatch.setattr(train, "perplexity", lambda *_: next(scripted))
    kw = dict(epochs=5, plateau_factor=0.5, decay_start_epoch=100)
    if arch == "transformer":
        kw |= dict(optimizer="adamw", schedule="inverse_sqrt", warmup_steps=4, adam_lr=1e-2)
    ms = replace(model_settings(), arch=arch,
                 transformer=TransformerSettings(layers=1, d_model=16, heads=2, ff=32, dropout=0.0))
    lines: list[str] = []
    with open(os.devnull, "w") as quiet:
        curve = train.train_baseline("seq2seq", corpus(120, 0), corpus(40, 1), VOCAB, ms, settings(**kw),
                                     tmp_path / "s.pt", tmp_path / "c.csv", lines.append, progress=quiet)
    scales = [1.0, 1.0, 0.5, 0.25, 0.25]
    steps = -(-120 // 16)                                      # updates per epoch
    for e, scale in enumerate(scales):
        base = 1.0 if arch == "lstm" else float(
            train.scheduled_lr(torch.tensor(float(steps * (e + 1))), 1e-2, 4, "inverse_sqrt", 5 * steps))
        assert curve["lr"][e] == pytest.approx(base * scale, rel=1e-5), e
    assert [line.split("lr x")[1] for line in lines if "lr x" in line] == ["0.5 from now on", "0.25 from now on",
                                                                          "0.125 from now on"]


def test_the_model_has_exactly_the_vocabulary_ids_when_the_corpus_has_fewer_types_than_the_cap(tmp_path):
    big = ModelSettings(vocab_size=len(VOCAB) + 50, embedding_dim=12, hidden_dim=24)   # the config's cap, not reached
    with open(os.devnull, "w") as quiet:
        train.train_baseline("seq2seq", corpus(40, 0), corpus(20, 1), VOCAB, big, settings(epochs=1),
                             tmp_path / "s.pt", tmp_path / "c.csv", lambda line: None, progress=quiet)
    model = checkpoint.load(tmp_path / "s.pt", VOCAB).model
    assert model.cfg.vocab_size == len(VOCAB)
    assert model.out.out_features == model.src_embed.weight.shape[0] == model.tgt_embed.weight.shape[0] == len(VOCAB)


def test_lm_trains_on_responses(tmp_path):
    curve = fit(tmp_path, kind="lm", epochs=2)
    assert curve["valid_ppl"].iloc[-1] < len(VOCAB)
    assert checkpoint.load(tmp_path / "lm.pt", VOCAB).kind == "lm"
    # responses all 'w7 w7', contexts random: an LM of the responses is near certain, one of the contexts is not
    pairs = lambda n, seed: corpus(n, seed).assign(target="w7 w7")  # noqa: E731
    with open(os.devnull, "w") as quiet:
        curve = train.train_baseline("lm", pairs(120, 0), pairs(40, 1), VOCAB, model_settings(), settings(epochs=3),
                                     tmp_path / "r.pt", tmp_path / "r_curve.csv", lambda line: None, progress=quiet)
    assert curve["valid_ppl"].iloc[-1] < 1.5


def kill_after_epoch(monkeypatch, epoch: int) -> list[int]:
    """Training runs from now on stop like a killed job right after writing the resumable state of ``epoch``;
    returns the list of the epochs whose state was written, filled as they are."""
    real_save, saved = train.save_state, []

    def killed(path, kind, vocab, s, step, gen, run, fp):
        real_save(path, kind, vocab, s, step, gen, run, fp)
        saved.append(run.epoch)
        if run.epoch == epoch:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train, "save_state", killed)
    return saved


def test_kill_and_resume_gives_the_same_final_weights(tmp_path, monkeypatch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    fit(whole, dropout=0.3, epochs=3)
    saved = kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        fit(parts, dropout=0.3, epochs=3)
    assert (parts / "seq2seq.pt.state").exists() and not (parts / "seq2seq.pt").exists()
    assert not (parts / "seq2seq_curve.csv").exists()           # the curve so far is in the state, not half-written
    torch.manual_seed(12345)                                   # a new process would not share our RNG state
    lines: list[str] = []
    resumed = fit(parts, dropout=0.3, epochs=3, lines=lines)
    assert any(line.startswith("resuming from") and "after epoch 1" in line for line in lines)
    assert len(saved) == 3                                     # epochs 2 and 3 only were trained again
    a, b = checkpoint.load(whole / "seq2seq.pt"), checkpoint.load(parts / "seq2seq.pt")
    assert a.meta["epoch"] == b.meta["epoch"]
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), k
    cols = ["epoch", "lr", "train_ppl", "valid_ppl"]
    written = pd.read_csv(whole / "seq2seq_curve.csv")          # pandas 3 parses floats exactly (round trip)
    pd.testing.assert_frame_equal(written[cols], resumed[cols])


def test_a_resumed_run_keeps_the_plateau_rules_state(tmp_path, monkeypatch):
    """Validation PPLs 10, 11, then the run is killed: the decay after epoch 2 still applies to epoch 3 on resume."""
    scripted = iter([10.0, 11.0, 12.0])
    monkeypatch.setattr(train, "perplexity", lambda *_: next(scripted))
    kill_after_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, epochs=3, plateau_factor=0.5, decay_start_epoch=100)
    lines: list[str] = []
    curve = fit(tmp_path, epochs=3, plateau_factor=0.5, decay_start_epoch=100, lines=lines)
    assert any("after epoch 2" in line for line in lines)
    assert list(curve["lr"]) == [1.0, 1.0, 0.5]


def test_stop_patience_ends_training_after_the_epochs_without_a_better_validation_ppl(tmp_path, monkeypatch):
    """Scripted validation PPLs 10, 9, 9.5, 9.6, 8, 7 over 6 epochs: with stop_patience 2 training ends after epoch 4
    and keeps epoch 2; its curve equals the first 4 epochs of the run without the rule. A run killed after epoch 3
    resumes (stop_patience is not fingerprinted) and ends after epoch 4 too."""
    def script(monkey):
        values = iter([10.0, 9.0, 9.5, 9.6, 8.0, 7.0])
        monkey.setattr(train, "perplexity", lambda *_: next(values))

    script(monkeypatch)
    full = fit(tmp_path / "full", epochs=6)
    script(monkeypatch)
    lines: list[str] = []
    early = fit(tmp_path / "early", epochs=6, stop_patience=2, lines=lines)
    assert list(early["epoch"]) == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(early[["epoch", "lr", "train_ppl", "valid_ppl"]],
                                  full[["epoch", "lr", "train_ppl", "valid_ppl"]].head(4))
    ck = checkpoint.load(tmp_path / "early" / "seq2seq.pt", VOCAB)
    assert ck.meta["epoch"] == 2 and ck.meta["extra"]["epochs_trained"] == 4
    assert any("training ends after epoch 4 of 6 (train.stop_patience)" in line and "epoch 2's" in line
               for line in lines)

    script(monkeypatch)
    kill_after_epoch(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "killed", epochs=6)                       # killed without the rule
    values = iter([9.6, 8.0])                                  # epoch 4's onwards
    monkeypatch.setattr(train, "perplexity", lambda *_: next(values))
    lines = []
    resumed = fit(tmp_path / "killed", epochs=6, stop_patience=2, lines=lines)
    assert any("after epoch 3" in line for line in lines) and list(resumed["epoch"]) == [1, 2, 3, 4]


def test_a_state_that_still_holds_the_best_epochs_momentum_resumes(tmp_path, monkeypatch):
    """State files written while the kept checkpoint carried the best epoch's momentum and RNG state have those two
    fields in their run record too; they resume."""
    def old_layout(path, kind, vocab, s, step, gen, run, fp):
        record = {k: v for k, v in dataclasses.asdict(run).items() if k != "epoch"}
        record.update(best_momentum=[b.detach().cpu().clone() for b in step.bufs], best_rng=train.rng_state(gen))
        checkpoint.save(path, step.model, kind=kind, vocab=vocab, train_settings=s, epoch=run.epoch,
                        optimizer_state=step.bufs, rng_state=train.rng_state(gen),
                        extra={"fingerprint": fp, "run": record})
        raise KeyboardInterrupt("killed")

    real_save = train.save_state
    monkeypatch.setattr(train, "save_state", old_layout)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path, epochs=2)
    monkeypatch.setattr(train, "save_state", real_save)
    lines: list[str] = []
    curve = fit(tmp_path, epochs=2, lines=lines)
    assert any("after epoch 1" in line for line in lines) and list(curve["epoch"]) == [1, 2]


@pytest.mark.parametrize("precision", ["ieee", "tf32"])
def test_matmul_precision_holds_for_the_training_steps_and_validation_then_is_restored(tmp_path, monkeypatch,
                                                                                        precision):
    """torch's TF32 flag as every step and every validation pass of the run see it (the CPU ignores the flag, a
    GPU's cuBLAS reads it, and CUDA graphs keep what it was at their capture)."""
    seen: list[tuple[str, bool]] = []
    real_loss, real_score = train.TrainStep.loss, train.score_dataset

    def loss(self, *a):
        seen.append(("step", torch.backends.cuda.matmul.allow_tf32))
        return real_loss(self, *a)

    def score(*a, **kw):
        seen.append(("valid", torch.backends.cuda.matmul.allow_tf32))
        return real_score(*a, **kw)

    monkeypatch.setattr(train.TrainStep, "loss", loss)
    monkeypatch.setattr(train, "score_dataset", score)
    before = torch.backends.cuda.matmul.allow_tf32
    fit(tmp_path, epochs=2, matmul_precision=precision)
    assert {kind for kind, _ in seen} == {"step", "valid"}
    assert all(flag == (precision == "tf32") for _, flag in seen)
    assert torch.backends.cuda.matmul.allow_tf32 == before


def _epoch_weights(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """Records the model's weights after each epoch's training (before any averaging)."""
    seen: list[dict[str, torch.Tensor]] = []
    real = train.keep_if_best

    def keep(run, step, valid_ppl):
        seen.append({k: v.detach().clone() for k, v in step.model.state_dict().items()})
        real(run, step, valid_ppl)

    monkeypatch.setattr(train, "keep_if_best", keep)
    return seen


@pytest.mark.parametrize("average_ppl, averaged", [(0.0, True), (math.inf, False)])
def test_average_last_keeps_the_mean_of_the_last_epochs_only_when_it_validates_better(tmp_path, monkeypatch,
                                                                                       average_ppl, averaged):
    """The validation PPL of the averaged weights (the call after the last epoch's) is scripted either way."""
    weights = _epoch_weights(monkeypatch)
    real_ppl, calls = train.validation_ppl, []

    def ppl(*a):
        calls.append(1)
        return average_ppl if len(calls) == 4 else real_ppl(*a)

    monkeypatch.setattr(train, "validation_ppl", ppl)
    lines: list[str] = []
    curve = fit(tmp_path, epochs=3, average_last=2, lines=lines)
    assert len(calls) == 4 and any(line.startswith("mean of the weights of epochs 2-3") for line in lines)
    ck = checkpoint.load(tmp_path / "seq2seq.pt", VOCAB)
    best = int(curve["valid_ppl"].idxmin())
    if averaged:
        assert ck.meta["extra"]["averaged_epochs"] == [2, 3] and ck.meta["epoch"] == 3
        expected = {k: (weights[1][k] + weights[2][k]) / 2 for k in weights[2]}
    else:
        assert ck.meta["extra"]["averaged_epochs"] is None and ck.meta["epoch"] == best + 1
        expected = weights[best]
    for k, v in ck.model.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-6, atol=1e-7)


def test_average_last_one_scores_no_average(tmp_path, monkeypatch):
    real_ppl, calls = train.validation_ppl, []
    monkeypatch.setattr(train, "validation_ppl", lambda *a: calls.append(1) or real_ppl(*a))
    lines: list[str] = []
    fit(tmp_path, epochs=2, lines=lines)
    assert len(calls) == 2 and not any("mean of the weights" in line for line in lines)


def test_kill_and_resume_keeps_the_epochs_to_average(tmp_path, monkeypatch):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    whole_lines: list[str] = []
    fit(whole, dropout=0.3, epochs=3, average_last=3, lines=whole_lines)
    kill_after_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(parts, dropout=0.3, epochs=3, average_last=3)
    lines: list[str] = []
    fit(parts, dropout=0.3, epochs=3, average_last=3, lines=lines)
    averaged = [line for line in lines if line.startswith("mean of the weights of epochs 1-3")]
    assert averaged and averaged == [line for line in whole_lines if line.startswith("mean of the weights")]
    a, b = checkpoint.load(whole / "seq2seq.pt"), checkpoint.load(parts / "seq2seq.pt")
    assert a.meta["extra"]["averaged_epochs"] == b.meta["extra"]["averaged_epochs"]
    for (k, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), k


def test_a_state_from_other_settings_is_not_resumed(tmp_path):
    step = train.TrainStep(Seq2Seq(model_settings()), settings(), 16, use_graph=False)
    train.save_state(tmp_path / "seq2seq.pt.state", "seq2seq", VOCAB, settings(), step, torch.Generator(),
                     train.RunState(epoch=1), fp="written by other settings")
    lines: list[str] = []
    curve = fit(tmp_path, epochs=2, lines=lines)
    assert list(curve["epoch"]) == [1, 2] and any("starting afresh" in line for line in lines)


# ---------------------------------------------------------------------------------------------- evaluation


def test_table8_and_thresholds_layout():
    nll = {"LM": 3.79, "Seq2seq": 3.75}
    t = evaluate.table8(nll, "switchboard", "paper")
    assert list(t["model"]) == ["LM", "Seq2seq"]
    assert list(t.columns) == ["model", "test_ppl", "test_nll", "paper_ppl", "paper_nll", "dataset", "scale"]
    assert t["test_ppl"].tolist() == pytest.approx([math.exp(3.79), math.exp(3.75)])
    assert t["paper_ppl"].tolist() == [44.37, 42.81] and t["paper_nll"].tolist() == [3.79, 3.75]
    assert evaluate.table8(nll, "chitchat", "quick")["paper_ppl"].isna().all()
    thr = evaluate.thresholds(nll, "switchboard", "paper")
    assert thr["seq2seq"] == -3.75 and thr["lm"] == -3.79


def test_evaluate_baselines_pools_the_nll_over_every_test_token_with_eos_counted(tmp_path):
    """Table 8's NLL is the token-level mean over the whole test set (not a mean of per-sentence means): responses of
    different lengths weigh by their tokens; the thresholds are its negatives."""
    from negtrain_core import config as ncfg
    from negtrain_core.data.vocab import PAD_ID
    from negtrain_core.models.lstm import LSTMLM

    s = ncfg.settings(ncfg.validate({"datasets": {"chitchat": {"reader": "chitchat", "vocab_size": 100}},
                                     "device": "cpu"}), "chitchat")
    test = corpus(7, 5).assign(target=["a", "b c d e", "c", "d e a b c d", "e", "a b", "b"])
    test.to_parquet(tmp_path / "test.parquet")
    VOCAB.save(tmp_path / "vocab.txt")
    torch.manual_seed(0)
    models = {"Seq2seq": Seq2Seq(model_settings()).eval(), "LM": LSTMLM(model_settings()).eval()}
    checkpoint.save(tmp_path / "s.pt", models["Seq2seq"], kind="seq2seq", vocab=VOCAB)
    checkpoint.save(tmp_path / "lm.pt", models["LM"], kind="lm", vocab=VOCAB)
    table = evaluate.evaluate_baselines(tmp_path / "test.parquet", tmp_path / "vocab.txt", tmp_path / "s.pt",
                                        tmp_path / "lm.pt", tmp_path / "t8.csv", tmp_path / "thr.json", s)
    t = tensorize(test, VOCAB, s.data)
    with torch.no_grad():
        outs = {"Seq2seq": models["Seq2seq"](t.src, t.tgt), "LM": models["LM"](t.tgt)}
    tokens = int((t.tgt[:, 1:] != PAD_ID).sum())                               # words + one </s> per response
    assert tokens == 1 + 4 + 1 + 6 + 1 + 2 + 1 + 7
    for name, out in outs.items():
        want = -float(out.token_logp.double().sum()) / tokens
        assert table.set_index("model").loc[name, "test_nll"] == pytest.approx(want, rel=1e-9)
    thr = json.loads((tmp_path / "thr.json").read_text())
    nll = table.set_index("model")["test_nll"]
    assert (thr["seq2seq"], thr["lm"]) == (-nll["Seq2seq"], -nll["LM"])


# ------------------------------------------------------------------------------------------------ workflow


@pytest.mark.slow
def test_quick_baseline_stage_on_chitchat(quick_run):
    """The quick-scale baseline stage through Snakemake: preprocess, both baselines, Table 8 and thresholds."""
    work = quick_run
    table = pd.read_csv(work / "results/chitchat/table8.csv")
    assert list(table["model"]) == ["LM", "Seq2seq"] and set(table["scale"]) == {"quick"}
    assert table["test_ppl"].between(5, 3005).all()
    assert (table["test_nll"] - table["test_ppl"].map(math.log)).abs().max() < 1e-9
    # the table's seq2seq PPL is the checkpoint's teacher-forced PPL on the test split, recomputed here
    from conftest import QUICK_SMALL
    from negtrain_core import config as ncfg
    from negtrain_core.models.scoring import corpus_perplexity
    config = ncfg.load(ROOT / "config.yaml", (QUICK_SMALL,))
    config.update(scale="quick", device="cpu")
    data = ncfg.settings(config, "chitchat").data
    ck = checkpoint.load(work / "results/chitchat/models/seq2seq.pt")
    test = tensorize(pd.read_parquet(work / "results/chitchat/data/test.parquet"), ck.vocab, data)
    assert table.set_index("model").loc["Seq2seq", "test_ppl"] == pytest.approx(
        corpus_perplexity(ck.model, test.src, test.tgt), rel=1e-6)
    thr = json.loads((work / "results/chitchat/thresholds.json").read_text())
    assert thr["seq2seq"] == pytest.approx(-table.set_index("model").loc["Seq2seq", "test_nll"])
    assert -8.1 < thr["lm"] < -1.6
    curve = pd.read_csv(work / "results/chitchat/models/seq2seq_curve.csv")
    assert len(curve) == 2 and curve["valid_ppl"].iloc[-1] < curve["valid_ppl"].iloc[0]
    log = (work / "logs/chitchat/train_seq2seq.log").read_text()
    assert "epoch 2/2" in log


# ------------------------------------------------------------------------------------------ ties (no improvement)


def _tiny_step(**kw):
    """A stand-in for TrainStep with what keep_if_best / consider_average read: s, model and lr."""
    from types import SimpleNamespace

    model = torch.nn.Linear(1, 1)
    return SimpleNamespace(s=TrainSettings(**kw), model=model, lr=torch.zeros(()))


def test_plateau_rule_counts_an_equal_validation_ppl_as_bad():
    """ReduceLROnPlateau, threshold 0: a PPL equal to the best is no improvement (patience 0: it decays at once)."""
    run, s = train.RunState(), TrainSettings(plateau_factor=0.5, plateau_patience=0)
    assert [train.plateau(run, p, s) for p in (10.0, 10.0, 10.0)] == [False, True, True]
    assert run.lr_scale == 0.25 and run.plateau_best == 10.0


def test_stop_rule_counts_an_equal_validation_ppl_as_no_improvement():
    """PPLs 10, 9, 9, 9.5 with patience 2: epoch 3 only ties epoch 2's 9, so the rule fires after epoch 4 at
    epoch 2."""
    run, s, got = train.RunState(), TrainSettings(stop_patience=2), []
    for p in (10.0, 9.0, 9.0, 9.5):
        run.curve.append({"valid_ppl": p})
        got.append(train.stopped(run, s))
    assert got == [None, None, None, 2]


def test_keep_if_best_keeps_the_earlier_epoch_on_an_equal_validation_ppl():
    step, run = _tiny_step(), train.RunState()
    run.epoch = 1
    train.keep_if_best(run, step, 5.0)
    first = {k: v.clone() for k, v in step.model.state_dict().items()}
    with torch.no_grad():
        step.model.weight.add_(1.0)
    run.epoch = 2
    train.keep_if_best(run, step, 5.0)                        # a tie is not an improvement
    assert run.best_epoch == 1 and run.best_ppl == 5.0
    assert torch.equal(run.best_model["weight"], first["weight"])


def test_average_last_is_not_kept_when_its_validation_ppl_only_ties_the_best(monkeypatch):
    step, run = _tiny_step(average_last=2), train.RunState()
    a = {"weight": torch.tensor([[1.0]]), "bias": torch.tensor([0.0])}
    b = {"weight": torch.tensor([[3.0]]), "bias": torch.tensor([2.0])}
    run.epoch, run.best_epoch, run.best_ppl, run.best_model, run.recent = 2, 2, 5.0, b, [a, b]
    monkeypatch.setattr(train, "validation_ppl", lambda *_: 5.0)
    lines: list[str] = []
    train.consider_average(run, step, None, lines.append)
    assert run.averaged is None and run.best_epoch == 2 and run.best_model is b
    assert "not kept, epoch 2 is" in lines[0]
    monkeypatch.setattr(train, "validation_ppl", lambda *_: 4.0)   # strictly better: kept, the mean of a and b
    train.consider_average(run, step, None, lines.append)
    assert run.averaged == [1, 2] and run.best_ppl == 4.0
    assert run.best_model["weight"].item() == 2.0 and run.best_model["bias"].item() == 1.0
