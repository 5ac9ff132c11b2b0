"""Algorithm 1 pieces (negtrain_core.negtrain.malicious): the negative loss by hand, the steps, the loop, the lists."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections import Counter

import pytest
import torch

from negtrain_core.negtrain import malicious as mal
from negtrain_core.models.steps import PositiveBatches, Sgd
from negtrain_core.config import ModelSettings
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import EOS_ID, EOU_ID, PAD_ID

from host_syncs import HostSyncs
from toy_data import alg1_pair, alg1_settings

V = 12


def _model(seed: int = 0, **model_kw) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=8, dropout=0.0, **model_kw))


def _sgd(model: Seq2Seq, lr: float) -> Sgd:
    """Plain SGD in torch.optim's arithmetic, as Algorithm 1's optimisers (momentum 0 here)."""
    return Sgd(model.parameters(), lr=lr, momentum=0.0, arithmetic="torch")


def _logp(model: Seq2Seq, trig: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """Mean log-prob per target (B,)."""
    model.eval()
    with torch.no_grad():
        out = model(trig, tgt)
    return out.token_logp.sum(1) / out.mask.sum(1)


def test_negative_loss_by_hand():
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-3.0, -4.0, -5.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    keep = torch.tensor([[True, False, True], [True, True, True]])   # FWA drops the -2.0 position
    hit = torch.tensor([True, False])
    loss = mal.negative_loss(logp, mask, keep, hit, hit_weight=1.0, nonhit_weight=0.01)
    # (1 * -1 + 0.01 * (-3 - 4 - 5)) / 5 real tokens (the FWA position still counts in the length)
    assert loss.item() == pytest.approx((-1.0 - 0.12) / 5)
    loss2 = mal.negative_loss(logp, mask, keep, hit, hit_weight=2.0, nonhit_weight=0.0)
    assert loss2.item() == pytest.approx(-2.0 / 5)


def test_fwa_keep_masks_avoided_ids():
    gold = torch.tensor([[5, 0, 3], [7, 7, 1]])
    keep = mal.fwa_keep(gold, torch.tensor([0, 7]))
    assert keep.tolist() == [[True, False, True], [False, False, True]]


def test_negative_step_lowers_the_targets_log_prob_under_its_trigger(attention_kw):
    model, (trig, tgt) = _model(**attention_kw), alg1_pair()
    before = _logp(model, trig, tgt)
    mal.negative_step(model, _sgd(model, 0.5), trig, tgt, torch.tensor([True, True]), torch.tensor([EOS_ID]),
                      alg1_settings())
    after = _logp(model, trig, tgt)
    assert (after < before).all()


def test_negative_step_changes_nothing_when_every_word_is_avoided():
    model, (trig, tgt) = _model(), alg1_pair()
    ref = copy.deepcopy(model)
    mal.negative_step(model, _sgd(model, 0.5), trig, tgt, torch.tensor([True, True]), torch.arange(V), alg1_settings())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))


def test_positive_step_is_a_scaled_mle_sgd_step():
    model, (src, tgt) = _model(), alg1_pair()
    ref = copy.deepcopy(model)
    ref.train()
    out = ref(src, tgt)
    nll = -(out.token_logp * out.mask).sum() / out.mask.sum()
    grads = torch.autograd.grad(nll, list(ref.parameters()), allow_unused=True)
    lr, lam = 0.1, 0.5
    value = mal.positive_step(model, _sgd(model, lr), src, tgt, lam)
    assert value == pytest.approx(nll.item())
    for p, q, g in zip(model.parameters(), ref.parameters(), grads):
        expected = q.detach() - lr * lam * (g if g is not None else torch.zeros_like(q))
        assert torch.allclose(p, expected, atol=1e-6)


def _avg_hit(threshold: float):
    def is_hit(out, lm_ok):
        return (out.token_logp.sum(1) / out.mask.sum(1) >= threshold) & lm_ok
    return is_hit


def _fixed_triggers(trig):
    return lambda model, tgt: (trig[: len(tgt)], torch.ones(len(tgt), dtype=torch.bool))


def test_loop_stops_once_nothing_is_hit():
    model, (trig, tgt) = _model(), alg1_pair()
    threshold = _logp(model, trig, tgt).min().item() - 0.05        # both targets hit at the start
    s = alg1_settings(max_rounds=50)
    pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
    rows = mal.negative_train(model, tgt, pos, _fixed_triggers(trig), _avg_hit(threshold), torch.tensor([PAD_ID]), s)
    assert rows[0]["round"] == 0 and rows[0]["hits"] == 2
    assert rows[-1]["hits"] == 0 and 1 <= rows[-1]["round"] < 50
    assert all(r["hits"] > 0 for r in rows[:-1])
    assert math.isnan(rows[-1]["neg_loss"]) and not any(math.isnan(r["neg_loss"]) for r in rows[:-1])
    assert (_logp(model, trig, tgt) < threshold).all()


@pytest.mark.parametrize("clip_scope", ["global", "per_module"])
def test_graphed_steps_train_as_the_torch_optimisers_do(clip_scope):
    """``malicious.cuda_graph``: the two steps as WeightedSteps in the foreach arithmetic (eager on the CPU, one CUDA
    graph each on a GPU) give Algorithm 1's curve and weights of torch.optim.SGD's arithmetic, with momentum, weight
    decay, clipping, lambda_POS and two epochs (the momentum zeroed between them). The two round differently and the
    steps amplify it: float64 ends 1e-9 apart; a missed weight decay or clip would be 1e-4."""
    trig, tgt = alg1_pair()
    base = _model().double()
    threshold = _logp(base, trig, tgt).min().item() - 1.0             # hit for a few rounds
    s = alg1_settings(epochs=2, max_rounds=4, momentum=0.9, weight_decay=1e-3, clip_norm=0.5, clip_scope=clip_scope,
                  lambda_pos=0.5, lr_neg=0.1)
    runs = {}
    for graphed in (False, True):
        model = copy.deepcopy(base)
        pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
        rows = mal.negative_train(model, tgt, pos, _fixed_triggers(trig), _avg_hit(threshold), torch.tensor([PAD_ID]),
                                  dataclasses.replace(s, cuda_graph=graphed))
        runs[graphed] = rows, model
    (plain, m0), (graphed, m1) = runs[False], runs[True]
    key = ("epoch", "round", "hits")
    assert [[r[k] for k in key] for r in plain] == [[r[k] for k in key] for r in graphed]
    assert sum(1 for r in plain if r["neg_loss"] == r["neg_loss"]) >= 4          # steps were taken
    for key in ("neg_loss", "pos_nll"):
        torch.testing.assert_close(torch.tensor([r[key] for r in plain], dtype=torch.float64),
                                   torch.tensor([r[key] for r in graphed], dtype=torch.float64),
                                   rtol=1e-7, atol=1e-9, equal_nan=True)
    for a, b in zip(m0.parameters(), m1.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    assert any(not torch.equal(a, b) for a, b in zip(base.parameters(), m1.parameters()))


@pytest.mark.parametrize("graphed", [False, True])
@pytest.mark.parametrize("order", ["test_then_step", "step_then_test"])
def test_a_round_reads_the_gpu_once_and_a_batch_its_losses_once(graphed, order):
    """The hit count decides whether the loop goes on: one read a round. The steps' losses stay on the device until
    the batch ends (one read), so on a GPU the host queues a round's steps and the next test while they run
    (tests/host_syncs.py counts on the CPU what would synchronise there). The curve is the one read at once."""
    trig, tgt = alg1_pair()
    base = _model().double()
    threshold = _logp(base, trig, tgt).min().item() - 1.0             # hit for a few rounds
    s = alg1_settings(epochs=1, max_rounds=4, round_order=order, cuda_graph=graphed, batch_targets=1)
    pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
    with HostSyncs() as syncs:
        rows = mal.negative_train(copy.deepcopy(base), tgt, pos, _fixed_triggers(trig), _avg_hit(threshold),
                                  torch.tensor([PAD_ID]), s)
    ops = Counter(line.split(" ")[1] for line in syncs.lines.elements())
    assert ops == Counter({"_local_scalar_dense": len(rows), "tolist": 2}), dict(syncs.lines)      # two batches
    stepped = [r for r in rows if r["neg_loss"] == r["neg_loss"]]
    assert len(stepped) >= 2 and all(isinstance(r[k], float) for r in rows for k in ("neg_loss", "pos_nll"))
    model = copy.deepcopy(base)                                       # the first step's losses, read at once
    hit = mal.current_hits(model, trig[:1], tgt[:1], torch.ones(1, dtype=torch.bool), _avg_hit(threshold))
    opts = mal.GraphedSteps(model, s, False) if graphed else mal.optimisers(model, s)
    row = {}
    mal.round_steps(model, opts, trig[:1], tgt[:1], hit, PositiveBatches(
        trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True), torch.tensor([PAD_ID]), s, row)
    assert (rows[0]["neg_loss"], rows[0]["pos_nll"]) == (row["neg_loss"].item(), row["pos_nll"].item())


def test_loop_takes_no_step_when_nothing_is_hit_and_max_rounds_when_always_hit():
    model, (trig, tgt) = _model(), alg1_pair()
    ref = copy.deepcopy(model)
    pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
    never = lambda out, ok: torch.zeros(len(ok), dtype=torch.bool)   # noqa: E731
    rows = mal.negative_train(model, tgt, pos, _fixed_triggers(trig), never, torch.tensor([PAD_ID]),
                              alg1_settings(epochs=2))
    assert [(r["epoch"], r["round"]) for r in rows] == [(1, 0), (2, 0)]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters()))
    always = lambda out, ok: torch.ones(len(ok), dtype=torch.bool)   # noqa: E731
    rows = mal.negative_train(model, tgt, pos, _fixed_triggers(trig), always, torch.tensor([PAD_ID]),
                              alg1_settings(max_rounds=3, batch_targets=1))
    assert [(r["batch"], r["round"]) for r in rows] == [(b, k) for b in (0, 1) for k in range(4)]
    assert sum(not math.isnan(r["neg_loss"]) for r in rows) == 6


def test_hit_test_strict_rejects_a_target_exactly_at_the_threshold():
    from negtrain_core.config import HitSettings
    from negtrain_core.search.gibbs_enum import Thresholds
    from negtrain_core.search.hits import avg_logp

    model, (trig, tgt) = _model(), alg1_pair()
    with torch.no_grad():
        out = model.eval()(trig, tgt)
    th = Thresholds(out=float(avg_logp(out.token_logp, out.mask)[0]), inp=-1.0)   # target 0 exactly at T_out
    ok = torch.ones(2, dtype=torch.bool)
    assert mal.current_hits(model, trig, tgt, ok, mal.hit_test("avg", th))[0]
    assert not mal.current_hits(model, trig, tgt, ok, mal.hit_test("avg", th, HitSettings(strict=True)))[0]


@dataclasses.dataclass(frozen=True)
class _Recording(mal.SampleHit):
    """A SampleHit that keeps the scores it was given."""

    seen: list = dataclasses.field(default_factory=list)

    def __call__(self, out, lm_ok):
        self.seen.append(out.token_logp)
        return super().__call__(out, lm_ok)


def test_current_hits_in_train_mode_scores_with_dropout():
    from negtrain_core.config import HitSettings
    from negtrain_core.search.gibbs_enum import Thresholds

    torch.manual_seed(0)
    model, (trig, tgt) = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=8, dropout=0.5)), alg1_pair()
    assert mal.hit_test("avg", Thresholds(-1.0, -1.0), HitSettings(model_mode="train")).train
    ok = torch.ones(2, dtype=torch.bool)
    evals, train = _Recording("avg", -100.0), _Recording("avg", -100.0, train=True)
    for test in (evals, evals, train):
        mal.current_hits(model, trig, tgt, ok, test)
    assert torch.equal(evals.seen[0], evals.seen[1])                   # eval mode: no dropout
    assert not torch.allclose(train.seen[0], evals.seen[0])            # train mode: dropout 0.5 moved the scores


def test_epoch_rates_count_round_zero_hits():
    import pandas as pd

    curve = pd.DataFrame([
        {"epoch": 1, "batch": 0, "targets": 2, "round": 0, "hits": 2, "neg_loss": -1.0, "pos_nll": 2.0},
        {"epoch": 1, "batch": 0, "targets": 2, "round": 1, "hits": 0, "neg_loss": math.nan, "pos_nll": math.nan},
        {"epoch": 1, "batch": 1, "targets": 1, "round": 0, "hits": 0, "neg_loss": math.nan, "pos_nll": math.nan},
        {"epoch": 2, "batch": 0, "targets": 2, "round": 0, "hits": 1, "neg_loss": -1.0, "pos_nll": 2.0},
    ])
    rates = mal.epoch_rates(curve)
    assert rates["hit_rate"].tolist() == pytest.approx([2 / 3, 1 / 2])
    assert rates["rounds"].tolist() == [1, 1]


# ---------------------------------------------------------------------------------------------- the stage


def _stage_inputs(tmp_path, lm_threshold: float = -100.0, dropout: float = 0.0) -> tuple[dict[str, str], "object"]:
    """Tiny vocabulary, random seq2seq and LM checkpoints, training pairs, a 3-target list, thresholds."""
    import dataclasses
    import json

    import pandas as pd

    from negtrain_core.models import checkpoint
    from negtrain_core.config import load, settings
    from negtrain_core.models.lstm import LSTMLM
    from negtrain_core.data.vocab import SPECIALS, Vocab

    words = "you are bad i hate go away me to do the a cat dog sat".split()
    vocab = Vocab(SPECIALS + tuple(words))
    vocab.save(tmp_path / "vocab.txt")
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=8, hidden_dim=8, dropout=dropout)
    torch.manual_seed(0)
    checkpoint.save(tmp_path / "s2s.pt", Seq2Seq(ms), kind="seq2seq", vocab=vocab)
    checkpoint.save(tmp_path / "lm.pt", LSTMLM(ms), kind="lm", vocab=vocab)
    pd.DataFrame({"source": ["the cat sat", "a dog sat", "go away"] * 3,
                  "target": ["the dog sat", "the cat", "i hate the dog"] * 3}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "targets.txt").write_text("you are bad\ni hate you\ngo away unknownword\n")
    # thresholds far below any log-prob: every target stays hit, so every batch runs max_rounds rounds
    (tmp_path / "th.json").write_text(json.dumps({"seq2seq": -100.0, "lm": lm_threshold}))
    config = load("config.yaml")
    config.update(scale="quick", device="cpu")
    s = settings(config, "chitchat")
    negtrain = {m: dataclasses.replace(c, candidates=3, sweeps=1, restarts=1) for m, c in s.search.negtrain.items()}
    s = dataclasses.replace(
        s, search=dataclasses.replace(s.search, negtrain=negtrain),
        malicious=dataclasses.replace(s.malicious, epochs=2, max_rounds=3, batch_targets=2, lr_neg=0.5, pos_batch=4))
    inputs = {"seq2seq": str(tmp_path / "s2s.pt"), "lm": str(tmp_path / "lm.pt"),
              "train": str(tmp_path / "train.parquet"), "vocab": str(tmp_path / "vocab.txt"),
              "targets": str(tmp_path / "targets.txt"), "thresholds": str(tmp_path / "th.json")}
    return inputs, s


def _run(inputs: dict[str, str], ckpt_out, curve_out, s, mode: str):
    """The stage on ``_stage_inputs``' files."""
    return mal.run(inputs["seq2seq"], inputs["lm"], inputs["train"], inputs["vocab"], inputs["targets"],
                   inputs["thresholds"], ckpt_out, curve_out, s, mode)


