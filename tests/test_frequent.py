"""Algorithm 2 (negtrain_core.negtrain.frequent): the frequency window, the negative/positive steps, the </s>
weighting."""

import gc
import math
from collections import Counter, deque

import pandas as pd
import pytest
import torch

from negtrain_core.evaluate import metrics
from negtrain_core.models import decoding
from negtrain_core.negtrain import frequent as F
from negtrain_core.models.steps import Sgd, as_targets, mle_loss
from negtrain_core.config import FrequentSettings, ModelSettings
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.data.vocab import BOS_ID, EOS_ID, PAD_ID

from host_syncs import HostSyncs

V = 12


def _model(seed: int = 0, **model_kw) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=8, hidden_dim=16, **model_kw))


def _cfg(**kw) -> FrequentSettings:
    base = dict(r_thres=0.5, window=1, lr=0.5, momentum=0.0, weight_decay=0.0, lambda_pos=0.0, clip_norm=1e9,
                update_every_batch=False, negative_norm="negatives")
    return FrequentSettings(**{**base, **kw})


ROWS = {"a": [5, EOS_ID], "b": [6, EOS_ID], "c": [5, 6, EOS_ID], "d": [5, 6], "e": [EOS_ID], "f": [7, 7, 7],
        "q": [8, EOS_ID], "w": [9, EOS_ID], "x": [10, EOS_ID], "y": [11, EOS_ID], "z": [7, EOS_ID]}


def _rows(keys: str, max_len: int = 4) -> torch.Tensor:
    """One response row per letter of ``keys`` (ROWS), canonical: (len(keys), max_len)."""
    return torch.tensor([ROWS[k] + [PAD_ID] * (max_len - len(ROWS[k])) for k in keys])


def test_window_waits_until_full_then_evicts_the_oldest_batch():
    w = F.FrequencyWindow(3, batch_size=2, max_len=4)
    w.push(_rows("aa"))
    w.push(_rows("bc"))
    assert not w.full
    assert not w.flags(_rows("aa"), 0.01).any()                          # nothing penalized before the window fills
    w.push(_rows("ad"))
    assert w.full and w.total == 6 and w.counts(_rows("ad")).tolist() == [3, 1]
    w.push(_rows("bb"))                                                  # evicts the first batch "aa"
    assert w.total == 6 and w.counts(_rows("ab")).tolist() == [1, 3] and w.max_ratio() == pytest.approx(3 / 6)
    w.push(_rows("ee"))
    w.push(_rows("ef"))                                                  # "a" and the old "b"s have left
    assert w.counts(_rows("abef")).tolist() == [0, 2, 3, 1] and w.max_ratio() == pytest.approx(3 / 6)


def test_ratio_counts_the_current_batch():
    w = F.FrequencyWindow(2, batch_size=4, max_len=4)
    w.push(_rows("xyzw"))
    rows = _rows("xxxq")
    w.push(rows)                                                         # x: 1 old + 3 current = 4 of 8
    assert w.flags(rows, 0.45).tolist() == [True, True, True, False]
    assert w.flags(rows, 0.5).tolist() == [False, False, False, False]  # strictly above r_thres


def test_a_short_batch_counts_its_own_rows_only():
    """An epoch's last mini-batch is smaller: its unused rows (-1) match nothing and the total counts real rows."""
    w = F.FrequencyWindow(2, batch_size=4, max_len=4)
    w.push(_rows("aaab"))
    w.push(_rows("a"))                                                   # a: 4 of 5
    assert w.total == 5 and w.counts(_rows("ab")).tolist() == [4, 1] and w.max_ratio() == pytest.approx(4 / 5)
    assert w.flags(_rows("a"), 0.79).tolist() == [True] and w.flags(_rows("a"), 0.8).tolist() == [False]
    w.push(_rows("bb"))                                                  # evicts "aaab": a 1, b 2 of 3
    assert w.total == 3 and w.counts(_rows("ab")).tolist() == [1, 2]
    w.push(_rows("cccc"))
    assert w.total == 6 and w.counts(_rows("abc")).tolist() == [0, 2, 4]


