"""The GAN of Appendix E (negtrain_core.comparisons.gan): discriminator shapes, the release's discriminator options
(separate banks, dropout, gate bias, right-aligned y), a D step on separable data, the G step's sign, the
generator-lr pick, and the per-lr jobs giving what the sequential sweep gave."""

import copy
import dataclasses

import pandas as pd
import pytest
import torch

from negtrain_core.models import checkpoint
from negtrain_core.comparisons import gan
from negtrain_core.evaluate import metrics
from negtrain_core.config import GanSettings, ModelSettings, format_lr
from negtrain_core.data.tensors import batch_order, load_pairs
from negtrain_core.models import decoding
from negtrain_core.models.steps import as_targets, mle_loss
from negtrain_core.models.decoding import greedy_responses
from negtrain_core.models.scoring import corpus_perplexity
from negtrain_core.models.interface import fresh_copy
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID

from test_frequent import _world

V = 12


def _disc(**kw) -> gan.Discriminator:
    torch.manual_seed(0)
    args = dict(vocab_size=V, embedding_dim=8, filter_widths=(3, 4, 5, 6), filters=5, highway_layers=3,
                highway_hidden=16)
    return gan.Discriminator(**{**args, **kw})


def test_discriminator_shapes_and_short_inputs():
    disc = _disc()
    x, y = torch.randint(5, V, (7, 15)), torch.randint(5, V, (7, 20))
    assert disc.features(x).shape == (7, 5 * 4)                      # F filters per width, 4 widths
    assert disc(x, y).shape == (7,)
    assert disc(x, torch.tensor([[5, EOS_ID]] * 7)).shape == (7,)     # shorter than the widest filter: padded
    assert len(disc.highways) == 3 and disc.proj.out_features == 16
    onehot = torch.nn.functional.one_hot(y, V).float()
    assert torch.allclose(disc(x, onehot), disc(x, y), atol=1e-5)     # one-hot input = id lookup


def _xy():
    torch.manual_seed(1)
    return torch.randint(5, V, (6, 9)), torch.tensor([[5, 6, 7, EOS_ID, PAD_ID, PAD_ID, PAD_ID]] * 3
                                                     + [[8, 9, 10, 11, 5, 6, 7]] * 3)


def test_default_discriminator_keeps_its_layout_and_is_deterministic_in_train_mode():
    disc = _disc().train()
    x, y = _xy()
    assert disc.y_convs is None and not any("y_convs" in k for k in disc.state_dict())
    assert torch.equal(disc(x, y), disc(x, y))                       # dropout 0: no dropout at all


def test_separate_convs_give_y_a_bank_of_its_own():
    shared, separate = _disc(), _disc(separate_convs=True)
    x, y = _xy()
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(separate) - n(shared) == sum(p.numel() for p in shared.convs.parameters())
    assert {id(p) for p in separate.convs.parameters()}.isdisjoint(id(p) for p in separate.y_convs.parameters())
    assert not torch.allclose(separate.features(y, separate.y_convs), separate.features(y))
    before, x_rep = separate(x, y), separate.features(x)
    with torch.no_grad():
        for conv in separate.y_convs:
            conv.weight.add_(0.5)
    assert torch.equal(separate.features(x), x_rep)                  # y's bank does not touch x's features
    assert not torch.allclose(separate(x, y), before)                # but y's features go through it
    separate.zero_grad()
    separate(x, y).sum().backward()
    assert all(conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0 for conv in separate.y_convs)
    separate.zero_grad()
    separate.features(y, separate.y_convs).sum().backward()          # y alone: x's bank gets no gradient
    assert all(conv.weight.grad is None for conv in separate.convs)


def test_dropout_acts_in_train_mode_only():
    x, y = _xy()
    plain, dropped = _disc(), _disc(dropout=0.5)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), dropped.state_dict().values()))
    dropped.train()
    torch.manual_seed(3)
    first = dropped(x, y)
    assert not torch.allclose(first, dropped(x, y))                  # a new mask each pass
    assert not torch.allclose(first, plain.train()(x, y))
    assert torch.equal(dropped.eval()(x, y), plain.eval()(x, y))    # eval: the network without dropout