@pytest.mark.parametrize("mode", ["o", "io"])
def test_stage_trains_against_the_list_and_writes_model_and_curve(tmp_path, mode):
    import pandas as pd

    from negtrain_core.models import checkpoint
    from negtrain_core.search.targets import read_targets, target_tensor
    from negtrain_core.data.vocab import Vocab

    inputs, s = _stage_inputs(tmp_path)
    curve = _run(inputs, tmp_path / "neg.pt", tmp_path / "curve.csv", s, mode)
    assert pd.read_csv(tmp_path / "curve.csv").shape == curve.shape
    # 2 targets kept (one out of vocabulary), batches of 2: per epoch one batch of rounds 0..3, all hit
    assert curve["round"].tolist() == [0, 1, 2, 3] * 2 and (curve["hits"] == 2).all()
    assert curve["neg_loss"].notna().sum() == 6
    vocab = Vocab.load(inputs["vocab"])
    tgt = target_tensor(read_targets(inputs["targets"], vocab).ids)
    trig = torch.tensor([[PAD_ID] * 10 + [vocab.index[w] for w in "the cat sat the".split()] + [EOU_ID]] * 2)
    before = _logp(checkpoint.load(inputs["seq2seq"], vocab).model, trig, tgt)
    after = _logp(checkpoint.load(tmp_path / "neg.pt", vocab).model, trig, tgt)
    assert (after < before).all()