def test_response_rows_are_exact_strings_with_eos():
    """Rows are equal iff the ids up to and including the first </s> are: what follows </s> is ignored, and a
    sample cut at the length limit differs from the same words ending in </s>."""
    samples = torch.tensor([[5, 6, EOS_ID, PAD_ID, PAD_ID], [5, 6, 7, 8, 9], [5, 6, EOS_ID, 7, 7],
                            [5, 6, EOS_ID, EOS_ID, 5], [5, 6, 7, 8, EOS_ID]])
    rows = F.response_rows(samples, 6)
    assert rows.tolist() == [[5, 6, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [5, 6, 7, 8, 9, PAD_ID],
                             [5, 6, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [5, 6, EOS_ID, PAD_ID, PAD_ID, PAD_ID],
                             [5, 6, 7, 8, EOS_ID, PAD_ID]]
    w = F.FrequencyWindow(1, batch_size=5, max_len=6)
    w.push(rows)
    assert w.counts(rows).tolist() == [3, 1, 3, 3, 1]
    assert torch.equal(as_targets(samples)[:, 1:], rows[:, :5])        # the same masking as the targets


# -------------------------------------------------------- the device window against the host one it replaced


def _host_keys(samples: torch.Tensor) -> list[str]:
    """The former host keys: ids up to and including the first </s> (the whole row without one), <pad> dropped."""
    keys = []
    for row in samples.tolist():
        end = row.index(EOS_ID) + 1 if EOS_ID in row else len(row)
        keys.append(" ".join(str(i) for i in row[:end] if i != PAD_ID))
    return keys


class _HostWindow:
    """The former host window: a Counter of keys over the last ``size`` mini-batches."""

    def __init__(self, size: int):
        self.size, self.batches, self.counts = size, deque(), Counter()

    def push(self, keys: list[str]) -> None:
        self.batches.append(Counter(keys))
        self.counts.update(self.batches[-1])
        if len(self.batches) > self.size:
            self.counts.subtract(self.batches.popleft())

    @property
    def total(self) -> int:
        return sum(sum(b.values()) for b in self.batches)

    def flags(self, keys: list[str], r_thres: float) -> list[bool]:
        if len(self.batches) < self.size:
            return [False] * len(keys)
        return [self.counts[k] / self.total > r_thres for k in keys]


def _greedy_like(gen: torch.Generator, b: int, width: int) -> torch.Tensor:
    """(b, width) decoded-like ids over few words (many repeats): </s> at any position or none, anything after it
    (<pad>, words, </s>), never <pad> before it."""
    words = torch.randint(5, 7, (b, width), generator=gen)
    eos_at = torch.randint(0, width + 2, (b,), generator=gen)           # >= width: no </s>
    pos = torch.arange(width)
    tail = torch.tensor([PAD_ID, EOS_ID, 5, 6, 9])[torch.randint(0, 5, (b, width), generator=gen)]
    out = torch.where(pos > eos_at.unsqueeze(1), tail, words)
    return out.masked_fill(pos == eos_at.unsqueeze(1), EOS_ID)


def test_device_window_flags_equal_the_host_window_flags():
    """Batch by batch, the device window's counts and flags equal the former host window's (Python float64
    count / total > r_thres), at thresholds equal to a key's exact ratio too (not flagged) and one float either
    side of it, with short batches, narrower decodes, rows without </s>, rows equal up to </s> but not after it,
    and evictions."""
    gen = torch.Generator().manual_seed(0)
    size, batch, max_len = 5, 8, 4
    host, dev = _HostWindow(size), F.FrequencyWindow(size, batch, max_len)
    boundary_hits = flagged = unflagged = 0
    for t in range(40):
        b = 3 if t % 7 == 6 else batch                                   # an epoch's short last batch
        width = max_len - (t % 3 == 1)                                   # decodes may stop before max_len
        samples = _greedy_like(gen, b, width)
        keys = _host_keys(decoding.pad_samples(samples, max_len))
        assert keys == _host_keys(samples)
        host.push(keys)
        rows = F.response_rows(samples, max_len)
        dev.push(rows)
        assert dev.total == host.total and dev.full == (t + 1 >= size)
        assert dev.counts(rows).tolist() == [host.counts[k] for k in keys]
        assert dev.max_ratio() == max(host.counts.values()) / host.total
        exact = {host.counts[k] / host.total for k in keys}              # thresholds a key's ratio equals
        near = {math.nextafter(r, to) for r in exact for to in (0.0, 1.0)}  # and the floats either side
        for r_thres in sorted(exact | near | {0.0, 0.05, 0.1, 1 / 6, 0.2, 0.25, 0.3, 1 / 3, 0.5, 1.0}):
            want = host.flags(keys, r_thres)
            assert dev.flags(rows, r_thres).tolist() == want, (t, r_thres)
            if dev.full and r_thres in exact:
                at = [host.counts[k] / host.total == r_thres for k in keys]
                assert not any(f for f, a in zip(want, at) if a)          # a ratio equal to r_thres is not negative
                boundary_hits += sum(at)
            flagged, unflagged = flagged + sum(want), unflagged + len(want) - sum(want)
    assert boundary_hits > 0 and flagged > 0 and unflagged > 0


def test_as_targets_and_eos_weights():
    samples = torch.tensor([[5, 6, EOS_ID, 7], [5, 6, 7, 8]])
    tgt = as_targets(samples)
    assert tgt.tolist() == [[BOS_ID, 5, 6, EOS_ID, PAD_ID], [BOS_ID, 5, 6, 7, 8]]
    assert torch.allclose(F.position_weights(tgt, 0.1), torch.tensor([[1, 1, 0.1, 0], [1, 1, 1, 1]]))
    quirk = F.position_weights(tgt, 0.1, on_last_position=True)         # the release: last position, </s> or not
    assert torch.allclose(quirk, torch.tensor([[1, 1, 0.1, 0], [1, 1, 1, 0.1]]))


def _window(cfg, size, batch) -> F.FrequencyWindow:
    return F.FrequencyWindow(size, batch, cfg.max_len)


def _negative_loss(model, src, tgt, weights) -> torch.Tensor:
    """The textbook negative loss: sum(log p * w) / (number of real target tokens), minimised to lower log p."""
    out = model(src, tgt)
    return (out.token_logp * weights).sum() / out.mask.sum().clamp(min=1)


def _torch_sgd(model, cfg: F.FrequentSettings, **kw) -> Sgd:
    """A reference optimiser: torch.optim.SGD with the settings' lr, momentum, weight decay and clipping."""
    args = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, clip_norm=cfg.clip_norm)
    return Sgd(model.parameters(), **{**args, **kw}, arithmetic="torch")


def _step(model, cfg, src, tgt, samples, window=None) -> F.StepStats:
    """One step; the window defaults to ``cfg.window`` mini-batches of ``len(src)``."""
    updates = F.Updates(model, cfg, len(src), use_graph=False)
    return F.frequent_step(updates, src, tgt, samples, window or _window(cfg, cfg.window, len(src)), cfg)


def _logp(model, src, samples) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(src, as_targets(samples)).token_logp.sum(1)


def test_negative_step_lowers_the_log_prob_of_a_frequent_response(attention_kw):
    model, src = _model(**attention_kw), torch.randint(5, V, (4, 6))
    tgt = torch.cat([torch.full((4, 1), BOS_ID), torch.randint(5, V, (4, 3)), torch.full((4, 1), EOS_ID)], 1)
    samples = torch.tensor([[7, 8, EOS_ID]] * 4)                         # every input answered the same way
    before = _logp(model, src, samples)
    cfg = _cfg()
    stats = _step(model, cfg, src, tgt, samples)
    assert int(stats.negatives) == 4
    assert (_logp(model, src, samples) < before - 1e-3).all()


def test_eos_weight_zero_leaves_a_lone_eos_response_untouched():
    """A response that is only </s> carries weight eos_weight on its single position: 0 means no update."""
    src, samples = torch.randint(5, V, (3, 6)), torch.tensor([[EOS_ID, PAD_ID]] * 3)
    tgt = torch.tensor([[BOS_ID, 5, EOS_ID]] * 3)
    results = {}
    for w in (0.0, 0.1):
        model = _model()
        cfg = _cfg(eos_weight=w)
        before = _logp(model, src, samples)
        assert int(_step(model, cfg, src, tgt, samples).negatives) == 3
        results[w] = (_logp(model, src, samples) - before)
    assert torch.allclose(results[0.0], torch.zeros(3), atol=1e-6)
    assert (results[0.1] < -1e-4).all()


def test_no_update_before_the_window_fills():
    model, src = _model(), torch.randint(5, V, (2, 6))
    samples = torch.tensor([[7, EOS_ID]] * 2)
    tgt = as_targets(samples)
    cfg = _cfg(window=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert int(_step(model, cfg, src, tgt, samples).negatives) == 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_full_batch_negative_step_equals_the_step_on_the_negative_rows_alone(attention_kw):
    """The fixed-shape negative step (all rows, weight 0 off the negatives) moves the weights exactly as one
    torch.optim.SGD step on the negative rows alone (dropout 0: both see the same network)."""
    src = torch.randint(5, V, (4, 6))
    tgt = torch.cat([torch.full((4, 1), BOS_ID), torch.randint(5, V, (4, 3)), torch.full((4, 1), EOS_ID)], 1)
    samples = torch.tensor([[7, 8, EOS_ID], [9, EOS_ID, PAD_ID], [7, 8, EOS_ID], [5, 6, 10]])
    cfg = _cfg(r_thres=0.3, lambda_pos=0.0, momentum=0.9, weight_decay=1e-3, clip_norm=0.5, max_len=3)
    ours, ref = _model(**attention_kw), _model(**attention_kw)
    stats = _step(ours, cfg, src, tgt, samples)
    assert int(stats.negatives) == 2                                     # "7 8 </s>" is half of the batch
    neg = torch.tensor([True, False, True, False])
    neg_tgt = as_targets(samples[neg])
    _torch_sgd(ref, cfg).update(_negative_loss(ref, src[neg], neg_tgt, F.position_weights(neg_tgt, cfg.eos_weight)))
    _torch_sgd(ref, cfg).update(0.0 * mle_loss(ref(src, tgt)))
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_release_normalises_the_negative_step_by_the_whole_batch():
    """negative_norm "batch" (the release) divides by every sample's length: the step equals the per-negative-token
    step scaled by (negative tokens / all tokens)."""
    src = torch.randint(5, V, (4, 6))
    tgt = torch.cat([torch.full((4, 1), BOS_ID), torch.randint(5, V, (4, 3)), torch.full((4, 1), EOS_ID)], 1)
    samples = torch.tensor([[7, 8, EOS_ID], [9, EOS_ID, PAD_ID], [7, 8, EOS_ID], [5, 6, 10]])
    cfg = _cfg(r_thres=0.3, max_len=3, negative_norm="batch", update_every_batch=True)
    ours, ref = _model(), _model()
    _step(ours, cfg, src, tgt, samples)
    neg = torch.tensor([True, False, True, False])
    neg_tgt = as_targets(samples[neg])
    scale = 6 / 11                                                       # 3 + 3 negative tokens of 3 + 2 + 3 + 3
    loss = scale * _negative_loss(ref, src[neg], neg_tgt, F.position_weights(neg_tgt, cfg.eos_weight))
    _torch_sgd(ref, cfg, momentum=0.0, weight_decay=0.0).update(loss)
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_update_every_batch_steps_on_positive_pairs_before_the_window_fills():
    """update_every_batch: the positive step runs even before the window fills, on the pairs it is given (those of
    the stream with positive_batch "stream")."""
    model, src = _model(), torch.randint(5, V, (2, 6))
    samples = torch.tensor([[7, EOS_ID]] * 2)
    tgt = as_targets(samples)
    other = (torch.randint(5, V, (2, 6)), as_targets(torch.tensor([[9, 10, EOS_ID]] * 2)))
    cfg = _cfg(window=2, update_every_batch=True, lambda_pos=1.0)
    before = _logp(model, other[0], other[1][:, 1:])
    updates = F.Updates(model, cfg, 2, use_graph=False)
    stats = F.frequent_step(updates, src, tgt, samples, _window(cfg, 2, 2), cfg, other)
    assert int(stats.negatives) == 0 and stats.pos_loss is not None
    assert (_logp(model, other[0], other[1][:, 1:]) > before + 1e-3).all()


def test_release_step_reads_nothing_back_on_the_host():
    """update_every_batch: a step with the window full (negatives among the samples) reads no tensor on the host
    (no host synchronisation on a GPU; tests/host_syncs.py, which sees operators that read back too, such as a
    boolean mask or nonzero): its negatives count stays a device tensor."""
    model, src = _model(), torch.randint(5, V, (4, 6))
    samples = torch.tensor([[7, 8, EOS_ID], [9, EOS_ID, PAD_ID], [7, 8, EOS_ID], [5, 6, 10]])
    tgt = as_targets(samples)
    cfg = _cfg(r_thres=0.3, window=2, update_every_batch=True, negative_norm="batch", max_len=5)
    updates, window = F.Updates(model, cfg, 4, use_graph=False), _window(cfg, 2, 4)
    F.frequent_step(updates, src, tgt, samples, window, cfg)
    with HostSyncs() as syncs:
        stats = F.frequent_step(updates, src, tgt, samples, window, cfg, (src, tgt))
    assert syncs.total == 0, dict(syncs.lines)
    assert window.full and isinstance(stats.negatives, torch.Tensor) and int(stats.negatives) == 2


def test_lookahead_decoding_gives_the_same_training_run():
    """Decoding up to 8 upcoming mini-batches in one call (samples past an update discarded) gives the same run
    as decoding each mini-batch when it is reached: same curve, same counts, same weights (CPU)."""
    from negtrain_core.data.vocab import SPECIALS, Vocab

    vocab = Vocab(SPECIALS + tuple(f"w{i}" for i in range(V - 5)))
    gen = torch.Generator().manual_seed(3)
    src = torch.randint(5, V, (96, 6), generator=gen)
    tgt = torch.cat([torch.full((96, 1), BOS_ID), torch.randint(5, V, (96, 3), generator=gen),
                     torch.full((96, 1), EOS_ID)], 1)
    runs = {}
    for lookahead in (1, 8):
        model = _model()
        model.drop.p = 0.0
        cfg = _cfg(epochs=3, batch_size=4, window=3, r_thres=0.2, lr=0.3, lambda_pos=1.0, max_len=6,
                   lookahead=lookahead)                                 # the paper's listing: updates only on negatives
        (curve,) = F.train_frequent([model], (src, tgt), (src[:16], tgt[:16]), vocab, [cfg])
        runs[lookahead] = (curve, model.state_dict())
    (c1, w1), (c8, w8) = runs[1], runs[8]
    assert 0 < c1["negative_steps"].iloc[-1] < c1["steps"].iloc[-1]      # some updates, some skipped batches
    assert c8["decodes"].iloc[-1] < c1["decodes"].iloc[-1] == c1["steps"].iloc[-1]
    cols = ["steps", "negative_steps", "negatives", "test_ppl", "test_max_ratio", "top_response"]
    pd.testing.assert_frame_equal(c1[cols], c8[cols])
    assert all(torch.allclose(w1[k], w8[k], atol=1e-6) for k in w1)


def test_training_aborts_with_one_line_when_test_ppl_explodes():
    from negtrain_core.data.vocab import SPECIALS, Vocab

    vocab = Vocab(SPECIALS + tuple(f"w{i}" for i in range(V - 5)))
    model, src = _model(), torch.randint(5, V, (16, 6))
    tgt = torch.cat([torch.full((16, 1), BOS_ID), torch.randint(5, V, (16, 3)), torch.full((16, 1), EOS_ID)], 1)
    cfg = _cfg(epochs=2, batch_size=8, ppl_abort=1.5)                   # an untrained model's PPL is ~V
    with pytest.raises(F.FrequentAbort, match=r"r_thres=0.5\) aborted after epoch 1: test PPL .* > "
                                              r"frequent.ppl_abort 1.5"):
        F.train_frequent([model], (src, tgt), (src, tgt), vocab, [cfg])
    (curve,) = F.train_frequent([_model()], (src, tgt), (src, tgt), vocab, [_cfg(epochs=2, batch_size=8)])
    assert curve["epoch"].tolist() == [0, 1, 2] and curve["steps"].tolist() == [0, 2, 4]
    (release,) = F.train_frequent([_model()], (src, tgt), (src, tgt), vocab,
                                  [_cfg(epochs=2, batch_size=8, update_every_batch=True, negative_norm="batch")])
    assert release["decodes"].tolist() == release["steps"].tolist() == [0, 2, 4]   # one decode per batch
    assert curve["test_max_ratio"].between(0, 1).all() and (curve["test_ppl"] > 1).all()


@pytest.mark.parametrize("precision", ["ieee", "tf32"])
def test_matmul_precision_holds_for_the_updates_decodes_and_tests_then_is_restored(monkeypatch, precision):
    """frequent.matmul_precision: torch's TF32 flag as every update, greedy decode and per-epoch test of Algorithm 2
    sees it (the CPU ignores the flag, a GPU's cuBLAS reads it, and CUDA graphs keep what it was at their capture);
    interleaved runs must agree on it."""
    from negtrain_core.data.vocab import SPECIALS, Vocab

    seen: list[tuple[str, bool]] = []

    def spy(kind, real):
        def call(*a, **kw):
            seen.append((kind, torch.backends.cuda.matmul.allow_tf32))
            return real(*a, **kw)
        return call

    monkeypatch.setattr(F, "frequent_step", spy("update", F.frequent_step))
    monkeypatch.setattr(F, "_epoch_row", spy("test", F._epoch_row))
    monkeypatch.setattr(F.decoding, "greedy", spy("decode", F.decoding.greedy))
    vocab = Vocab(SPECIALS + tuple(f"w{i}" for i in range(V - 5)))
    src = torch.randint(5, V, (16, 6))
    tgt = torch.cat([torch.full((16, 1), BOS_ID), torch.randint(5, V, (16, 3)), torch.full((16, 1), EOS_ID)], 1)
    before = torch.backends.cuda.matmul.allow_tf32
    cfg = _cfg(epochs=1, batch_size=8, update_every_batch=True, matmul_precision=precision)
    F.train_frequent([_model()], (src, tgt), (src, tgt), vocab, [cfg])
    assert {kind for kind, _ in seen} == {"update", "decode", "test"}
    assert all(flag == (precision == "tf32") for _, flag in seen)
    assert torch.backends.cuda.matmul.allow_tf32 == before
    other = _cfg(epochs=1, batch_size=8, matmul_precision="ieee" if precision == "tf32" else "tf32")
    with pytest.raises(ValueError, match="one matmul_precision"):
        F.train_frequent([_model(), _model()], (src, tgt), (src, tgt), vocab, [cfg, other])


def test_weight_grads_deferred_reaches_the_release_decoders_updates_and_trains_as_per_step(monkeypatch):
    """frequent.weight_grads: deferred makes each update of the release decoder take one weight-gradient product over
    its steps (models/step_grads.py's StepWeights) and trains, within rounding, to per_step's weights and curve;
    afterwards the model is as before and no tensor of the run is left alive (a kept graph would be). A model without
    the release decoder is refused in one line."""
    from negtrain_core.data.vocab import SPECIALS, Vocab
    from negtrain_core.models import lstm

    built = []

    class Counted(lstm.StepWeights):
        def __init__(self, *a, **kw):
            built.append(1)
            super().__init__(*a, **kw)

    monkeypatch.setattr(lstm, "StepWeights", Counted)
    vocab = Vocab(SPECIALS + tuple(f"w{i}" for i in range(V - 5)))
    src = torch.randint(5, V, (16, 6), generator=torch.Generator().manual_seed(3))
    tgt = torch.cat([torch.full((16, 1), BOS_ID), torch.randint(5, V, (16, 3)), torch.full((16, 1), EOS_ID)], 1)
    out = {}
    for mode in ("per_step", "deferred"):
        built.clear()
        model = _model(attention="release", decoder_init="zero")
        cfg = _cfg(epochs=2, batch_size=8, update_every_batch=True, negative_norm="batch", lambda_pos=1.0,
                   weight_grads=mode)
        (curve,) = F.train_frequent([model], (src, tgt), (src, tgt), vocab, [cfg])
        out[mode] = (curve, model.state_dict(), len(built))
        assert "release_weight_grads" not in vars(model)                # restored: the class default again
    (c_a, w_a, n_a), (c_b, w_b, n_b) = out["per_step"], out["deferred"]
    # 4 mini-batches (2 epochs of 2), each a negative and a positive step; each forward: the query's + one layer's two
    assert n_a == 0 and n_b == 4 * 2 * (1 + 2)
    pd.testing.assert_frame_equal(c_a.drop(columns="seconds", errors="ignore"),
                                  c_b.drop(columns="seconds", errors="ignore"), check_exact=False, rtol=1e-5)
    assert all(torch.allclose(w_a[k], w_b[k], rtol=1e-5, atol=1e-6) for k in w_a)

    def tensors() -> int:
        gc.collect()
        return sum(type(o) in (torch.Tensor, torch.nn.Parameter) for o in gc.get_objects())

    alive = tensors()                               # nothing of the runs outlives them: no graph, no tensor
    for mode in ("per_step", "deferred"):
        cfg = _cfg(epochs=2, batch_size=8, update_every_batch=True, negative_norm="batch", weight_grads=mode)
        F.train_frequent([model], (src, tgt), (src, tgt), vocab, [cfg])
        assert tensors() == alive, mode
    with pytest.raises(ValueError, match=r"^frequent.weight_grads: 'deferred' needs the release's LSTM decoder"):
        F.train_frequent([_model()], (src, tgt), (src, tgt), vocab, [_cfg(epochs=1, batch_size=8,
                                                                           weight_grads="deferred")])


# ------------------------------------------------------------------------------ the stages, end to end (tiny)


def _world(tmp_path):
    """A tiny dataset, a random seq2seq and LM checkpoint, and quick-scale settings with CPU-sized knobs."""
    import random

    import pandas as pd

    from negtrain_core.models import checkpoint
    from negtrain_core import config as ncfg
    from negtrain_core.models.lstm import LSTMLM
    from negtrain_core.data.vocab import SPECIALS, Vocab

    words = [f"w{i}" for i in range(20)]
    vocab = Vocab(SPECIALS + tuple(words))
    rng = random.Random(0)
    for split, n_dialogues in (("train", 12), ("valid", 3), ("test", 3)):
        rows = []
        for d in range(n_dialogues):
            utts = [" ".join(rng.choices(words, k=rng.randint(1, 6))) for _ in range(8)]
            rows += [{"dialogue_id": f"{split}{d}", "turn": t, "source": utts[t - 1], "target": utts[t]}
                     for t in range(1, 8)]
        pd.DataFrame(rows).astype({"turn": "int32"}).to_parquet(tmp_path / f"{split}.parquet")
    cfg = ncfg.load(ROOT / "config.yaml")
    cfg.update(scale="quick", device="cpu")
    cfg["quick"].update(embedding_dim=8, hidden_dim=16, frequent_window=2, gan={"filters": 4, "highway_hidden": 8})
    cfg["datasets"]["chitchat"]["frequent"].update(batch_size=8, r_thres=[0.1, 0.01])
    cfg["gan"]["g_lrs"] = [0.01, 0.001]
    cfg["mmi"].update(lambdas=[0.5], gammas=[1, 2])
    cfg["unlikelihood"]["window"] = 2
    s = ncfg.settings(cfg, "chitchat")
    torch.manual_seed(0)
    mset = ModelSettings(vocab_size=len(vocab), embedding_dim=8, hidden_dim=16)
    checkpoint.save(tmp_path / "seq2seq.pt", Seq2Seq(mset), kind="seq2seq", vocab=vocab)
    checkpoint.save(tmp_path / "lm.pt", LSTMLM(mset), kind="lm", vocab=vocab)
    return s


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_interleaved_runs_give_what_each_gives_alone(tmp_path):
    """A job of several r_thres (frequent.runs_per_job) interleaves its r_thres runs mini-batch by mini-batch, each
    with its own random state: with dropout on, each run's curve and weights equal those of the run alone, bit for
    bit. Without the private random states the interleaved runs would draw each other's dropout masks."""
    from negtrain_core.models import checkpoint

    s = _world(tmp_path)
    p = lambda name: tmp_path / name  # noqa: E731
    base = checkpoint.load(p("seq2seq.pt"))
    noisy = Seq2Seq(ModelSettings(vocab_size=len(base.vocab), embedding_dim=8, hidden_dim=16, dropout=0.3))
    noisy.load_state_dict(base.model.state_dict())                      # dropout draws random numbers
    checkpoint.save(p("seq2seq.pt"), noisy, kind="seq2seq", vocab=base.vocab)
    inputs = (p("seq2seq.pt"), p("train.parquet"), p("test.parquet"))
    joint = F.run(*inputs, [p("j-0.1.pt"), p("j-0.01.pt")], [p("j-0.1.csv"), p("j-0.01.csv")], s, [0.1, 0.01])
    for r, curve in zip((0.1, 0.01), joint):
        (alone,) = F.run(*inputs, [p(f"a-{r}.pt")], [p(f"a-{r}.csv")], s, [r])
        pd.testing.assert_frame_equal(curve.drop(columns="seconds"), alone.drop(columns="seconds"))
        w_joint, w_alone = (checkpoint.read(p(f"{k}-{r}.pt"))["model_state"] for k in ("j", "a"))
        assert all(torch.equal(w_joint[k], w_alone[k]) for k in w_alone)
    assert not joint[0]["test_ppl"].equals(joint[1]["test_ppl"])        # two different runs, not one run twice


def _noisy_world(tmp_path, epochs: int, **cfg):
    """``_world`` with dropout in the baseline (random draws in every update) and ``epochs`` epochs per run."""
    import dataclasses

    from negtrain_core.models import checkpoint

    s = _world(tmp_path)
    base = checkpoint.load(tmp_path / "seq2seq.pt")
    noisy = Seq2Seq(ModelSettings(vocab_size=len(base.vocab), embedding_dim=8, hidden_dim=16, dropout=0.3))
    noisy.load_state_dict(base.model.state_dict())
    checkpoint.save(tmp_path / "seq2seq.pt", noisy, kind="seq2seq", vocab=base.vocab)
    return dataclasses.replace(s, frequent=[dataclasses.replace(c, epochs=epochs, **cfg) for c in s.frequent])


@pytest.mark.parametrize("r_thres, cfg", [([0.1, 0.01], {}),
                                          ([0.01], {"fresh_optimizers_each_epoch": False, "positive_batch": "stream"})])
def test_a_killed_job_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch, r_thres,
                                                                                     cfg):
    """Interleaved runs (each its own random slot) and a single one whose momentum outlives the epoch: the
    weights, momentum, window, data order, positive stream and random states all carry across the kill."""
    from negtrain_core.models import checkpoint

    s = _noisy_world(tmp_path, epochs=3, **cfg)
    p = lambda name: tmp_path / name  # noqa: E731
    inputs = (p("seq2seq.pt"), p("train.parquet"), p("test.parquet"))
    whole = F.run(*inputs, [p(f"w-{r}.pt") for r in r_thres], [p(f"w-{r}.csv") for r in r_thres], s, r_thres)
    real_save, saved = F.StateFiles.save, []

    def killed(self, runs, epoch):
        real_save(self, runs, epoch)
        saved.append(epoch)
        if epoch == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(F.StateFiles, "save", killed)
    outs = ([p(f"k-{r}.pt") for r in r_thres], [p(f"k-{r}.csv") for r in r_thres])
    with pytest.raises(KeyboardInterrupt):
        F.run(*inputs, *outs, s, r_thres)
    assert all(p(f"k-{r}.pt.state").exists() and not p(f"k-{r}.pt").exists() for r in r_thres)
    torch.manual_seed(12345)                                   # a new process would not share our RNG state
    resumed = F.run(*inputs, *outs, s, r_thres)
    assert saved == [1, 2, 3]
    for r, a, b in zip(r_thres, resumed, whole):
        pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
        w_kill, w_whole = (checkpoint.read(p(f"{k}-{r}.pt"))["model_state"] for k in ("k", "w"))
        assert all(torch.equal(w_kill[k], w_whole[k]) for k in w_whole)
        assert not p(f"k-{r}.pt.state").exists()


@pytest.mark.parametrize("window, cfg, said", [(11, {}, False), (12, {}, True), (11, {"drop_last_batch": True}, True),
                                                (11, {"first_negative_batch": "after_full"}, True)])
def test_a_window_the_run_never_fills_is_said_in_one_line(tmp_path, capsys, window, cfg, said):
    """84 training pairs in mini-batches of 8 are 11 mini-batches (10 without the partial last one): a window they
    never fill penalises nothing, silently but for this line; one they fill does penalise."""
    import dataclasses

    s = _world(tmp_path)
    s = dataclasses.replace(s, frequent=[dataclasses.replace(c, window=window, **cfg) for c in s.frequent])
    p = lambda name: tmp_path / name  # noqa: E731
    (curve,) = F.run(p("seq2seq.pt"), p("train.parquet"), p("test.parquet"), [p("f.pt")], [p("f.csv")], s, [0.01])
    err = capsys.readouterr().err
    assert bool(curve["negative_steps"].iloc[-1] == 0) is said
    if said:
        seen = 10 if cfg.get("drop_last_batch") else 11
        assert err == (f"negtrain: chitchat: Algorithm 2 never penalises a response: 1 epoch(s) of 84 training pairs "
                       f"in mini-batches of 8 give {seen} mini-batches, fewer than fill its window of {window} "
                       f"(frequent.window; quick.frequent_window at quick scale); lower it, or train on more pairs "
                       f"or for more epochs\n")
    else:
        assert err == ""


def test_a_job_whose_runs_stopped_after_different_epochs_starts_afresh(tmp_path, capsys):
    s = _noisy_world(tmp_path, epochs=2)
    p = lambda name: tmp_path / name  # noqa: E731
    inputs, r_thres = (p("seq2seq.pt"), p("train.parquet"), p("test.parquet")), [0.1, 0.01]
    outs = ([p(f"k-{r}.pt") for r in r_thres], [p(f"k-{r}.csv") for r in r_thres])
    whole = F.run(*inputs, *outs, s, r_thres)
    from negtrain_core.models import checkpoint
    vocab = checkpoint.load(p("seq2seq.pt")).vocab
    model = checkpoint.load(p("seq2seq.pt")).model
    fp = F.state_fingerprint(s, [F.settings_at(s, r) for r in r_thres], list(inputs))
    checkpoint.save(p("k-0.1.pt.state"), model, kind="seq2seq", vocab=vocab, epoch=1, extra={"fingerprint": fp})
    again = F.run(*inputs, *outs, s, r_thres)
    assert "not every run of the job has a state" in capsys.readouterr().err
    for a, b in zip(again, whole):
        pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert not p("k-0.1.pt.state").exists()


def test_stages_write_tables_4_and_9(tmp_path):
    import json

    import pandas as pd

    from negtrain_core.comparisons import gan, mmi, unlikelihood
    from negtrain_core.evaluate import responses
    from negtrain_core.tables import frequent as tables_frequent

    s = _world(tmp_path)
    p = lambda name: tmp_path / name  # noqa: E731
    curve, _ = F.run(p("seq2seq.pt"), p("train.parquet"), p("test.parquet"), [p("freq-0.1.pt"), p("freq-0.01.pt")],
                     [p("c1.csv"), p("c2.csv")], s, [0.1, 0.01])
    assert list(curve["epoch"]) == [0, 1] and curve["negative_steps"].iloc[-1] >= 1
    for lr in (0.01, 0.001):                                            # _world's gan.g_lrs
        gan.run_one(p("seq2seq.pt"), p("train.parquet"), p("valid.parquet"), p(f"gan-{lr}.pt"), p(f"gan-{lr}.csv"),
                    s, lr)
    sweep = gan.run_select([p("gan-0.01.csv"), p("gan-0.001.csv")], [p("gan-0.01.pt"), p("gan-0.001.pt")],
                           p("gan.pt"), p("gan_sweep.csv"), s)
    assert len(sweep) == 2 and sweep["selected"].sum() == 1
    unlikelihood.run(p("seq2seq.pt"), p("train.parquet"), p("ul.pt"), p("ul_curve.csv"), s)
    ev = lambda name: (p(f"eval/{name}/greedy.parquet"), p(f"eval/{name}/metrics.json"))  # noqa: E731
    mmi.run(p("seq2seq.pt"), p("lm.pt"), p("valid.parquet"), p("test.parquet"), *ev("mmi"), p("mmi_sweep.csv"), s)
    assert len(pd.read_csv(p("mmi_sweep.csv"))) == 3
    for name, ckpt in (("baseline", "seq2seq"), ("gan", "gan"), ("ul", "ul"), ("freq-0.1", "freq-0.1"),
                       ("freq-0.01", "freq-0.01")):
        m = responses.evaluate_model(p(f"{ckpt}.pt"), p("test.parquet"), *ev(name), s, name)
        assert m["n"] == 21 and m["ppl"] > 1 and 0 < m["max_ratio"] <= 1
    assert json.loads(p("eval/mmi/metrics.json").read_text())["ppl"] is None
    names = ["baseline", "gan", "ul", "mmi", "freq-0.1", "freq-0.01"]
    t4 = tables_frequent.write_tables(p("test.parquet"), [ev(n)[1] for n in names],
                                      [ev(n)[0] for n in ("baseline", "gan", "freq-0.1", "freq-0.01")],
                                      p("table4.csv"), p("table9.csv"), p("samples.txt"), s)
    assert list(t4["row"]) == ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1", "+neg-train 0.01"]
    t9 = pd.read_csv(p("table9.csv"))
    assert list(t9["row"]) == ["Baseline", "Neg-train 0.1", "Neg-train 0.01"]
    assert t9[["BLEU-4 corpus", "BLEU-4 sent-avg"]].stack().between(0, 1).all()
    base_responses, base_metrics = ev("baseline")
    assert t9["BLEU-4 corpus"].iloc[0] == pytest.approx(json.loads(base_metrics.read_text())["bleu4"])
    greedy = pd.read_parquet(base_responses)                          # the responses against their references
    by_hand = metrics.bleu4_sentence_avg([r.split() for r in greedy["response"]], [t.split() for t in greedy["target"]])
    assert t9["BLEU-4 sent-avg"].iloc[0] == pytest.approx(by_hand)
    text = p("samples.txt").read_text()
    assert text.count("Input:") == 7 and text.count("Baseline:") == 7 and "Neg-train (r_thres 0.01):" in text


@pytest.mark.slow
def test_quick_table4_on_chitchat_through_snakemake(quick_run):
    """Golden quick-scale run: preprocess, baselines, Algorithm 2 at both r_thres, GAN, UL, MMI, Tables 4 and 9."""
    import math

    import pandas as pd

    work = quick_run
    t4 = pd.read_csv(work / "results/chitchat/table4.csv")
    assert list(t4["row"]) == ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1", "+neg-train 0.01"]
    assert list(t4.columns[:6]) == ["row", "r_thres", "PPL", "M-ratio", "E-2", "E-3"] and set(t4["scale"]) == {"quick"}
    assert t4["M-ratio"].between(0, 1).all() and t4["E-2"].between(0, math.log(3005 ** 2)).all()
    assert t4["PPL"].isna().tolist() == [True, False, False, True, False, False, False]
    assert t4["PPL"].dropna().between(5, 400).all()
    assert t4["r_thres"].tolist()[-2:] == [0.1, 0.01]
    test_row, base = t4.iloc[0], t4.iloc[1]
    assert test_row["M-ratio"] < base["M-ratio"] and test_row["E-2"] > base["E-2"]   # references are more diverse
    t9 = pd.read_csv(work / "results/chitchat/table9.csv")
    assert list(t9["row"]) == ["Baseline", "Neg-train 0.1", "Neg-train 0.01"]
    assert t9[["BLEU-4 corpus", "BLEU-4 sent-avg"]].stack().between(0, 1).all()
    samples = (work / "results/chitchat/samples_frequent.txt").read_text()
    assert samples.count("Input:") == samples.count("Baseline:") == samples.count("GAN:") >= 5
    curve = pd.read_csv(work / "results/chitchat/models/freq-0.01_curve.csv")
    assert curve["epoch"].tolist() == [0, 1] and curve["negatives"].iloc[-1] > 0


def test_samples_show_consecutive_turns_and_what_the_model_reads():
    import pandas as pd

    from negtrain_core.tables import frequent as T

    assert T.shown_input("a b c", 5) == "a b c" and T.shown_input("a b c d e f", 3) == "... d e f"
    test = pd.DataFrame({"dialogue_id": ["x", "y", "y", "y"], "turn": [1, 2, 1, 3],
                         "source": ["q", "b", "a", "c"], "target": ["r", "c", "b", "d"]})
    assert list(T.consecutive_run(test, 3)) == [2, 1, 3]                 # dialogue y, turns 1-3 in order
    frame = test[["dialogue_id", "turn"]].assign(response=["", "yes", "no", "ok"])
    text = T.samples_text(test, {"Baseline": frame}, "t", n=3)
    assert text.split("\n")[2:4] == ["Input: a", "Baseline: no"] and "Baseline: yes" in text
    with pytest.raises(ValueError, match="not aligned"):
        T.samples_text(test, {"GAN": frame.iloc[::-1]}, "t", n=3)


def test_table4_puts_each_models_metrics_in_its_own_row():
    from negtrain_core.tables import frequent as T

    names = ["baseline", "gan", "mmi", "ul", "freq-0.1", "freq-0.01"]          # model k: PPL k1, M-ratio 0.0k, k2, k3
    model_metrics = {n: {"ppl": 10 * k + 1.0, "max_ratio": k / 100, "ent2": 10 * k + 2.0, "ent3": 10 * k + 3.0,
                         "bleu4": k / 10} for k, n in enumerate(names, start=1)}
    test_metrics = {"max_ratio": 0.5, "ent2": 7.0, "ent3": 8.0}
    t4 = T.table4(test_metrics, model_metrics, [0.1, 0.01], "switchboard", "full").set_index("row")
    assert list(t4.index) == ["Test-set", "Baseline", "+GAN", "+MMI", "+UL", "+neg-train 0.1", "+neg-train 0.01"]
    assert t4["PPL"].tolist()[1:] == [11.0, 21.0, 31.0, 41.0, 51.0, 61.0] and math.isnan(t4.loc["Test-set", "PPL"])
    assert t4["M-ratio"].tolist() == [0.5, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    assert t4["E-2"].tolist() == [7.0, 12.0, 22.0, 32.0, 42.0, 52.0, 62.0]
    assert t4["E-3"].tolist() == [8.0, 13.0, 23.0, 33.0, 43.0, 53.0, 63.0]
    assert t4["r_thres"].tolist()[-2:] == [0.1, 0.01]
    # the paper's Table 4, Switchboard: Baseline 42.81 / 37.4% / 2.71 / 2.42; +neg-train 1%: 44.32 / 9.8% / 5.48 / 6.03
    paper = ["paper_PPL", "paper_M-ratio", "paper_E-2", "paper_E-3"]
    assert t4.loc["Baseline", paper].tolist() == [42.81, 0.374, 2.71, 2.42]
    assert t4.loc["+neg-train 0.01", paper].tolist() == [44.32, 0.098, 5.48, 6.03]
    assert t4.loc["Test-set", paper].tolist()[1:] == [0.10, 8.61, 9.65] and math.isnan(t4.loc["Test-set", "paper_PPL"])
    assert math.isnan(t4.loc["+UL", "paper_PPL"])                          # not in the paper

    t9 = T.table9(model_metrics, [0.1, 0.01], "switchboard", "full", "b", {"baseline": 0.7, "freq-0.1": 0.8,
                                                                              "freq-0.01": 0.9}).set_index("row")
    assert list(t9.index) == ["Baseline", "Neg-train 0.1", "Neg-train 0.01"]
    assert t9["PPL"].tolist() == [11.0, 51.0, 61.0] and t9["M-ratio"].tolist() == [0.01, 0.05, 0.06]
    assert t9["BLEU-4 corpus"].tolist() == [0.1, 0.5, 0.6] and t9["BLEU-4 sent-avg"].tolist() == [0.7, 0.8, 0.9]
    # the paper's Table 9, Switchboard: Baseline 42.81 / 0.476 / 37.4%; Neg-train 44.32 / 0.475 / 9.8%
    assert t9.loc["Baseline", ["paper_PPL", "paper_BLEU-4", "paper_M-ratio"]].tolist() == [42.81, 0.476, 0.374]
    assert t9.loc["Neg-train 0.01", ["paper_PPL", "paper_BLEU-4", "paper_M-ratio"]].tolist() == [44.32, 0.475, 0.098]


def test_test_set_references_are_cut_to_max_target_len_minus_one_words():
    from negtrain_core.tables import frequent as T

    test = pd.DataFrame({"target": ["a b c d e f", "a b", "a b c d"]})
    assert T.reference_responses(test, 5) == [["a", "b", "c", "d"], ["a", "b"], ["a", "b", "c", "d"]]


def test_evaluate_model_decodes_up_to_max_target_len(tmp_path):
    """A model that never says </s>: every greedy test response runs to preprocess.max_target_len words."""
    import dataclasses
    import json

    from negtrain_core.evaluate import responses
    from negtrain_core.models import checkpoint

    s = _world(tmp_path)
    s = dataclasses.replace(s, data=dataclasses.replace(s.data, max_target_len=5))
    ck = checkpoint.load(tmp_path / "seq2seq.pt")
    with torch.no_grad():
        ck.model.out.bias[EOS_ID] = -30.0
    checkpoint.save(tmp_path / "mute.pt", ck.model, kind="seq2seq", vocab=ck.vocab)
    out = responses.evaluate_model(tmp_path / "mute.pt", tmp_path / "test.parquet", tmp_path / "greedy.parquet",
                                   tmp_path / "metrics.json", s, "mute")
    greedy = pd.read_parquet(tmp_path / "greedy.parquet")
    assert len(greedy) == 21 and all(len(r.split()) == 5 for r in greedy["response"])
    assert out["mean_len"] == 5.0 and json.loads((tmp_path / "metrics.json").read_text())["mean_len"] == 5.0


def test_positive_step_is_lambda_pos_times_the_per_token_nll_of_the_given_pairs():
    """update_every_batch before the window fills: the negative step has weight 0 everywhere (momentum 0: no move),
    the positive one is one SGD step on lambda_pos * NLL per real token of the given pairs (of unequal lengths)."""
    src, samples = torch.randint(5, V, (2, 6)), torch.tensor([[7, EOS_ID]] * 2)
    other = (torch.randint(5, V, (2, 6)), torch.tensor([[BOS_ID, 9, 10, EOS_ID], [BOS_ID, 9, EOS_ID, PAD_ID]]))
    cfg = _cfg(window=2, update_every_batch=True, lambda_pos=0.5)
    ours, ref = _model(), _model()
    stats = F.frequent_step(F.Updates(ours, cfg, 2, use_graph=False), src, as_targets(samples), samples,
                            _window(cfg, 2, 2), cfg, other)
    assert int(stats.negatives) == 0
    ref.train()
    out = ref(*other)
    nll = -(out.token_logp[0, :3].sum() + out.token_logp[1, :2].sum()) / 5          # 3 + 2 real target tokens
    grads = torch.autograd.grad(nll, list(ref.parameters()), allow_unused=True)
    for (name, p), q, g in zip(ours.named_parameters(), ref.parameters(), grads):
        want = q.detach() - cfg.lr * 0.5 * (g if g is not None else torch.zeros_like(q))
        assert torch.allclose(p, want, atol=1e-6), name


def test_a_step_counts_samples_alike_up_to_their_first_eos():
    """What a greedy sample holds after its first </s> is not part of the response: two samples '7 </s>' with other
    tails are one response, its ratio 2/2 above r_thres 0.5."""
    model, src = _model(), torch.randint(5, V, (2, 6))
    samples = torch.tensor([[7, EOS_ID, 5], [7, EOS_ID, 6]])
    stats = _step(model, _cfg(max_len=3), src, as_targets(samples), samples)
    assert int(stats.negatives) == 2