def test_gate_bias_initialises_every_highway_gate():
    biased, default = _disc(gate_bias=-2.0), _disc()
    assert all(torch.equal(h.t.bias, torch.full_like(h.t.bias, -2.0)) for h in biased.highways)
    assert all(h.t.bias.std() > 0 for h in default.highways)          # PyTorch's uniform initialisation
    assert all(torch.equal(a.h.weight, b.h.weight) for a, b in zip(biased.highways, default.highways))
    highway = biased.highways[0]
    x = torch.randn(4, 16)
    with torch.no_grad():
        gate = torch.sigmoid(highway.t(x))
        out = highway(x)
    assert torch.allclose(out, gate * torch.relu(highway.h(x).detach()) + (1 - gate) * x)
    assert float(gate.mean()) < 0.3                                   # sigmoid(-2) = 0.12: mostly carried


def test_without_projection_the_highways_act_on_the_concatenated_features():
    """gan.projection: false (the release's CNN_KIM_TWOINPUT_D): no linear map before the highway layers, whose
    width is [x_rep; y_rep]'s; highway_hidden is not used."""
    x, y = _xy()
    plain, release = _disc(), _disc(projection=False)
    width = release.convs[0].out_channels * len(release.convs) * 2
    assert release.proj is None and plain.proj is not None
    assert all(h.t.in_features == width for h in release.highways) and release.out.in_features == width
    with torch.no_grad():
        rep = torch.cat([release.features(x), release.features(y)], dim=1)
        assert torch.allclose(release(x, y), release.out(release.highways(rep)).squeeze(1))