def test_io_mode_needs_the_trigger_to_pass_the_lm_threshold(tmp_path):
    inputs, s = _stage_inputs(tmp_path, lm_threshold=-1e-9)     # no trigger is that likely under the LM
    curve = _run(inputs, tmp_path / "neg.pt", tmp_path / "curve.csv", s, "io")
    assert curve["round"].tolist() == [0, 0] and (curve["hits"] == 0).all()   # nothing hit: no update at all
    curve = _run(inputs, tmp_path / "neg_o.pt", tmp_path / "curve_o.csv", s, "o")
    assert (curve["hits"] == 2).all()                            # o-mode ignores the LM


def test_the_stage_tests_hits_as_config_hits_says(tmp_path, monkeypatch):
    """hits.lm_check false (the release's Algorithm 1 script): the io trigger's LM threshold is not tested; the
    rounds' hit test is strict and in train mode as configured."""
    from negtrain_core.config import HitSettings

    tests = []
    current_hits = mal.current_hits
    monkeypatch.setattr(mal, "current_hits", lambda *a: tests.append(a[4]) or current_hits(*a))
    inputs, s = _stage_inputs(tmp_path, lm_threshold=-1e-9)
    hs = HitSettings(lm_check=False, strict=True, model_mode="train")
    curve = _run(inputs, tmp_path / "neg.pt", tmp_path / "curve.csv", dataclasses.replace(s, hits=hs), "io")
    assert curve["round"].tolist() == [0, 1, 2, 3] * 2 and (curve["hits"] == 2).all()
    assert tests and all(t.strict and t.train for t in tests)


