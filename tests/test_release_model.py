"""The release's model choices (docs/release.md#models) as ``model`` options: the release's attention decoder against
a forward pass written out by hand, the zero decoder start, the decoder-only dropout sites and the PyTorch 0.4
initialisation; and that decoding and gibbs-enum run unchanged on a model with all of them."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from negtrain_core.config import ModelSettings
from negtrain_core.data.vocab import BOS_ID, EOS_ID, EOU_ID, PAD_ID
from negtrain_core.models import decoding
from negtrain_core.models.layers import OneHotEmbedding
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.models.scoring import model_output
from negtrain_core.search import gibbs_enum as S

V, E, H = 11, 5, 7
RELEASE = dict(attention="release", decoder_init="zero", dropout_sites="decoder", init="release")


def cfg(**kw) -> ModelSettings:
    return ModelSettings(**{"vocab_size": V, "embedding_dim": E, "hidden_dim": H, **kw})


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Sources left-padded (row 0 by two <pad>), targets ``<s> y </s> <pad>..``."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(5, V, (3, 6), generator=g)
    src[:, -1] = EOU_ID
    src[0, :2] = PAD_ID
    tgt = torch.randint(5, V, (3, 6), generator=g)
    tgt[:, 0] = BOS_ID
    tgt[0, 3], tgt[0, 4:] = EOS_ID, PAD_ID
    tgt[1:, -1] = EOS_ID
    return src, tgt


# ------------------------------------------------------------------------------ a forward pass written out by hand


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step, gates in torch's order (input, forget, cell, output): x (B, I), h and c (B, H)."""
    gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def reference_logits(p: dict[str, torch.Tensor], src: torch.Tensor, tgt_in: torch.Tensor, zero_start: bool
                     ) -> torch.Tensor:
    """The release's ``RNNAttDecoder.forward`` over the one-hot encoder, from the state dict ``p`` alone (models.py
    L178-232): src (B, S), tgt_in (B, T) ids -> logits (B, T, V). No dropout (eval mode)."""
    B = src.size(0)
    onehot = F.one_hot(src, V).double()
    x = onehot @ p["src_embed.weight"] + (p["src_embed.bias"] if "src_embed.bias" in p else 0)
    h, c, outs = torch.zeros(B, H).double(), torch.zeros(B, H).double(), []
    enc = [p[f"encoder.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    for s in range(src.size(1)):
        h, c = lstm_cell(x[:, s], h, c, *enc)
        outs.append(h)
    memory = torch.stack(outs, 1)                                              # (B, S, H): every position
    if zero_start:
        h, c = torch.zeros(B, H).double(), torch.zeros(B, H).double()
    dec = [p[f"decoder.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    logits = []
    for t in range(tgt_in.size(1)):
        e = p["tgt_embed.weight"][tgt_in[:, t]]                                # (B, E)
        q = torch.relu(torch.cat([e, h, c], 1) @ p["attn_q.weight"].T + p["attn_q.bias"])   # (B, H)
        scores = torch.einsum("bsh,bh->bs", memory, q)                        # no W_a, no mask
        w = torch.exp(scores - scores.max(1, keepdim=True).values)
        w = w / w.sum(1, keepdim=True)
        ctx = torch.einsum("bs,bsh->bh", w, memory)
        h, c = lstm_cell(torch.cat([ctx, e], 1), h, c, *dec)
        logits.append(h @ p["out.weight"].T + p["out.bias"])                   # no tanh(W_c [c; h])
    return torch.stack(logits, 1)


@pytest.mark.parametrize("decoder_init", ["zero", "encoder"])
@pytest.mark.parametrize("init", ["release", "torch"])
def test_release_attention_is_the_hand_written_forward(decoder_init: str, init: str):
    torch.manual_seed(0)
    model = Seq2Seq(cfg(attention="release", decoder_init=decoder_init, init=init)).double().eval()
    src, tgt = batch()
    p = {k: v.detach() for k, v in model.state_dict().items()}
    want = F.log_softmax(reference_logits(p, src, tgt[:, :-1], zero_start=decoder_init == "zero"), -1)
    want = want.gather(-1, tgt[:, 1:, None]).squeeze(-1) * (tgt[:, 1:] != PAD_ID)
    torch.testing.assert_close(model(src, tgt).token_logp, want, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model(F.one_hot(src, V).double(), tgt).token_logp, want, rtol=1e-10, atol=1e-10)


def test_release_attention_with_two_layers_steps_the_decoder_lstm_itself():
    """With num_layers 2 the query still reads the first layer's state; the fused cells equal one call of the
    decoder's own ``nn.LSTM`` per position (the release's loop), gradients included."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg(attention="release", num_layers=2)).double().eval()
    src, tgt = batch()
    with torch.backends.cudnn.flags(enabled=False):           # gradients in eval mode: off cuDNN, as a GPU needs
        enc = model.encode(src)
        hidden, outs = model.start_hidden(enc), []
        emb = model.tgt_embed(tgt[:, :-1])
        for t in range(emb.size(1)):
            e = emb[:, t]
            query = torch.relu(model.attn_q(torch.cat([e, hidden[0][0], hidden[1][0]], dim=-1)))
            ctx = (torch.softmax(enc.out @ query.unsqueeze(-1), dim=1).transpose(1, 2) @ enc.out).squeeze(1)
            out, hidden = model.decoder(torch.cat([ctx, e], dim=-1).unsqueeze(1), hidden)
            outs.append(out)
        want = model.out(torch.cat(outs, 1))
        got, after = model.decode(tgt[:, :-1], enc)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for a, b in zip(after, hidden):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad(x.sum(), model.decoder.weight_hh_l1, retain_graph=True)[0] for x in (got, want)]
    torch.testing.assert_close(*grads, rtol=1e-10, atol=1e-12)


def _backward_nodes(root) -> list[str]:
    seen, stack, names = set(), [root], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def test_release_decoder_reads_its_steps_without_a_backward_copy_per_step():
    """The step loop slices its (B, T, .) inputs with ``unbind`` (one ``stack`` in backward), not by indexing,
    whose backward writes a zero-filled (B, T, .) tensor per step and adds them up."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg(**RELEASE))
    src, tgt = batch()
    names = _backward_nodes(model(src, tgt).token_logp.sum().grad_fn)
    assert "SelectBackward0" not in names and names.count("UnbindBackward0") == 2


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the fused LSTM cell)")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_deferred_weight_grads_equal_autograds(monkeypatch, num_layers: int, device: str):
    """``release_weight_grads: deferred`` (one weight-gradient product over all steps, models/step_grads.py) gives
    the per-step path's outputs (on a GPU within rounding) and, within rounding, its gradients: the parameters'
    (dropout active) and a one-hot source's (gibbs-enum's). Its weights' gradients go through one
    ``_CollectBackward`` node each."""
    dtype = torch.float64 if device == "cpu" else torch.float32
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-6)
    torch.manual_seed(0)
    model = Seq2Seq(cfg(**RELEASE, num_layers=num_layers, dropout=0.3)).to(device, dtype).train()
    src, tgt = (t.to(device) for t in batch())
    one_hot = F.one_hot(src, V).to(dtype).requires_grad_()
    got = {}
    for mode in ("per_step", "deferred"):
        monkeypatch.setattr(Seq2Seq, "release_weight_grads", mode)
        torch.manual_seed(1)                                   # the same dropout masks
        out = model(one_hot, tgt).token_logp
        got[mode] = (out.detach(), torch.autograd.grad(out.sum(), [*model.parameters(), one_hot]),
                     _backward_nodes(out.sum().grad_fn) if mode == "deferred" else None)
    (out_a, grads_a, _), (out_b, grads_b, names) = got["per_step"], got["deferred"]
    # the same products on the CPU; on a GPU the biases are added in the products, not in the fused cell
    torch.testing.assert_close(out_b, out_a, **(dict(rtol=0, atol=0) if device == "cpu" else tol))
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(b, a, **tol)
    assert names.count("_CollectBackward") == 1 + 2 * num_layers      # the query's weight, each layer's two
    with torch.no_grad():                                      # without gradients: the plain products, same outputs
        torch.manual_seed(1)
        assert torch.equal(model(one_hot, tgt).token_logp, out_a)


def test_deferred_weight_grads_leave_no_graph_alive_and_refuse_an_input_changed_in_place(monkeypatch):
    """The deferred path keeps each step's input for the weight's gradient; kept with its graph it would make a cycle
    that Python's collector cannot break, so every forward pass's graph would outlive it (with or without a backward
    pass). An input modified in place between the forward and the backward pass is refused, as autograd refuses a
    changed saved tensor."""
    import gc

    from negtrain_core.models import step_grads

    def alive() -> int:
        gc.collect()
        return sum(type(o) is step_grads._Steps for o in gc.get_objects())

    monkeypatch.setattr(Seq2Seq, "release_weight_grads", "deferred")
    model = Seq2Seq(cfg(**RELEASE)).train()
    src, tgt = batch()
    before = alive()
    for _ in range(3):
        model(src, tgt).token_logp.sum().backward()
        model(src, tgt).token_logp.sum()                                 # a forward pass that is never differentiated
    assert alive() == before
    x = torch.randn(3, H, requires_grad=True)
    steps = step_grads.StepWeights(torch.randn(4, H, requires_grad=True), torch.randn(4, requires_grad=True))
    out = steps.linear(x * 1.0)
    used = steps.steps.inputs[0]
    used.add_(1.0)                                                       # the kept input, changed before backward
    with pytest.raises(RuntimeError, match=r"step_grads: the input of step 0 was modified by an in-place operation"):
        out.sum().backward()


def test_the_gpu_branch_of_the_deferred_cell_reaches_torchs_fused_kernel(monkeypatch):
    """On a GPU ``lstm_pointwise`` calls torch's fused LSTM cell operator; here, with the tensors claiming to be on
    CUDA, the call must reach that operator's dispatch (which has no CPU kernel), not fail to find it."""
    from negtrain_core.models.step_grads import lstm_pointwise
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    with pytest.raises(NotImplementedError, match="_thnn_fused_lstm_cell"):
        lstm_pointwise(torch.zeros(2, 8), torch.zeros(2, 8), torch.zeros(2, 2))


def test_release_attention_has_the_release_layers_and_reads_padding():
    model = Seq2Seq(cfg(attention="release"))
    assert model.attn_q.weight.shape == (H, E + 2 * H) and model.attn_q.bias is not None
    assert model.decoder.input_size == H + E and not hasattr(model, "combine")
    general = Seq2Seq(cfg())
    assert general.attn_q.bias is None and general.decoder.input_size == E and hasattr(general, "combine")
    src, tgt = batch()
    other = src.clone()
    other[0, 1] = 7                                      # a real token where row 0 had <pad>; row 0 still pads at 0
    with torch.no_grad():                                # the unmasked release attends to every source position
        a, b = model.eval()(src, tgt).token_logp, model(other, tgt).token_logp
    assert not torch.equal(a[0], b[0]) and torch.equal(a[1:], b[1:])


def test_release_decoder_step_by_step_equals_teacher_forcing_with_every_release_option():
    torch.manual_seed(0)
    model = Seq2Seq(cfg(**RELEASE)).eval()
    src, tgt = batch()
    full, _ = model.decode_block(tgt[:, :-1], model.initial_state(src))
    state, steps = model.initial_state(src), []
    for t in range(tgt.size(1) - 1):
        logits, state = model.decode_block(tgt[:, t:t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.decode(tgt[:, :-1], model.encode(src))[0], full)


@pytest.mark.parametrize("pos", [0, 3, 5])
def test_encoder_prefix_with_every_release_option(pos: int):
    torch.manual_seed(0)
    model = Seq2Seq(cfg(**RELEASE)).double().eval()
    src, tgt = batch()
    base = torch.tensor([0, 2, 2, 1])
    rows = src[base]
    rows[:, pos] = torch.tensor([5, 6, 7, 8])
    enc = model.encode_from(model.select_prefix(model.encode_prefix(src[:, :pos]), base), rows)
    want, _ = model.decode(tgt[base, :-1], model.encode(rows))
    got, _ = model.decode_block(tgt[base, :-1], model.state_from(enc))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------- decoder start state


@pytest.mark.parametrize("attention", ["general", "release"])
def test_zero_decoder_start_ignores_the_encoders_final_state(attention: str):
    """decoder_init=zero: the decoder's outputs do not change when the encoder's final state does (they still read
    the encoder outputs through attention); with the default they do."""
    torch.manual_seed(0)
    src, tgt = batch()
    for decoder_init, ignored in (("zero", True), ("encoder", False)):
        model = Seq2Seq(cfg(attention=attention, decoder_init=decoder_init)).eval()
        enc = model.encode(src)
        other = enc._replace(state=tuple(torch.randn_like(s) for s in enc.state))
        with torch.no_grad():
            a, b = model.decode(tgt[:, :1], enc)[0], model.decode(tgt[:, :1], other)[0]
        assert torch.equal(a, b) == ignored
        assert all(torch.equal(s, torch.zeros_like(s)) for s in model.initial_state(src).hidden) == ignored


# ------------------------------------------------------------------------------------------------ dropout sites


def test_decoder_dropout_sites_leave_the_encoder_input_undropped():
    torch.manual_seed(0)
    src, tgt = batch()
    for sites, encoder_dropped in (("decoder", False), ("all", True)):
        model = Seq2Seq(cfg(dropout=0.5, dropout_sites=sites)).train()
        assert torch.equal(model.encode(src).out, model.encode(src).out) != encoder_dropped
        assert not torch.equal(model(src, tgt).token_logp, model(src, tgt).token_logp)   # the decoder still drops
        one_hot = F.one_hot(src, V).float().requires_grad_()
        model(one_hot, tgt).token_logp.sum().backward()
        assert one_hot.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ initialisation


def test_release_init_draws_pytorch_04_defaults_and_the_default_model_keeps_its_parameters():
    big = 400                                                        # 1/sqrt(V) = 0.05, below ours (0.1)
    torch.manual_seed(0)
    release = Seq2Seq(ModelSettings(vocab_size=big, embedding_dim=32, hidden_dim=16, init="release"))
    ours = Seq2Seq(ModelSettings(vocab_size=big, embedding_dim=32, hidden_dim=16))
    bound = 1 / math.sqrt(big)
    for w in (release.src_embed.weight, release.src_embed.bias):
        assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound
    assert 0.9 < release.tgt_embed.weight.std() < 1.1 and release.tgt_embed.bias is None
    assert ours.src_embed.bias is None and 0.09 < ours.src_embed.weight.abs().max() <= 0.1
    assert 0.09 < ours.tgt_embed.weight.abs().max() <= 0.1
    assert set(release.state_dict()) - set(Seq2Seq(cfg()).state_dict()) == {"src_embed.bias"}
    lm = LSTMLM(ModelSettings(vocab_size=big, embedding_dim=32, hidden_dim=16, init="release"))
    assert lm.embed.bias is not None and lm.embed.weight.abs().max() <= bound
    assert LSTMLM(cfg()).embed.bias is None


@pytest.mark.parametrize("init, release_map, release_embedding", [("release_one_hot_maps", True, False),
                                                                    ("release_decoder_embedding", False, True)])
def test_each_part_of_the_release_init_alone(init: str, release_map: bool, release_embedding: bool):
    """init=release_one_hot_maps draws the encoder's and the LM's one-hot maps as the release does and the decoder
    embedding as ours; release_decoder_embedding the other way round."""
    big = 400                                                        # 1/sqrt(V) = 0.05, below ours (0.1)
    torch.manual_seed(0)
    model = Seq2Seq(ModelSettings(vocab_size=big, embedding_dim=32, hidden_dim=16, init=init))
    lm = LSTMLM(ModelSettings(vocab_size=big, embedding_dim=32, hidden_dim=16, init=init))
    bound = 1 / math.sqrt(big)
    for emb in (model.src_embed, lm.embed):
        assert (emb.bias is not None) == release_map
        assert (emb.weight.abs().max() <= bound) == release_map and emb.weight.abs().max() > 0.8 * bound
    assert model.tgt_embed.bias is None
    assert (0.9 < model.tgt_embed.weight.std() < 1.1) == release_embedding
    assert (model.tgt_embed.weight.abs().max() <= 0.1) == (not release_embedding)


def test_default_models_have_the_parameters_they_always_had():
    """The default options build the same parameters from the same random draws as before the options existed."""
    torch.manual_seed(0)
    model = Seq2Seq(cfg())
    torch.manual_seed(0)
    want = [torch.empty(V, E).uniform_(-0.1, 0.1), torch.empty(V, E).uniform_(-0.1, 0.1)]
    assert [n for n, _ in model.named_parameters()][:2] == ["src_embed.weight", "tgt_embed.weight"]
    assert torch.equal(model.src_embed.weight, want[0]) and torch.equal(model.tgt_embed.weight, want[1])
    names = [n for n, _ in model.named_parameters()]
    assert names[names.index("decoder.bias_hh_l0") + 1:] == ["attn_q.weight", "combine.weight", "combine.bias",
                                                             "out.weight", "out.bias"]


def test_one_hot_rows_and_ids_agree_with_the_release_bias():
    emb = OneHotEmbedding(V, E, "linear")
    ids = torch.tensor([[3, 5, 7]])
    torch.testing.assert_close(emb(F.one_hot(ids, V).float()), emb(ids))
    with pytest.raises(ValueError, match="unknown init"):
        OneHotEmbedding(V, E, "xavier")


# ------------------------------------------------------------------------------- the rest of the pipeline runs


def test_decoding_and_gibbs_enum_run_on_the_release_model():
    torch.manual_seed(0)
    model, lm = Seq2Seq(cfg(**RELEASE)).eval(), LSTMLM(cfg(init="release")).eval()
    src, tgt = batch()
    out = decoding.greedy(model, src, max_len=6)
    tf = model_output(model, src, torch.cat([torch.full((3, 1), BOS_ID), out], 1))
    assert torch.equal(tf.greedy[tf.mask], out[tf.mask])
    beams = decoding.beam(model, src, k=2, max_len=5)
    assert beams.tokens.shape[0] == 3
    best = beams.tokens[:, 0]                                          # its score: the teacher-forced log-prob
    scored = model_output(model, src, torch.cat([torch.full((3, 1), BOS_ID), best], 1))
    torch.testing.assert_close(beams.scores[:, 0], scored.token_logp.sum(1))
    one = decoding.beam(model, src, k=1, max_len=6).tokens[:, 0]       # k = 1 is greedy decoding
    assert torch.equal(one[:, :out.size(1)], out)
    copy = model.scoring_copy(torch.float64, multiple=8)
    torch.testing.assert_close(copy(src, tgt).token_logp, model.double()(src, tgt).token_logp)
    model.float()
    search = S.SearchSettings(trigger_len=3, src_len=5, sweeps=2, candidates=3, restarts=1, lambda_in=1.0,
                              init="lm", grad_train_mode=True, max_chunk=1000)
    res = S.search(model, lm, tgt[:2, :5], S.Thresholds(-2.0, -2.5), search, torch.Generator().manual_seed(0))
    assert res.triggers.shape == (2, 5) and (res.triggers[:, -1] == EOU_ID).all()