def test_right_align_is_the_release_sen_left2right():
    y = torch.tensor([[5, 6, EOS_ID, PAD_ID, PAD_ID],     # a reference: words </s> <pad>
                      [5, 6, 7, 8, EOS_ID],               # four words and </s>: <s> still fits
                      [5, 6, 7, 8, 9],                    # ran out of length: </s> added, no room for <s>
                      [EOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
    P, B, E = PAD_ID, BOS_ID, EOS_ID
    assert gan.right_align(y).tolist() == [[P, P, B, 5, 6, E], [B, 5, 6, 7, 8, E], [5, 6, 7, 8, 9, E],
                                           [P, P, P, P, B, E]]


def test_align_right_feeds_y_right_aligned():
    x, y = _xy()
    left, right = _disc(), _disc(align="right")
    assert torch.equal(right(x, y), left(x, gan.right_align(y)))
    assert not torch.allclose(right(x, y), left(x, y))
    with pytest.raises(ValueError, match="align must be left or right, not .center."):
        _disc(align="center")


def test_build_discriminator_takes_the_release_options_from_the_settings():
    cfg = GanSettings(filter_widths=(2, 3), filters=4, highway_layers=2, highway_hidden=8, separate_convs=True,
                      dropout=0.3, gate_bias=-2.0, align="right", projection=False)
    disc = gan.build_discriminator(V, 8, cfg)
    assert disc.y_convs is not None and disc.dropout.p == 0.3 and disc.align == "right" and disc.proj is None
    assert all(torch.equal(h.t.bias, torch.full((16,), -2.0)) for h in disc.highways)   # 2 x 4 x 2 features
    plain = gan.build_discriminator(V, 8, GanSettings(filter_widths=(2, 3), filters=4, highway_hidden=8))
    assert plain.y_convs is None and isinstance(plain.dropout, torch.nn.Identity) and plain.align == "left"


def test_d_steps_raise_accuracy_on_separable_toy_data():
    disc = _disc()
    x = torch.randint(5, V, (16, 15))
    real = torch.tensor([[5, 6, 7, EOS_ID, PAD_ID]] * 16)
    fake = torch.tensor([[8, 8, 8, EOS_ID, PAD_ID]] * 16)
    opt = torch.optim.SGD(disc.parameters(), lr=0.1, momentum=0.9)
    loss0, acc0 = gan.d_loss(disc, x, real, fake)
    for _ in range(30):
        loss, _ = gan.d_loss(disc, x, real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    loss1, acc1 = gan.d_loss(disc, x, real, fake)
    assert acc0 <= 0.75 and acc1 >= 0.9 and float(loss1.detach()) < float(loss0.detach())


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_d_weight_decay_shrinks_the_discriminator_weights(optimizer: str):
    """On a loss with no gradient, only the weight decay moves D: by lr x decay x w with SGD's first step."""
    moved = {}
    for decay in (0.0, 0.5):
        disc = _disc()
        before = [p.detach().clone() for p in disc.parameters()]
        step = gan.discriminator_step(disc, GanSettings(d_optimizer=optimizer, d_lr=0.1, d_weight_decay=decay))
        step.update(sum(p.sum() for p in disc.parameters()) * 0.0)
        moved[decay] = max(float((p.detach() - b).abs().max()) for p, b in zip(disc.parameters(), before))
        if optimizer == "sgd" and decay:
            w, w0 = disc.out.weight.detach(), before[[n for n, _ in disc.named_parameters()].index("out.weight")]
            torch.testing.assert_close(w, w0 * (1 - 0.1 * decay))
    assert moved[0.0] == 0.0 and moved[0.5] > 0.0


def test_g_step_raises_the_log_prob_of_samples_the_discriminator_believes():
    """Eq. (11)-(12): log(1 - D) < 0 scales grad log G positively, so G moves towards its own samples."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16))
    disc = _disc()
    with torch.no_grad():
        disc.out.bias.fill_(5.0)                                      # D(x, y) ~ 1: every sample looks real
    x, samples = torch.randint(5, V, (4, 6)), torch.tensor([[7, 9, EOS_ID]] * 4)

    def logp():
        with torch.no_grad():
            return model.eval()(x, as_targets(samples)).token_logp.sum(1)

    before = logp()
    loss = gan.g_loss(model.train(), disc, x, samples)                # train mode, as gan.train_gan's G step
    assert float(loss.detach()) > 0                                   # (log(1-D) < 0) x (log G < 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in disc.parameters())             # the reward is detached from D
    opt.step()
    assert (logp() > before).all()


def _loop_world(**cfg) -> tuple[Seq2Seq, tuple[torch.Tensor, torch.Tensor], GanSettings]:
    """A small seq2seq whose samples are random, 16 pairs whose references all read '5 6 7', a small D."""
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, dropout=0.0))
    src = torch.randint(5, V, (16, 6))
    tgt = torch.tensor([[BOS_ID, 5, 6, 7, EOS_ID]] * 16)
    base = dict(filter_widths=(2, 3), filters=4, highway_layers=1, highway_hidden=8, batch_size=16, max_len=4,
                momentum=0.0, weight_decay=0.0, clip_norm=1e9, positive_training=False)
    return model, (src, tgt), GanSettings(**{**base, **cfg})


def test_train_gan_teaches_d_the_references_as_real_and_the_samples_as_fake(monkeypatch):
    """D steps only (g_steps 0): the D that train_gan built scores the references above G's samples."""
    built, build = [], gan.build_discriminator
    monkeypatch.setattr(gan, "build_discriminator", lambda *a, **k: built.append(build(*a, **k)) or built[-1])
    model, (src, tgt), cfg = _loop_world(d_steps=1, g_steps=0, epochs=40, d_lr=0.01)
    stats = gan.train_gan(model, (src, tgt), 0.0, cfg)
    assert (stats.d_steps, stats.g_steps) == (40, 0) and stats.d_acc >= 0.9
    samples = decoding.pad_samples(decoding.sample(model, src, max_len=cfg.max_len), tgt.size(1) - 1)
    with torch.no_grad():
        real, fake = built[0].eval()(src, gan.references(tgt)), built[0](src, samples)
    assert real.mean() > fake.mean() + 1.0


def test_a_train_gan_g_step_is_sgd_on_eq_11_over_its_own_samples(monkeypatch):
    """One G step (d_steps 0, one batch): train_gan moves G as plain SGD on g_loss over the samples it draws with
    its seeded generator, its rows in the seeded batch order, built here by hand."""
    disc = _disc(filter_widths=(2, 3), filters=4, highway_layers=1, highway_hidden=8)
    monkeypatch.setattr(gan, "build_discriminator", lambda *a, **k: copy.deepcopy(disc))
    model, (src, tgt), cfg = _loop_world(d_steps=0, g_steps=1, epochs=1)
    twin, before = copy.deepcopy(model), copy.deepcopy(model)
    assert gan.train_gan(model, (src, tgt), 0.5, cfg).g_steps == 1
    idx = batch_order(len(src), cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed))[0]
    samples = decoding.sample(twin, src[idx], max_len=cfg.max_len, generator=torch.Generator().manual_seed(cfg.seed))
    samples = decoding.pad_samples(samples, tgt.size(1) - 1)
    sgd = torch.optim.SGD(twin.parameters(), lr=0.5)
    sgd.zero_grad()
    gan.g_loss(twin.train(), disc, src[idx], samples).backward()
    sgd.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert max(float((a - b).detach().abs().max()) for a, b in zip(model.parameters(), before.parameters())) > 1e-4


def test_positive_training_follows_the_g_step_with_an_mle_step_on_the_same_batch(monkeypatch):
    """gan.positive_training (Appendix E): the G step of eq. (11), then one teacher-forced MLE step on the batch's
    references, both plain SGD at the generator lr, built here by hand."""
    disc = _disc(filter_widths=(2, 3), filters=4, highway_layers=1, highway_hidden=8)
    monkeypatch.setattr(gan, "build_discriminator", lambda *a, **k: copy.deepcopy(disc))
    model, (src, tgt), cfg = _loop_world(d_steps=0, g_steps=1, epochs=1, positive_training=True)
    twin = copy.deepcopy(model)
    assert gan.train_gan(model, (src, tgt), 0.5, cfg).g_steps == 1
    idx = batch_order(len(src), cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed))[0]
    samples = decoding.sample(twin, src[idx], max_len=cfg.max_len, generator=torch.Generator().manual_seed(cfg.seed))
    samples = decoding.pad_samples(samples, tgt.size(1) - 1)
    sgd = torch.optim.SGD(twin.parameters(), lr=0.5)
    for loss in (lambda: gan.g_loss(twin.train(), disc, src[idx], samples),      # G step, then MLE on the batch
                 lambda: mle_loss(twin(src[idx], tgt[idx]))):
        sgd.zero_grad()
        loss().backward()
        sgd.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_samples_shorter_than_the_references_reach_d_at_the_references_width(monkeypatch):
    """A D step on samples of at most max_len tokens against wider references: D sees both at the references'
    width, so it cannot tell them apart by their padding."""
    widths = []
    build = gan.build_discriminator

    def recording(*a, **k):
        disc = build(*a, **k)
        disc.register_forward_pre_hook(lambda module, args: widths.append(args[1].size(1)))
        return disc

    monkeypatch.setattr(gan, "build_discriminator", recording)
    model, (src, _), cfg = _loop_world(d_steps=1, g_steps=0, epochs=1, max_len=3)
    tgt = torch.tensor([[BOS_ID, 5, 6, 7, 8, 9, 10, EOS_ID]] * len(src))          # 7 response tokens
    assert gan.train_gan(model, (src, tgt), 0.0, cfg).d_steps == 1
    assert widths == [7, 7]                                                     # references, then samples


def test_lr_selection_respects_the_ppl_tolerance():
    sweep = pd.DataFrame({"g_lr": [0.01, 0.001, 0.0001], "valid_ppl": [60.0, 51.0, 50.1],
                          "baseline_valid_ppl": [50.0] * 3, "max_ratio": [0.05, 0.20, 0.30]})
    assert gan.select(sweep, 0.05) == 1                               # 0.01 cut the max-ratio but broke PPL
    assert gan.select(sweep, 0.25) == 0
    assert gan.select(sweep.assign(valid_ppl=[90.0, 80.0, 70.0]), 0.05) == 2   # none within: lowest PPL


def test_lr_paths_read_back_as_the_configured_floats():
    for lr in (0.01, 0.001, 0.0001, 1e-5, 3e-4, 0.1 + 0.2, 2):
        assert float(format_lr(lr)) == lr
    assert [format_lr(lr) for lr in (0.01, 0.001, 0.0001, 1e-5)] == ["0.01", "0.001", "0.0001", "1e-05"]


def test_per_lr_runs_and_selection_give_the_sequential_sweep(tmp_path):
    """run_one per lr (in the other order, after other RNG use) + run_select = the one-process sweep they replace,
    computed here as it ran: the baseline's valid PPL, then each lr trained from a copy of the baseline in turn."""
    s = _world(tmp_path)
    s = dataclasses.replace(s, gan=dataclasses.replace(s.gan, g_lrs=(0.001, 0.01)))
    p = lambda name: tmp_path / name  # noqa: E731
    cfg = s.gan
    base = checkpoint.load(p("seq2seq.pt"))
    train, valid = (load_pairs(p(f"{split}.parquet"), base.vocab, s.data, torch.device("cpu"))
                    for split in ("train", "valid"))
    base_ppl, models, rows = corpus_perplexity(base.model, *valid), [], []
    for g_lr in cfg.g_lrs:
        models.append(fresh_copy(base.model))
        stats = gan.train_gan(models[-1], train, g_lr, cfg)
        responses = greedy_responses(models[-1], valid[0], base.vocab, cfg.max_len)
        rows.append({"g_lr": g_lr, "valid_ppl": corpus_perplexity(models[-1], *valid),
                     "baseline_valid_ppl": base_ppl,
                     "max_ratio": metrics.max_ratio(responses), "ent2": metrics.entropy(responses, 2),
                     "d_acc": stats.d_acc, "d_steps": stats.d_steps, "g_steps": stats.g_steps})
    sequential = pd.DataFrame(rows)
    best = gan.select(sequential, cfg.select_ppl_tolerance)
    assert best == 1                                                  # not the first run: the copy follows the pick

    run = lambda g_lr, ext: p(f"gan/g_lr-{format_lr(g_lr)}.{ext}")  # noqa: E731
    for g_lr in reversed(cfg.g_lrs):
        gan.run_one(p("seq2seq.pt"), p("train.parquet"), p("valid.parquet"), run(g_lr, "pt"), run(g_lr, "csv"), s, g_lr)
    sweep = gan.run_select([run(g_lr, "csv") for g_lr in cfg.g_lrs], [run(g_lr, "pt") for g_lr in cfg.g_lrs],
                           p("gan.pt"), p("gan_sweep.csv"), s)
    pd.testing.assert_frame_equal(sweep.drop(columns="selected"), sequential, check_exact=True)
    assert sweep["selected"].tolist() == [i == best for i in range(len(cfg.g_lrs))]
    written = pd.read_csv(p("gan_sweep.csv"))
    assert list(written.columns) == [*sequential.columns, "selected", "dataset", "scale"]
    assert written["g_lr"].tolist() == list(cfg.g_lrs) == [0.001, 0.01]
    for g_lr, model in zip(cfg.g_lrs, models):
        saved = checkpoint.load(run(g_lr, "pt")).model.state_dict()
        assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    picked = checkpoint.load(p("gan.pt"))
    assert picked.meta["extra"] == {"stage": "train_gan", "g_lr": cfg.g_lrs[best], "base": str(p("seq2seq.pt"))}
    assert all(torch.equal(picked.model.state_dict()[k], v) for k, v in models[best].state_dict().items())


def test_an_lr_not_in_g_lrs_is_refused_before_training(tmp_path):
    s = _world(tmp_path)
    p = lambda name: tmp_path / name  # noqa: E731
    refused = (r"^GAN generator lr 0\.005 is not one of gan\.g_lrs \(0\.01, 0\.001\): add it there, or build "
               r"models/gan\.pt, which trains each configured lr$")
    with pytest.raises(gan.GanLrError, match=refused):
        gan.run_one(p("seq2seq.pt"), p("train.parquet"), p("valid.parquet"), p("g.pt"), p("g.csv"), s, 0.005)
    assert not p("g.pt").exists() and not p("g.csv").exists()