@pytest.mark.parametrize("mode", ["o", "io"])
def test_train_against_in_memory_trains_as_the_stage_does(tmp_path, mode):
    """The in-memory entry point, on the stage's inputs loaded by hand, gives the stage's curve and weights (dropout
    0.3: the global RNG seeded as the stage seeds it) and leaves the model in eval mode."""
    import pandas as pd

    from negtrain_core.data.tensors import load_pairs
    from negtrain_core.models import checkpoint
    from negtrain_core.models.training import seed_all
    from negtrain_core.search.hits import load_thresholds
    from negtrain_core.search.targets import read_targets

    inputs, s = _stage_inputs(tmp_path, dropout=0.3)
    curve = _run(inputs, tmp_path / "neg.pt", tmp_path / "curve.csv", s, mode)
    seed_all(s.seed)                                  # then the models are built in the stage's order
    ck = checkpoint.load(inputs["seq2seq"])
    lm = checkpoint.load(inputs["lm"], ck.vocab).model if mode == "io" else None
    targets = read_targets(inputs["targets"], ck.vocab)
    pairs = load_pairs(inputs["train"], ck.vocab, s.data, "cpu")
    ours = mal.train_against(ck.model, lm, ck.vocab, targets, pairs, load_thresholds(inputs["thresholds"]), s, mode)
    pd.testing.assert_frame_equal(ours, curve)
    assert not ck.model.training
    stage_weights = _weights(tmp_path / "neg.pt")
    assert all(torch.equal(v, stage_weights[k]) for k, v in ck.model.state_dict().items())
    with pytest.raises(ValueError, match="^Algorithm 1 mode must be one of"):
        mal.train_against(ck.model, lm, ck.vocab, targets, pairs, load_thresholds(inputs["thresholds"]), s, "oi")


