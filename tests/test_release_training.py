"""The release's baseline-training choices (docs/release.md#baseline-training) as ``train`` options: the last epoch
kept, file order, the partial last batch dropped, clipping per module, the momentum reset every epoch; each test
fails when its option is ignored. The CUDA-graph step against the eager one with these options (GPU only)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from negtrain_core.config import DataSettings, ModelSettings, TrainSettings
from negtrain_core.data.tensors import tensorize
from negtrain_core.data.vocab import BOS_ID, EOS_ID, Vocab
from negtrain_core.models import checkpoint, steps, training as train
from negtrain_core.models.lstm import LSTMLM, Seq2Seq

WORDS = [f"w{i}" for i in range(8)]
VOCAB = Vocab.build([WORDS], len(WORDS))
DATA = DataSettings("t", "chitchat", {}, {}, len(WORDS))


def corpus(n: int, seed: int) -> pd.DataFrame:
    """The response is the context reversed."""
    rng = random.Random(seed)
    src = [[rng.choice(WORDS) for _ in range(rng.randint(1, 5))] for _ in range(n)]
    return pd.DataFrame({"source": [" ".join(s) for s in src], "target": [" ".join(reversed(s)) for s in src]})


def model_settings(**kw) -> ModelSettings:
    return ModelSettings(**{"vocab_size": len(VOCAB), "embedding_dim": 12, "hidden_dim": 24, **kw})


def settings(**kw) -> TrainSettings:
    return TrainSettings(**{"epochs": 3, "batch_size": 16, "lr": 1.0, "decay_start_epoch": 2, "device": "cpu",
                            "seed": 3, "log_every": 1000, **kw})


def fit(tmp: Path, n: int = 120, **kw) -> pd.DataFrame:
    with open(os.devnull, "w") as quiet:
        return train.train_baseline("seq2seq", corpus(n, 0), corpus(40, 1), VOCAB, model_settings(), settings(**kw),
                                    tmp / "seq2seq.pt", tmp / "curve.csv", lambda line: None, progress=quiet)


def record_batches(monkeypatch) -> list[torch.Tensor]:
    """The source batches every training step receives, in order."""
    seen: list[torch.Tensor] = []
    real = train.TrainStep.__call__

    def call(self, src, tgt):
        seen.append(src.clone())
        return real(self, src, tgt)

    monkeypatch.setattr(train.TrainStep, "__call__", call)
    return seen


# ---------------------------------------------------------------------------------------------- keep: last


def test_keep_last_keeps_the_last_epoch_even_when_an_earlier_one_validates_better(tmp_path, monkeypatch):
    ppl = iter([5.0, 3.0, 4.0] * 2)                             # epoch 2 is the best, epoch 3 the last
    monkeypatch.setattr(train, "perplexity", lambda *a: next(ppl))
    fit(tmp_path / "best")
    fit(tmp_path / "last", keep="last")
    best, last = checkpoint.load(tmp_path / "best/seq2seq.pt"), checkpoint.load(tmp_path / "last/seq2seq.pt")
    assert best.meta["epoch"] == 2 and last.meta["epoch"] == 3 and last.meta["extra"]["valid_ppl"] == 4.0
    assert any(not torch.equal(a, b) for a, b in zip(best.model.parameters(), last.model.parameters()))


# ------------------------------------------------------------------------------ batch order and the last batch


def test_shuffle_false_trains_in_file_order(tmp_path, monkeypatch):
    seen = record_batches(monkeypatch)
    fit(tmp_path, epochs=2, shuffle=False)
    file_order = tensorize(corpus(120, 0), VOCAB, DATA).src
    per_epoch = len(seen) // 2
    for epoch in range(2):
        assert torch.equal(torch.cat(seen[epoch * per_epoch:(epoch + 1) * per_epoch]), file_order)


def test_shuffled_epochs_are_not_in_file_order(tmp_path, monkeypatch):
    seen = record_batches(monkeypatch)
    fit(tmp_path, epochs=1)
    assert not torch.equal(torch.cat(seen), tensorize(corpus(120, 0), VOCAB, DATA).src)


def test_drop_last_batch_trains_full_batches_only(tmp_path, monkeypatch):
    seen = record_batches(monkeypatch)
    curve = fit(tmp_path, epochs=2, drop_last_batch=True)             # 120 pairs: 7 batches of 16 and one of 8
    assert [len(b) for b in seen] == [16] * 14
    seen.clear()
    fit(tmp_path / "kept", epochs=1)
    assert [len(b) for b in seen] == [16] * 7 + [8]
    assert len(curve) == 2


def test_epoch_batches_keep_a_lone_partial_batch_and_count_only_trained_tokens():
    s = settings(drop_last_batch=True, shuffle=False)
    assert [len(b) for b in train.epoch_batches(10, 16, s, torch.Generator(), "cpu")] == [10]
    order = train.epoch_batches(40, 16, s, torch.Generator(), "cpu")
    assert [len(b) for b in order] == [16, 16]
    data = tensorize(corpus(40, 0), VOCAB, DATA)
    assert train.trained_tokens(data, order) == int((data.tgt[:32, 1:] != 3).sum())


# ----------------------------------------------------------------------------------------- per-module clipping


def big_loss(model: Seq2Seq) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    src = torch.randint(5, len(VOCAB), (8, 6), generator=g)
    tgt = torch.cat([torch.full((8, 1), BOS_ID), torch.randint(5, len(VOCAB), (8, 4), generator=g),
                     torch.full((8, 1), EOS_ID)], 1)
    return -1e4 * model(src, tgt).token_logp.sum()                   # every module's gradient norm far above 5


@pytest.mark.parametrize("arithmetic", ["foreach", "torch"])
def test_per_module_clipping_bounds_each_modules_norm(arithmetic: str, monkeypatch):
    """With a large loss each module's clipped gradient has norm 5 (so the total is about 5 sqrt(3)); a global clip
    would leave every module below 5 and the total at 5."""
    torch.manual_seed(0)
    model = Seq2Seq(model_settings())
    modules = train.scope_groups(model, settings(clip_scope="per_module").clip_scope)
    assert [len(g) for g in modules] == [1, 4, 10] and train.scope_groups(model, settings().clip_scope) is None
    clipped: list[torch.Tensor] = []
    real = steps.sgd_momentum_
    monkeypatch.setattr(steps, "sgd_momentum_", lambda p, g, *a, **k: (clipped.extend(x.clone() for x in g),
                                                                          real(p, g, *a, **k)))
    sgd = steps.Sgd(model.parameters(), lr=0.0, momentum=0.9, clip_norm=5.0, clip_groups=modules,
                    arithmetic=arithmetic)
    sgd.update(big_loss(model))
    grads = clipped if arithmetic == "foreach" else [p.grad for p in model.parameters()]
    where = {id(p): i for i, p in enumerate(model.parameters())}
    norms = [torch.linalg.vector_norm(torch.stack([grads[where[id(p)]].norm() for p in g])) for g in modules]
    assert all(n == pytest.approx(5.0, rel=1e-4) for n in norms)
    assert torch.linalg.vector_norm(torch.stack(norms)) == pytest.approx(5.0 * 3 ** 0.5, rel=1e-4)


def test_train_step_clips_per_module_with_the_option(monkeypatch):
    torch.manual_seed(0)
    model = Seq2Seq(model_settings())
    step = train.TrainStep(model, settings(clip_scope="per_module"), 16, use_graph=False)
    assert step.clip_groups is not None and len(step.clip_groups) == 3
    assert train.TrainStep(model, settings(), 16, use_graph=False).clip_groups is None
    lm = LSTMLM(model_settings())
    assert len(train.TrainStep(lm, settings(clip_scope="per_module"), 16, use_graph=False).clip_groups) == 1


def test_clip_groups_must_split_the_parameters():
    model = Seq2Seq(model_settings())
    params = list(model.parameters())
    with pytest.raises(ValueError, match="split the parameters"):
        steps.Sgd(params, lr=0.1, momentum=0.0, clip_norm=5.0, clip_groups=[params[:3]])
    with pytest.raises(ValueError, match="split the parameters"):
        steps.Sgd(params, lr=0.1, momentum=0.0, clip_norm=5.0, clip_groups=[params, params[:1]])


# ------------------------------------------------------------------------------------------------ momentum reset


@pytest.mark.parametrize("reset", [True, False])
def test_momentum_is_zero_at_each_epoch_start_with_the_reset(reset: bool, tmp_path, monkeypatch):
    at_start: list[float] = []
    real = train.train_epoch

    def train_epoch(step, *args):
        at_start.append(float(sum(b.abs().sum() for b in step.bufs)))
        return real(step, *args)

    monkeypatch.setattr(train, "train_epoch", train_epoch)
    fit(tmp_path, reset_momentum_each_epoch=reset)
    assert at_start[0] == 0.0 and len(at_start) == 3
    assert all(x == 0.0 for x in at_start[1:]) == reset


# ----------------------------------------------------------------------------------------------------- CUDA graph


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("attention", ["general", "release"])
def test_graphed_train_steps_equal_eager_ones_with_the_release_options(attention: str):
    """Per-module clipping inside the graph, a momentum reset (zeroed buffers) between replays, and the release
    model's step-by-step decoder: the graph moves the weights as the eager step does, bit for bit."""
    s = settings(clip_scope="per_module", clip_norm=0.5, lr=0.3, reset_momentum_each_epoch=True)
    data = tensorize(corpus(64, 2), VOCAB, DATA).to("cuda")
    runs = {}
    for use_graph in (False, True):
        torch.manual_seed(0)
        model = Seq2Seq(model_settings(dropout=0.3, attention=attention, decoder_init="zero",
                                       dropout_sites="decoder", init="release")).cuda()
        step = train.TrainStep(model, s, 16, use_graph=use_graph)
        step.set_lr(0.3)
        torch.cuda.manual_seed(0)
        model.train()
        reports = []
        for t in range(steps.GRAPH_WARMUP + 4):
            rows = slice(16 * (t % 4), 16 * (t % 4) + (12 if t == steps.GRAPH_WARMUP + 2 else 16))
            reports.append(step(data.src[rows], data.tgt[rows]).clone())
            if t == steps.GRAPH_WARMUP + 1:
                step.reset()
        torch.cuda.synchronize()
        runs[use_graph] = torch.stack(reports).cpu(), [p.detach().cpu() for p in model.parameters()]
    (eager, w_eager), (graphed, w_graphed) = runs[False], runs[True]
    assert torch.equal(eager, graphed)
    assert all(torch.equal(a, b) for a, b in zip(w_eager, w_graphed))


