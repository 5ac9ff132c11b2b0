"""The GAN of Appendix E (negtrain_core.gan): discriminator shapes, a D step on separable data, the G step's sign."""

import pandas as pd
import torch

from negtrain_core import gan
from negtrain_core.config import ModelSettings
from negtrain_core.frequent import as_targets
from negtrain_core.models import Seq2Seq
from negtrain_core.vocab import EOS_ID, PAD_ID

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
    loss = gan.g_loss(model, disc, x, samples)
    assert float(loss.detach()) > 0                                   # (log(1-D) < 0) x (log G < 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in disc.parameters())             # the reward is detached from D
    opt.step()
    assert (logp() > before).all()


def test_lr_selection_respects_the_ppl_tolerance():
    sweep = pd.DataFrame({"g_lr": [0.01, 0.001, 0.0001], "valid_ppl": [60.0, 51.0, 50.1],
                          "baseline_valid_ppl": [50.0] * 3, "max_ratio": [0.05, 0.20, 0.30]})
    assert gan.select(sweep, 0.05) == 1                               # 0.01 cut the max-ratio but broke PPL
    assert gan.select(sweep, 0.25) == 0
    assert gan.select(sweep.assign(valid_ppl=[90.0, 80.0, 70.0]), 0.05) == 2   # none within: lowest PPL