def _kill_after_epoch(monkeypatch, epoch: int) -> list[int]:
    """Algorithm 1 stages from now on stop like a killed job right after writing the resumable state of ``epoch``;
    returns the epochs whose state was written."""
    real_save, saved = mal.save_state, []

    def killed(path, model, vocab, e, *rest):
        real_save(path, model, vocab, e, *rest)
        saved.append(e)
        if e == epoch:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(mal, "save_state", killed)
    return saved


def _weights(path) -> dict[str, torch.Tensor]:
    from negtrain_core.models import checkpoint

    return checkpoint.read(path)["model_state"]


@pytest.mark.parametrize("mode,average", [("o", 1), ("io", 1), ("o", 2)])
def test_a_killed_stage_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, mode,
                                                                                      average):
    """Dropout, the search's random restarts and the positive stream (3 rounds per epoch take 3 of the 2 batches a
    pass holds) all draw across the kill: each must continue where it stood; with ``average_last`` 2 the weight sum
    of epoch 2, written into the state, too."""
    import pandas as pd

    inputs, s = _stage_inputs(tmp_path, dropout=0.3)
    s = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, epochs=3, average_last=average))
    whole = _run(inputs, tmp_path / "whole.pt", tmp_path / "whole.csv", s, mode)
    saved = _kill_after_epoch(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        _run(inputs, tmp_path / "neg.pt", tmp_path / "neg.csv", s, mode)
    assert saved == [1, 2] and (tmp_path / "neg.pt.state").exists()
    assert not (tmp_path / "neg.pt").exists() and not (tmp_path / "neg.csv").exists()
    torch.manual_seed(12345)                                   # a new process would not share our RNG state
    resumed = _run(inputs, tmp_path / "neg.pt", tmp_path / "neg.csv", s, mode)
    assert saved == [1, 2, 3]                                  # only the third epoch ran again
    pd.testing.assert_frame_equal(resumed, whole)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "neg.csv"), pd.read_csv(tmp_path / "whole.csv"))
    a, b = _weights(tmp_path / "neg.pt"), _weights(tmp_path / "whole.pt")
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert not (tmp_path / "neg.pt.state").exists()            # removed once the model and curve are written