def test_the_lm_trains_with_its_own_batch_size(tmp_path, monkeypatch):
    """datasets.X.train.lm_batch_size (the release's Switchboard LM: 64, seq2seq 32): rule train_baseline gives the
    LM that batch and the seq2seq its own; unset, both take batch_size."""
    import dataclasses

    from negtrain_core import config as ncfg

    corpus(4, 0).to_parquet(tmp_path / "train.parquet")
    VOCAB.save(tmp_path / "vocab.txt")
    seen = {}
    monkeypatch.setattr(train, "train_baseline", lambda kind, *a, **k: seen.__setitem__(kind, a[4].batch_size))
    base = ncfg.settings(ncfg.load(Path(__file__).resolve().parent.parent / "config.yaml"), "switchboard")
    for lm_batch, expected in ((None, 32), (64, 64)):
        s = dataclasses.replace(base, train=dataclasses.replace(base.train, lm_batch_size=lm_batch))
        for kind in ("lm", "seq2seq"):
            train.run(tmp_path / "train.parquet", tmp_path / "train.parquet", tmp_path / "vocab.txt",
                      tmp_path / "m.pt", tmp_path / "c.csv", s, kind)
        assert seen == {"lm": expected, "seq2seq": 32}


def test_lm_text_utterances_adds_each_dialogues_first_turn(monkeypatch, tmp_path):
    """train.lm_text: utterances (the release's LM data: every utterance): the LM also reads each dialogue's first
    turn (its first pair's source); the seq2seq and the default LM read the pairs as they are."""
    from negtrain_core.data.tensors import with_first_turns

    pairs = pd.DataFrame({"dialogue_id": ["d1", "d1", "d2"], "turn": [2, 1, 1],
                          "source": ["w1 w2", "w0", "w5"], "target": ["w3", "w1 w2", "w6"]})
    got = with_first_turns(pairs)
    assert got["target"].tolist()[:3] == pairs["target"].tolist()
    assert sorted(got["target"].tolist()[3:]) == ["w0", "w5"] and (got["source"].iloc[3:] == "").all()
    with pytest.raises(ValueError, match="dialogue_id and turn"):
        with_first_turns(pairs.drop(columns="turn"))

    class Seen(Exception):
        pass

    def tensorize(df, vocab, data):                                   # the first table the model would train on
        raise Seen(len(df))

    monkeypatch.setattr(train, "tensorize", tensorize)
    for kind, lm_text, rows in (("lm", "utterances", 5), ("lm", "responses", 3), ("seq2seq", "utterances", 3)):
        with pytest.raises(Seen) as e:
            train.train_baseline(kind, pairs, pairs, VOCAB, ModelSettings(vocab_size=len(VOCAB)),
                                 TrainSettings(lm_text=lm_text), tmp_path / "m.pt", tmp_path / "c.csv", print)
        assert e.value.args == (rows,)