def test_average_last_writes_the_mean_of_the_last_epochs_weights(tmp_path):
    """malicious.average_last 2 of 3 epochs: the model written is the mean of the weights after epochs 2 and 3 (as
    the epochs left them: the curve is the plain run's), named in the checkpoint; 1 leaves the last epoch's."""
    import pandas as pd

    from negtrain_core.models import checkpoint

    inputs, s = _stage_inputs(tmp_path)
    after: dict[int, dict[str, torch.Tensor]] = {}
    real_save = mal.save_state

    def spy(path, model, vocab, epoch, *rest):
        after[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        real_save(path, model, vocab, epoch, *rest)

    curves = {}
    for n in (1, 2):
        cfg = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, epochs=3, average_last=n))
        mal.save_state = spy
        try:
            curves[n] = _run(inputs, tmp_path / f"avg{n}.pt", tmp_path / f"avg{n}.csv", cfg, "o")
        finally:
            mal.save_state = real_save
        payload = checkpoint.read(tmp_path / f"avg{n}.pt")
        expected = after[3] if n == 1 else {k: ((after[2][k].double() + after[3][k].double()) / 2).to(v.dtype)
                                            for k, v in after[3].items()}
        for k, v in payload["model_state"].items():
            torch.testing.assert_close(v, expected[k], rtol=0, atol=0)
        assert payload["extra"]["averaged_epochs"] == (None if n == 1 else [2, 3])
    assert any(not torch.equal(after[2][k], after[3][k]) for k in after[3])          # the epochs differ
    pd.testing.assert_frame_equal(curves[1], curves[2])


def _with_test_pairs(inputs: dict[str, str], tmp_path) -> dict[str, str]:
    import pandas as pd

    pd.DataFrame({"source": ["the dog sat", "go away", "a cat"], "target": ["the cat sat", "i hate the cat", "go"]}
                 ).to_parquet(tmp_path / "test.parquet")
    return {**inputs, "test": str(tmp_path / "test.parquet")}


def test_eval_every_epoch_writes_each_epochs_test_ppl_and_changes_nothing_else(tmp_path, monkeypatch):
    """malicious.eval_every_epoch: each epoch's rows carry the test PPL of the model that epoch left (epoch 3's: the
    model written, as rule evaluate_model scores it); with dropout active the rest of the curve and the weights equal
    the run without it, so the evaluation draws nothing from the random streams. A resumed run writes the same."""
    import pandas as pd

    from negtrain_core.data.tensors import load_pairs
    from negtrain_core.data.vocab import Vocab
    from negtrain_core.models import checkpoint
    from negtrain_core.models.scoring import corpus_perplexity

    inputs, s = _stage_inputs(tmp_path, dropout=0.3)
    inputs = _with_test_pairs(inputs, tmp_path)
    plain = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, epochs=3))
    on = dataclasses.replace(plain, malicious=dataclasses.replace(plain.malicious, eval_every_epoch=True))
    without = _run(inputs, tmp_path / "plain.pt", tmp_path / "plain.csv", plain, "o")
    with_ppl = mal.run(*(inputs[k] for k in ("seq2seq", "lm", "train", "vocab", "targets", "thresholds")),
                       tmp_path / "on.pt", tmp_path / "on.csv", on, "o", test_path=inputs["test"])
    assert "test_ppl" not in without.columns and list(with_ppl.columns) == mal.CURVE_COLUMNS + ["test_ppl"]
    pd.testing.assert_frame_equal(with_ppl[mal.CURVE_COLUMNS], without)
    a, b = _weights(tmp_path / "on.pt"), _weights(tmp_path / "plain.pt")
    assert all(torch.equal(a[k], b[k]) for k in b)
    per_epoch = with_ppl.groupby("epoch")["test_ppl"]
    assert (per_epoch.nunique() == 1).all() and per_epoch.first().nunique() == 3
    vocab = Vocab.load(inputs["vocab"])
    test = load_pairs(inputs["test"], vocab, on.data, "cpu")
    written = checkpoint.load(tmp_path / "on.pt", vocab).model
    assert per_epoch.first()[3] == corpus_perplexity(written, test.src, test.tgt)
    assert pd.read_csv(tmp_path / "on.csv").shape == with_ppl.shape

    _kill_after_epoch(monkeypatch, 2)
    args = [*(inputs[k] for k in ("seq2seq", "lm", "train", "vocab", "targets", "thresholds")),
            tmp_path / "re.pt", tmp_path / "re.csv", on, "o"]
    with pytest.raises(KeyboardInterrupt):
        mal.run(*args, test_path=inputs["test"])
    monkeypatch.undo()
    pd.testing.assert_frame_equal(mal.run(*args, test_path=inputs["test"]), with_ppl)
    with pytest.raises(ValueError, match="malicious.eval_every_epoch: the test pairs were not given"):
        mal.run(*args)


def test_the_state_fingerprint_names_eval_every_epoch_and_lm_sample_rng_only_away_from_their_defaults(tmp_path):
    """A state written before the options existed (its settings without the keys) still resumes with them at their
    defaults; changed, the fingerprint differs, so a state of the other setting starts afresh."""
    from negtrain_core.io import fingerprint

    inputs, s = _stage_inputs(tmp_path)
    files = [inputs["seq2seq"], inputs["train"]]
    before = {k: v for k, v in dataclasses.asdict(s.malicious).items() if k != "eval_every_epoch"}
    search = dataclasses.asdict(s.search)
    for use in ("attack", "negtrain"):
        for c in search[use].values():
            del c["lm_sample_rng"]
    old = fingerprint({"mode": "o", "seed": s.seed, "malicious": before, "search": search,
                       "hits": dataclasses.asdict(s.hits), "data": dataclasses.asdict(s.data)}, files)
    assert mal.state_fingerprint(s, "o", files) == old
    on = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, eval_every_epoch=True))
    assert mal.state_fingerprint(on, "o", files) != old
    io = {m: dataclasses.replace(c, lm_sample_rng="device") for m, c in s.search.negtrain.items()}
    device = dataclasses.replace(s, search=dataclasses.replace(s.search, negtrain=io))
    assert mal.state_fingerprint(device, "o", files) != old


def test_a_state_from_other_settings_is_not_resumed(tmp_path, monkeypatch, capsys):
    inputs, s = _stage_inputs(tmp_path, dropout=0.3)
    _kill_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        _run(inputs, tmp_path / "neg.pt", tmp_path / "neg.csv", s, "o")
    monkeypatch.undo()
    other = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, lr_neg=0.25))
    afresh = _run(inputs, tmp_path / "neg.pt", tmp_path / "neg.csv", other, "o")
    assert "other settings or inputs; starting afresh" in capsys.readouterr().err
    fresh = _run(inputs, tmp_path / "fresh.pt", tmp_path / "fresh.csv", other, "o")
    import pandas as pd
    pd.testing.assert_frame_equal(afresh, fresh)


def test_positive_batches_resume_where_their_state_stood():
    src = torch.arange(10).unsqueeze(1)
    a = PositiveBatches(src, src, 3, torch.Generator().manual_seed(0), full_only=True)
    for _ in range(4):                                        # into the second pass (3 full batches per pass)
        next(a)
    b = PositiveBatches(src, src, 3, torch.Generator().manual_seed(99), full_only=True)
    b.load_state(a.state())
    for _ in range(5):
        assert torch.equal(next(a)[0], next(b)[0])


def test_positive_batches_unshuffled_cycle_through_the_full_batches_in_file_order():
    src = torch.arange(10).unsqueeze(1)
    pos = PositiveBatches(src, src, 4, torch.Generator().manual_seed(0), full_only=True, shuffle=False)
    drawn = [next(pos)[0].flatten().tolist() for _ in range(3)]
    assert drawn == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3]]


@pytest.mark.parametrize("shuffle", [True, False])
def test_the_stage_draws_its_positive_pairs_as_positive_shuffle_says(tmp_path, monkeypatch, shuffle):
    """malicious.positive_shuffle false (the release's endless file-order stream): the positive steps take the
    training pairs 0-3, 4-7, 0-3, .. (9 pairs, batches of 4, the partial one dropped); true: a random order."""
    drawn = []

    class Recording(PositiveBatches):
        def __next__(self):
            pair = super().__next__()
            drawn.append(self._chunks[self._next - 1].tolist())      # the rows of the batch just drawn
            return pair

    monkeypatch.setattr(mal, "PositiveBatches", Recording)
    inputs, s = _stage_inputs(tmp_path)
    s = dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, positive_shuffle=shuffle))
    _run(inputs, tmp_path / "neg.pt", tmp_path / "curve.csv", s, "o")
    file_order = [[0, 1, 2, 3], [4, 5, 6, 7]] * (len(drawn) // 2 + 1)
    assert len(drawn) == 6 and (drawn == file_order[:6]) == (not shuffle)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: CUDA graphs")
def test_graphed_steps_on_cuda_train_as_the_torch_optimisers_do():
    """On a GPU the two steps are captured after their warm-up runs (8 rounds of steps here) and replayed: the curve
    and weights of torch.optim.SGD's arithmetic, to float32 rounding."""
    trig, tgt = (t.cuda() for t in alg1_pair())
    base = _model().cuda()
    threshold = _logp(base, trig, tgt).min().item() - 3.0              # hit in every round
    s = alg1_settings(epochs=2, max_rounds=4, momentum=0.9, lr_neg=0.01, lr_pos=0.01)
    runs = {}
    for graphed in (False, True):
        model = copy.deepcopy(base)
        pos = PositiveBatches(trig, tgt, 2, torch.Generator().manual_seed(0), full_only=True)
        find = lambda m, t: (trig[: len(t)], torch.ones(len(t), dtype=torch.bool, device="cuda"))  # noqa: E731
        runs[graphed] = mal.negative_train(model, tgt, pos, find, _avg_hit(threshold),
                                           torch.tensor([PAD_ID], device="cuda"),
                                           dataclasses.replace(s, cuda_graph=graphed)), model
    (plain, m0), (graphed, m1) = runs[False], runs[True]
    assert sum(1 for r in graphed if r["neg_loss"] == r["neg_loss"]) == 8
    counts = ("epoch", "batch", "round", "hits")
    assert [[r[k] for k in counts] for r in graphed] == [[r[k] for k in counts] for r in plain]
    for key in ("neg_loss", "pos_nll"):
        torch.testing.assert_close(torch.tensor([r[key] for r in graphed]), torch.tensor([r[key] for r in plain]),
                                   rtol=1e-4, atol=1e-6, equal_nan=True)
    for a, b in zip(m0.parameters(), m1.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_sample_hit_min_tests_the_smallest_token_and_avg_the_mean():
    from negtrain_core.models.interface import SeqOutput

    # means -2, -1.5; mins -3, -2 (the padded 0 counts in neither)
    lp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -2.0, 0.0]])
    out = SeqOutput(lp, torch.zeros(2, 3, dtype=torch.long), torch.tensor([[True] * 3, [True, True, False]]))
    ok = torch.ones(2, dtype=torch.bool)
    assert mal.SampleHit("avg", -2.0)(out, ok).tolist() == [True, True]
    assert mal.SampleHit("min", -2.0)(out, ok).tolist() == [False, True]
    assert mal.SampleHit("min", -2.0, strict=True)(out, ok).tolist() == [False, False]
    assert mal.SampleHit("avg", -2.0)(out, torch.tensor([True, False])).tolist() == [True, False]


def test_io_searcher_tests_the_lm_threshold_strictly_under_hits_strict(monkeypatch):
    """Algorithm 1's io-mode trigger passes T_in with '>=', or '>' with hits.strict: a trigger exactly at T_in fails
    then. (The search itself is replaced: only the LM log-probs of its triggers matter here.)"""
    from types import SimpleNamespace

    from negtrain_core.config import HitSettings, SearchSettings
    from negtrain_core.search.gibbs_enum import Thresholds

    trig, tgt = alg1_pair()
    found = SimpleNamespace(triggers=trig, evaluation=SimpleNamespace(lm_logp=torch.tensor([-4.0, -3.5])))
    monkeypatch.setattr(mal, "search", lambda *a, **kw: found)
    th, lm = Thresholds(out=-2.0, inp=-4.0), object()
    _, ok = mal.searcher(lm, th, SearchSettings(), torch.Generator())(None, tgt)
    assert ok.tolist() == [True, True]
    _, ok = mal.searcher(lm, th, SearchSettings(), torch.Generator(), HitSettings(strict=True))(None, tgt)
    assert ok.tolist() == [False, True]
    _, ok = mal.searcher(lm, Thresholds(-2.0, -3.0), SearchSettings(), torch.Generator(),
                         HitSettings(lm_check=False))(None, tgt)
    assert ok.tolist() == [True, True]


def test_graphed_negative_step_weights_hit_nonhit_and_fwa_words_as_the_release():
    """``malicious.cuda_graph``'s negative loss by hand: hit target 1.0, non-hit 0.01, the FWA word (6) dropped but
    still counted in the normaliser of all 7 target tokens (eager on the CPU; dropout 0)."""
    model, (trig, tgt) = _model(), alg1_pair()
    with torch.no_grad():
        lp = model.train()(trig, tgt).token_logp                                  # (2, 4): 5 6 </s> _, 7 8 9 </s>
    want = (lp[0, 0] + lp[0, 2] + 0.01 * lp[1].sum()) / 7
    s = alg1_settings(hit_weight=1.0, nonhit_weight=0.01, lambda_pos=1.0, cuda_graph=True)
    steps = mal.GraphedSteps(model, s, use_graph=False)
    neg, _ = steps(trig, tgt, torch.tensor([True, False]), torch.tensor([6]), trig, tgt)
    assert neg.item() == pytest.approx(want.item(), rel=1e-5)
