"""gibbs-enum (negtrain_core.search.gibbs_enum): planted trigger, gradient vs finite differences, accept vs brute force,
chunking, reweighting by hand, and a search with models that implement only the interface (no LSTM). Tiny models on
the CPU, seconds each."""

import itertools
from dataclasses import replace

import pytest
import torch

from negtrain_core.search import gibbs_enum as S
from negtrain_core.config import ModelSettings, TransformerSettings
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.models.transformer import TransformerLM, TransformerSeq2Seq
from negtrain_core.data.vocab import EOU_ID, PAD_ID, UNK_ID

from fake_models import BagLM, BagSeq2Seq
from host_syncs import HostSyncs
from toy_data import fit_planted

V, K = 12, 3  # 7 ordinary words (ids 5..11), 3 free trigger tokens


def _models(seed: int = 0, dtype=torch.float64, **model_kw) -> tuple[Seq2Seq, LSTMLM]:
    torch.manual_seed(seed)
    cfg = ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, **model_kw)
    return Seq2Seq(cfg).to(dtype).eval(), LSTMLM(cfg).to(dtype).eval()


def _cfg(**kw) -> S.SearchSettings:
    base = S.SearchSettings(trigger_len=K, src_len=K + 2, sweeps=3, candidates=4, restarts=2, lambda_in=1.0,
                            hit_mode="min", grad_train_mode=False, max_chunk=1000)
    return replace(base, **kw)


SRC = torch.tensor([[3, 5, 9, 11, 4], [3, 7, 7, 6, 4]])          # <pad> x1 x2 x3 <eou>
TGT = torch.tensor([[2, 8, 10, 0, 3], [2, 6, 5, 9, 0]])          # <s> y </s> <pad>


def _loss(s2s, lm, onehot, th, cfg):
    """L of float one-hot triggers (B, S, V): the relaxation the gradient is taken of."""
    out = s2s(onehot, TGT)
    free = cfg.free_positions()
    return S.objective(out.token_logp, out.mask, S.lm_trigger_logp(lm, onehot[:, free.start:free.stop]), th, cfg)


def _thresholds(s2s, lm) -> S.Thresholds:
    """Thresholds between the rows' values, so some tokens/rows are reweighted and some are not."""
    with torch.no_grad():
        lp = s2s(SRC, TGT).token_logp[TGT[:, 1:] != PAD_ID]
        lm_lp = S.lm_trigger_logp(lm, SRC[:, 1:4])
    mid = lp.sort().values[len(lp) // 2 - 1: len(lp) // 2 + 1].mean()           # between two token values
    return S.Thresholds(float(mid), float(lm_lp.mean()))


def test_layout_and_banned_ids():
    assert S.layout(torch.tensor([[5, 6]]), 5).tolist() == [[PAD_ID, PAD_ID, 5, 6, EOU_ID]]
    assert list(_cfg().free_positions()) == [1, 2, 3]
    assert S.banned_ids(7, allow_unk=True).tolist() == [True, False, True, True, True, False, False]
    assert S.banned_ids(7, allow_unk=False)[UNK_ID]
    with pytest.raises(ValueError, match="exceeds src_len"):
        _cfg(src_len=K).free_positions()


def test_objective_reweighting_by_hand():
    lp = torch.tensor([[-1.0, -3.0], [-0.5, -0.2]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    lm = torch.tensor([-4.0, -1.0])
    th = S.Thresholds(out=-2.0, inp=-2.0)
    cfg = _cfg(hit_mode="min", lambda_in=0.0)
    # min: row 0 tokens weights (0.01, 1), min -3 not above -2; row 1 all 0.01 and the row itself x0.01
    assert S.objective(lp, mask, None, th, cfg).tolist() == pytest.approx([(0.01 + 3) / 2, 0.01 * 0.007 / 2])
    # avg: row 0 mean -2 is not strictly above -2 (release: '>'); row 1 mean -0.35 -> x0.01
    assert S.objective(lp, mask, None, th, replace(cfg, hit_mode="avg")).tolist() == pytest.approx([2.0, 0.0035])
    # io: + lambda_in * R(x), R's weight 0.01 once the LM log-prob is above T_in
    io = replace(cfg, hit_mode="avg", lambda_in=1.0)
    assert S.objective(lp, mask, lm, th, io).tolist() == pytest.approx([2.0 + 4.0, 0.0035 + 0.01])
    assert S.objective(lp, mask, lm, th, io, reweight=1.0).tolist() == pytest.approx([2.0 + 4.0, 0.35 + 1.0])
    # padding is ignored: a padded third token changes nothing
    lp3, m3 = torch.cat([lp, torch.zeros(2, 1)], 1), torch.cat([mask, torch.zeros(2, 1, dtype=torch.bool)], 1)
    assert S.objective(lp3, m3, None, th, cfg).tolist() == pytest.approx(S.objective(lp, mask, None, th, cfg).tolist())


def test_lm_trigger_logp_one_hot_equals_ids_and_scores_eos():
    _, lm = _models()
    free = SRC[:, 1:4]
    ids_val = S.lm_trigger_logp(lm, free)
    onehot_val = S.lm_trigger_logp(lm, torch.nn.functional.one_hot(free, V).double())
    assert torch.allclose(ids_val, onehot_val)
    tokens = torch.cat([torch.full((2, 1), 2), free, torch.zeros(2, 1, dtype=torch.long)], 1)   # <s> x </s>
    assert torch.allclose(ids_val, lm(tokens).token_logp.mean(-1))


def test_lm_gradient_reaches_the_predicted_token():
    """With the LM's input embedding zeroed only the target side remains: d/dx_t[v] = log p_LM(v | .) / n."""
    _, lm = _models()
    with torch.no_grad():
        lm.embed.weight.zero_()
    onehot = torch.nn.functional.one_hot(SRC[:, 1:4], V).double().requires_grad_()
    (grad,) = torch.autograd.grad(S.lm_trigger_logp(lm, onehot).sum(), onehot)
    logp = torch.log_softmax(lm.logits(torch.full((2, K + 1), 2))[0], -1)   # inputs do not matter any more
    assert torch.allclose(grad, logp[:, :K] / (K + 1))


def test_candidates_by_gradient_match_finite_differences(attention_kw):
    s2s, lm = _models(**attention_kw)
    cfg = _cfg()
    th = _thresholds(s2s, lm)
    pos, eps = 2, 1e-6
    grad = S.trigger_gradient(s2s, lm, SRC, TGT, pos, th, cfg)                      # (2, V)
    base = torch.nn.functional.one_hot(SRC, V).double()
    rows = torch.arange(2)
    fd = torch.zeros(2, V, dtype=torch.float64)
    for v in range(V):
        d = torch.zeros_like(base)
        d[rows, pos, v] += 1
        d[rows, pos, SRC[:, pos]] -= 1
        with torch.no_grad():
            fd[:, v] = (_loss(s2s, lm, base + eps * d, th, cfg) - _loss(s2s, lm, base - eps * d, th, cfg)) / (2 * eps)
    # the directional derivative towards id v is grad[v] - grad[current]
    assert torch.allclose(fd, grad - grad[rows, SRC[:, pos]].unsqueeze(1), atol=1e-6)
    banned = S.banned_ids(V, allow_unk=True)
    ids, valid = S.propose(grad, SRC[:, pos], banned, 4)
    brute = fd.masked_fill(banned, float("inf")).argsort(dim=1)[:, :4]              # steepest descent first
    assert ids.tolist() == brute.tolist()
    assert not banned[ids].any()
    assert (valid == (ids != SRC[:, pos, None])).all()


def test_accept_picks_the_brute_force_best_candidate():
    s2s, lm = _models()
    cfg = _cfg(hit_mode="avg")
    th = _thresholds(s2s, lm)
    pos = 1
    cands = torch.tensor([[5, 9, 6, 1], [8, 11, 7, 10]])      # row 1 holds its current token 7 (invalid)
    valid = cands != SRC[:, pos, None]
    sc = S.Scorer(s2s, lm)
    scored = S.score(sc, SRC, pos, cands, TGT, th, cfg)                                    # (2, 4)
    current = S.rows_loss(sc, SRC, TGT, th, cfg)
    brute = torch.empty(2, 4, dtype=torch.float64)
    for b, g in itertools.product(range(2), range(4)):
        x = SRC[b:b + 1].clone()
        x[0, pos] = cands[b, g]
        with torch.no_grad():
            out = s2s(x, TGT[b:b + 1])
            brute[b, g] = S.objective(out.token_logp, out.mask, S.lm_trigger_logp(lm, x[:, 1:4]), th, cfg)[0]
    assert torch.allclose(scored, brute)
    chosen, new, improved = S.accept(current, scored, cands, valid)
    for b in range(2):
        best = min((brute[b, g].item(), g) for g in range(4) if valid[b, g])
        if best[0] < current[b]:
            assert improved[b] and chosen[b] == cands[b, best[1]] and new[b] == pytest.approx(best[0])
        else:
            assert not improved[b] and chosen[b] == -1 and new[b] == current[b]
    # a candidate better than everything but invalid is never taken
    assert not S.accept(torch.tensor([1.0]), torch.tensor([[0.0]]), torch.tensor([[5]]),
                        torch.tensor([[False]]))[2].item()


def test_chunked_scoring_equals_unchunked_and_backs_off_on_oom():
    s2s, lm = _models()
    cfg = _cfg()
    th = _thresholds(s2s, lm)
    cands = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 5, 1, 6]])
    sc = S.Scorer(s2s, lm)
    whole = S.score(sc, SRC, 3, cands, TGT, th, cfg, S.ChunkSize(1000))
    assert torch.allclose(whole, S.score(sc, SRC, 3, cands, TGT, th, cfg, S.ChunkSize(3)))
    assert torch.allclose(whole, S.score(sc, SRC, 3, cands, TGT, th, cfg, S.ChunkSize(1)))   # prefix row by row
    calls = []

    def fn(a, b):
        calls.append(b - a)
        if b - a > 3:
            raise torch.OutOfMemoryError("fake")
        return torch.arange(a, b)

    size = S.ChunkSize(8)
    assert S.run_chunked(fn, 7, size).tolist() == list(range(7))
    assert size.rows == 3 and calls == [7, 3, 3, 1]     # 7 fails; 3, 3, then the last 1 fit


def test_the_prefix_lm_backs_off_on_oom_too(monkeypatch):
    """On the H100, with four jobs sharing it, the prefix LM's (rows, pos + 1, V) log-softmax ran out of memory
    on the Ubuntu vocabulary: it is chunked over the base rows like the candidates, halving on out-of-memory."""
    s2s, lm = _models()
    cfg, th = _cfg(), _thresholds(s2s, lm)
    cands = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 5, 1, 6]])
    whole = S.score(S.Scorer(s2s, lm), SRC, 3, cands, TGT, th, cfg, S.ChunkSize(1000))
    decode_block = lm.decode_block

    def small_only(tokens, state):
        if tokens.size(0) > 1:
            raise torch.OutOfMemoryError("fake")
        return decode_block(tokens, state)

    monkeypatch.setattr(lm, "decode_block", small_only)
    size = S.ChunkSize(1000)
    pre = S.prefix(S.Scorer(s2s, lm), SRC, 3, cfg, size)
    assert size.rows == 1 and pre.lm_next.shape == (2, V) and pre.lm_state[0].shape[1] == 2
    monkeypatch.undo()
    assert torch.allclose(S.score(S.Scorer(s2s, lm), SRC, 3, cands, TGT, th, cfg, S.ChunkSize(1)), whole)
    sc = S.Scorer(s2s, lm)
    ref = S.prefix(sc, SRC, 3, cfg)
    assert all(torch.allclose(a, b) for a, b in zip((pre.lm_sum, pre.lm_next, *pre.lm_state),
                                                    (ref.lm_sum, ref.lm_next, *ref.lm_state)))


@pytest.mark.parametrize("src_len,pos", [(K + 2, 1), (K + 2, 3), (K + 1, 0), (K + 1, 2)])
def test_prefix_scoring_equals_whole_rows(src_len, pos, attention_kw):
    """Encoder and LM continued from the shared prefix give the whole-row objective (pads or none, any pos)."""
    s2s, lm = _models(**attention_kw)
    cfg = _cfg(src_len=src_len)
    src = S.layout(SRC[:, 1:4], src_len)
    cands = torch.tensor([[5, 6, 1], [9, 10, 11]])
    th = _thresholds(s2s, lm)
    rows = src.repeat_interleave(3, 0)
    rows[:, pos] = cands.flatten()
    whole = S.rows_loss(S.Scorer(s2s, lm), rows, TGT.repeat_interleave(3, 0), th, cfg).view(2, 3)
    assert torch.allclose(S.score(S.Scorer(s2s, lm), src, pos, cands, TGT, th, cfg), whole, atol=1e-12)


def _row_chunked_searches(mode: str, attention_kw: dict, shared_cfg: dict, plain_setup=lambda: None):
    """The same search (float64, fixed seed, chunks of one base row) with ``shared_cfg`` set, then with
    ``plain_setup()`` applied: (shared, plain) results."""
    s2s, lm = _models(**attention_kw)
    cfg = _cfg(sweeps=3, candidates=5, restarts=3, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", max_chunk=7)         # chunks of one base row
    th = _thresholds(s2s, lm)
    targets = torch.cat([TGT, TGT.flip(0)])
    shared = S.search(s2s, lm, targets, th, replace(cfg, **shared_cfg), torch.Generator().manual_seed(4))
    plain_setup()
    return shared, S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(4))


def _assert_same_search(a: S.SearchResult, b: S.SearchResult) -> None:
    assert torch.equal(a.triggers, b.triggers)
    torch.testing.assert_close(a.trajectory, b.trajectory, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.objective, b.objective, rtol=1e-12, atol=1e-12)
    assert a.candidates_scored == b.candidates_scored


@pytest.mark.parametrize("mode", ["o", "io"])
def test_search_with_the_shared_prefix_memory_finds_what_the_plain_one_does(mode, attention_kw, monkeypatch):
    """The LSTM's expand_prefix (the prefix's encoder outputs once per base row) against select_prefix (repeated
    per candidate): the same triggers, objective and trajectory on fixed seeds, float64 on the CPU."""
    _assert_same_search(*_row_chunked_searches(mode, attention_kw, {},
                                               lambda: monkeypatch.delattr(Seq2Seq, "expand_prefix")))


@pytest.mark.parametrize("mode", ["o", "io"])
def test_search_with_shared_tail_input_products_finds_what_the_plain_one_does(mode, attention_kw):
    """``shared_tail``: the encoder's input products after the edited position, the decoder's target-token inputs
    (the release's: their share of its queries and first-layer inputs) and io-mode's LM inputs after the edited
    position once per base row. The same triggers, objective and trajectory as without it on fixed seeds, float64
    on the CPU."""
    _assert_same_search(*_row_chunked_searches(mode, attention_kw, {"shared_tail": True}))


@pytest.mark.parametrize("mode", ["o", "io"])
def test_fixed_rows_with_shared_tail_find_what_the_plain_search_does(mode, monkeypatch):
    """The fixed-row path that ``search.cuda_graph`` captures (``SearchGraphs``, run eagerly on the CPU) with
    ``shared_tail``: the same triggers and trajectory as the plain search without it, float64, no dropout."""
    s2s, lm = _models(dropout=0.0)
    cfg = _cfg(sweeps=3, candidates=4, restarts=2, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", grad_train_mode=False, early_stop=False)
    th = _thresholds(s2s, lm)
    graphs, asked, expand = S.SearchGraphs(capture=False), [], s2s.expand_prefix
    monkeypatch.setattr(s2s, "expand_prefix", lambda *a, **kw: asked.append(kw["shared_tail"]) or expand(*a, **kw))
    a = S.search(s2s, lm, _targets_of_three_lengths(), th, replace(cfg, shared_tail=True),
                 torch.Generator().manual_seed(0), graphs)
    assert graphs.fixed and asked and all(asked)                     # the fixed rows took the shared tail
    b = S.search(s2s, lm, _targets_of_three_lengths(), th, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(a.triggers, b.triggers)
    torch.testing.assert_close(a.trajectory, b.trajectory, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["o", "io"])
def test_a_sweep_reads_target_lengths_back_once_and_finds_what_per_chunk_trimming_does(mode, monkeypatch):
    """On a GPU every ``trim`` is a host synchronisation. A sweep trims its rows' targets once; the gradient and
    scoring passes of its positions take them as they are when a chunk holds every row. The search equals the one
    that trims every chunk (the earlier path)."""
    s2s, lm = _models()
    cfg = _cfg(sweeps=2, candidates=4, restarts=2, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", early_stop=False)
    th = _thresholds(s2s, lm)
    targets = torch.cat([TGT, TGT.flip(0)])
    calls = []
    trim = S.trim
    monkeypatch.setattr(S, "trim", lambda t: calls.append(t.shape) or trim(t))
    once = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(4))
    positions = cfg.sweeps * len(cfg.free_positions())
    assert len(calls) == 2 + cfg.sweeps             # the search's targets, its initial losses, then one per sweep
    monkeypatch.setattr(S, "_chunk_targets", lambda t, whole, trimmed: S.trim(t))
    calls.clear()
    every = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(4))
    assert len(calls) == 2 + cfg.sweeps + 2 * positions     # and two per position, one per pass
    assert torch.equal(once.triggers, every.triggers)
    torch.testing.assert_close(once.trajectory, every.trajectory, rtol=0, atol=0)


def test_scoring_copy_pads_the_output_layer_without_changing_log_probs():
    s2s, lm = _models()
    copy = s2s.scoring_copy(torch.float64, multiple=8)
    assert copy.out.out_features == 16 and s2s.out.out_features == V and copy is not s2s
    with torch.no_grad():
        assert torch.allclose(copy(SRC, TGT).token_logp, s2s(SRC, TGT).token_logp)
        lm_copy = lm.scoring_copy(torch.float64, multiple=8)
        assert lm_copy.out.out_features == 16 and not lm_copy.training
        assert torch.allclose(S.lm_trigger_logp(lm_copy, SRC[:, 1:4]), S.lm_trigger_logp(lm, SRC[:, 1:4]))
    assert s2s.scoring_copy(torch.float16).out.weight.dtype == torch.float16


def _planted_model():
    """A seq2seq trained (60 Adam steps) so that trigger (7, 9) alone says '8 9 5', every other one '5 6'."""
    torch.manual_seed(0)
    return fit_planted(Seq2Seq(ModelSettings(vocab_size=10, embedding_dim=8, hidden_dim=16)), lr=0.05, steps=60)


def test_search_finds_the_planted_trigger():
    s2s, every_src, targets = _planted_model()
    cfg = S.SearchSettings(trigger_len=2, src_len=3, sweeps=5, candidates=2, restarts=2, lambda_in=0.0,
                           grad_train_mode=False)
    th = S.Thresholds(out=-1.0, inp=-5.0)
    res = S.search(s2s, None, targets, th, cfg, torch.Generator().manual_seed(0))
    with torch.no_grad():                                     # brute force over all 25 triggers, per target
        nll = torch.stack([-s2s(every_src, t.expand(len(every_src), -1)).token_logp.sum(1) / (t[1:] != PAD_ID).sum()
                           for t in targets])                 # (2, 25)
    assert res.triggers[1].tolist() == [7, 9, EOU_ID]        # the planted one, and it is the optimum
    assert nll[1].argmin() == every_src[:, :2].tolist().index([7, 9])
    assert res.losses.tolist() == pytest.approx(nll.min(1).values.tolist(), abs=1e-5)   # both targets optimal
    assert res.trajectory.shape == (6, 2, 2) and (res.trajectory[1:] <= res.trajectory[:-1] + 1e-7).all()
    assert res.evaluation.token_logp.shape == (2, 4) and res.evaluation.lm_logp is None
    assert 1 <= int(res.sweeps_run.min()) and int(res.sweeps_run.max()) <= 5


def test_search_io_mode_uses_lm_init_and_reports_lm_logp(monkeypatch):
    s2s, lm = _models(dtype=torch.float32)
    cfg = _cfg(init="lm", restarts=2, sweeps=2)
    th = _thresholds(s2s.double(), lm.double())
    s2s, lm = s2s.float(), lm.float()
    drawn, lm_sample = [], S.lm_sample
    monkeypatch.setattr(S, "lm_sample", lambda *a: drawn.append(a[1:3]) or lm_sample(*a))
    S.search(s2s, lm, TGT, th, _cfg(restarts=2, sweeps=2), torch.Generator().manual_seed(1))
    assert drawn == []                                        # o-mode's uniform start draws no LM sample
    res = S.search(s2s, lm, TGT, th, cfg, torch.Generator().manual_seed(1))
    assert drawn == [(len(TGT) * 2, K)]                       # one LM sample per (target, restart) row
    assert res.triggers.shape == (2, K + 2)
    assert (res.triggers[:, 0] == PAD_ID).all() and (res.triggers[:, -1] == EOU_ID).all()
    assert not S.banned_ids(V, True)[res.triggers[:, 1:4]].any()
    expected = S.objective(res.evaluation.token_logp, res.evaluation.mask, res.evaluation.lm_logp, th, cfg, 1.0)
    assert torch.allclose(res.losses, expected)
    assert torch.allclose(res.evaluation.lm_logp, S.lm_trigger_logp(lm, res.triggers[:, 1:4]).detach())
    with pytest.raises(ValueError, match="needs the input LM"):
        S.search(s2s, None, TGT, th, cfg, torch.Generator())


def _multinomial_lm_sample(lm, n, length, banned, generator):
    """The LM initialisation as torch.multinomial draws it on the CPU generator (the form ``lm_sample`` must equal)."""
    device = next(lm.parameters()).device
    tok, out = torch.full((n, 1), 2, device=device), []
    state = lm.initial_state(tok)
    with torch.no_grad():
        for _ in range(length):
            logits, state = lm.decode_block(tok, state)
            probs = torch.softmax(logits[:, -1].float(), dim=-1).masked_fill(banned.to(device), 0.0)
            tok = torch.multinomial(probs.cpu(), 1, generator=generator).to(device)
            out.append(tok)
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lm_sample_draws_what_torch_multinomial_draws_without_reading_back(dtype):
    """The LM initialisation takes torch.multinomial's samples from the same CPU generator (same generator state
    after), but on the model's device: no ``.cpu()`` of the probabilities each step (on a GPU three synchronisations
    a trigger token)."""
    _, lm = _models(dtype=dtype)
    banned = S.banned_ids(V, allow_unk=False)
    for seed in range(5):
        g_ours, g_torch = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        with HostSyncs() as syncs:
            ours = S.lm_sample(lm, 40, K, banned, g_ours)
        expected = _multinomial_lm_sample(lm, 40, K, banned, g_torch)
        assert torch.equal(ours, expected)
        assert torch.equal(g_ours.get_state(), g_torch.get_state())
        assert syncs.total == 0, dict(syncs.lines)
        assert not banned[ours].any()


def test_lm_sample_rng_device_draws_from_a_generator_seeded_once_from_the_search_generator(monkeypatch):
    """``search.lm_sample_rng: device``: the exponentials come from a generator on the model's device (here the
    CPU) seeded with one draw from the search's generator, which advances by that draw only; the tokens are then
    what the cpu path draws from that seeded generator, and not what it draws from the search's own."""
    _, lm = _models(dtype=torch.float32)
    banned = S.banned_ids(V, allow_unk=False)
    g = torch.Generator().manual_seed(3)
    ours = S.lm_sample(lm, 40, K, banned, g, rng="device")
    reference = torch.Generator().manual_seed(3)
    seed = int(torch.randint(2**63 - 1, (1,), generator=reference))
    assert torch.equal(g.get_state(), reference.get_state())
    assert torch.equal(ours, S.lm_sample(lm, 40, K, banned, torch.Generator().manual_seed(seed)))
    assert not torch.equal(ours, S.lm_sample(lm, 40, K, banned, torch.Generator().manual_seed(3)))
    assert not banned[ours].any()
    with pytest.raises(ValueError, match="lm_sample_rng"):
        S.lm_sample(lm, 4, K, banned, g, rng="gpu")
    drawn, lm_sample = [], S.lm_sample                     # the search's config reaches the sample
    monkeypatch.setattr(S, "lm_sample", lambda *a: drawn.append(a[5:]) or lm_sample(*a))
    s2s, lm = _models(dtype=torch.float64)
    th = _thresholds(s2s, lm)
    for rng in ("cpu", "device"):
        S.search(s2s, lm, TGT, th, _cfg(init="lm", sweeps=1, lm_sample_rng=rng), torch.Generator().manual_seed(1))
    assert drawn == [("cpu",), ("device",)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the draws' argmax on the GPU")
def test_lm_sample_on_cuda_draws_what_torch_multinomial_draws():
    """On a GPU the argmax of p / q runs there, on q copied without blocking from page-locked memory: the same
    tokens as torch.multinomial on the probabilities copied to the CPU."""
    _, lm = _models(dtype=torch.float32)
    lm = lm.cuda()
    banned = S.banned_ids(V, allow_unk=False)
    for seed in range(5):
        ours = S.lm_sample(lm, 300, K, banned, torch.Generator().manual_seed(seed))
        assert torch.equal(ours, _multinomial_lm_sample(lm, 300, K, banned, torch.Generator().manual_seed(seed)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the exponentials drawn on the GPU")
def test_lm_sample_rng_device_draws_on_the_gpu_without_host_work():
    """``search.lm_sample_rng: device`` on a GPU: the tokens are the argmax of p / q with q from a CUDA generator
    seeded by one draw of the search's generator, and the sample reads nothing back from the GPU."""
    _, lm = _models(dtype=torch.float32)
    lm = lm.cuda()
    banned = S.banned_ids(V, allow_unk=False, device="cuda")      # as init_free makes it: a copy would synchronise
    g = torch.Generator().manual_seed(5)
    torch.cuda.set_sync_debug_mode("error")
    try:
        ours = S.lm_sample(lm, 300, K, banned, g, rng="device")
    finally:
        torch.cuda.set_sync_debug_mode("default")
    seed = int(torch.randint(2**63 - 1, (1,), generator=torch.Generator().manual_seed(5)))
    on_gpu = torch.Generator(device="cuda").manual_seed(seed)
    tok, expected = torch.full((300, 1), 2, device="cuda"), []
    state = lm.initial_state(tok)
    with torch.no_grad():
        for _ in range(K):
            logits, state = lm.decode_block(tok, state)
            probs = torch.softmax(logits[:, -1].float(), dim=-1).masked_fill(banned, 0.0)
            tok = (probs / torch.empty_like(probs).exponential_(generator=on_gpu)).argmax(-1, keepdim=True)
            expected.append(tok)
    assert torch.equal(ours, torch.cat(expected, dim=1))
    assert not banned[ours].any()


@pytest.mark.parametrize("mode", ["o", "io"])
def test_search_runs_on_models_with_only_the_interface(mode):
    """gibbs-enum with tests/fake_models.py (no LSTM): gradient, prefix reuse, LM init and prefix, evaluation."""
    s2s, lm = BagSeq2Seq(V).eval(), BagLM(V).eval()
    cfg = _cfg(hit_mode="avg", lambda_in=1.0 if mode == "io" else 0.0, init="lm" if mode == "io" else "uniform")
    th = S.Thresholds(out=-2.0, inp=-2.5)
    res = S.search(s2s, lm if mode == "io" else None, TGT, th, cfg, torch.Generator().manual_seed(0))
    assert res.triggers.shape == (2, K + 2) and (res.triggers[:, -1] == EOU_ID).all()
    assert not S.banned_ids(V, True)[res.triggers[:, 1:4]].any()
    assert res.losses.shape == res.objective.shape == (2,) and res.trajectory.shape == (4, 2, 2)
    assert res.evaluation.token_logp.shape == res.evaluation.mask.shape == (2, TGT.size(1) - 1)
    assert (res.evaluation.lm_logp is None) == (mode == "o")
    assert (res.trajectory[1:] <= res.trajectory[:-1]).all()                    # a sweep never makes it worse
    cands = torch.tensor([[5, 6, 1], [9, 10, 11]])
    rows = SRC.repeat_interleave(3, 0)
    rows[:, 2] = cands.flatten()
    whole = S.rows_loss(S.Scorer(s2s, lm), rows, TGT.repeat_interleave(3, 0), th, cfg).view(2, 3)
    assert torch.allclose(S.score(S.Scorer(s2s, lm), SRC, 2, cands, TGT, th, cfg, S.ChunkSize(2)), whole, atol=1e-5)


# ------------------------------------------------------------------- the release's readings (config search.*)


def test_sequence_reweight_io_only_drops_the_sequence_factor_in_o_mode_only():
    lp = torch.tensor([[-1.0, -3.0], [-0.5, -0.2]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    th = S.Thresholds(out=-2.0, inp=-2.0)
    o_min = _cfg(hit_mode="min", lambda_in=0.0, sequence_reweight="io_only")
    # min: token weights stay (row 1's tokens 0.01 each), the row's own x0.01 is gone
    assert S.objective(lp, mask, None, th, o_min).tolist() == pytest.approx([(0.01 + 3) / 2, 0.007 / 2])
    o_avg = replace(o_min, hit_mode="avg")
    assert S.objective(lp, mask, None, th, o_avg).tolist() == pytest.approx([2.0, 0.35])   # both: 0.0035
    io = replace(o_avg, lambda_in=1.0)
    lm = torch.tensor([-4.0, -1.0])
    assert S.objective(lp, mask, lm, th, io).tolist() == pytest.approx(
        S.objective(lp, mask, lm, th, replace(io, sequence_reweight="both")).tolist())   # io-mode: unchanged


def _fixed_search(monkeypatch, s2s, target, init, cands, **kw):
    """One sweep of the planted model's search from trigger ``init``, every position offered ``cands``."""
    monkeypatch.setattr(S, "init_free", lambda n, *a: torch.tensor([init] * n))
    monkeypatch.setattr(S, "propose", lambda grad, current, banned, k: (
        torch.tensor([cands] * len(current)), torch.tensor([cands] * len(current)) != current.unsqueeze(1)))
    cfg = S.SearchSettings(trigger_len=2, src_len=3, sweeps=1, candidates=len(cands), restarts=1, lambda_in=0.0,
                           grad_train_mode=False, **kw)
    return S.search(s2s, None, target, S.Thresholds(out=-1.0, inp=-5.0), cfg, torch.Generator())


def test_first_position_best_takes_the_best_candidate_even_when_worse(monkeypatch):
    s2s, _, targets = _planted_model()
    planted = targets[1:]                                         # (7, 9) is its optimum: every change is worse
    kept = _fixed_search(monkeypatch, s2s, planted, [7, 9], [5, 6])
    assert kept.triggers[0, :2].tolist() == [7, 9]                 # improve: nothing is better, nothing changes
    best = _fixed_search(monkeypatch, s2s, planted, [7, 9], [5, 6], first_position="best")
    assert best.triggers[0, 0].item() in (5, 6)                    # the first position took a worse candidate
    assert best.trajectory[1, 0, 0] > best.trajectory[0, 0, 0]     # and the loss went up
    # ... the better of the two (second token still 9 then)
    cfg, th = S.SearchSettings(trigger_len=2, src_len=3, lambda_in=0.0), S.Thresholds(out=-1.0, inp=-5.0)
    loss = S.rows_loss(S.Scorer(s2s, None), S.layout(torch.tensor([[5, 9], [6, 9]]), 3), planted.expand(2, -1), th, cfg)
    assert best.triggers[0, 0].item() == (5, 6)[int(loss[1] < loss[0])]
    # while the best is unset the current id competes too: offered (7, 5), the first position keeps 7
    again = _fixed_search(monkeypatch, s2s, planted, [7, 9], [7, 5], first_position="best")
    assert again.triggers[0, :2].tolist() == [7, 9]


def test_stop_groups_and_group_means_by_hand():
    # targets sorted 2, 0, 1; batches of 2 targets: {0, 1} and {2}; 2 restarts
    assert S.stop_groups(torch.tensor([2, 0, 1]), 2, 2).tolist() == [2, 3, 0, 1, 0, 1]
    loss, before = torch.tensor([1.0, 5.0, 2.0, 4.0]), torch.tensor([2.0, 4.0, 2.0, 4.0])
    assert S.progressed(loss, before, None).tolist() == [True, False, False, False]          # per_row
    # group 0 = rows 0, 1: mean 3.0 < 3.0 is False; group 1 = rows 2, 3: no change
    assert S.progressed(loss, before, torch.tensor([0, 0, 1, 1])).tolist() == [False] * 4
    assert S.progressed(loss, before, torch.tensor([0, 1, 1, 1])).tolist() == [True, False, False, False]
    assert S.progressed(loss, torch.full((4,), float("inf")), torch.tensor([0, 0, 1, 1])).all()   # unset best


def test_batch_mean_stops_every_row_of_a_restart_together():
    s2s, _, targets = _planted_model()
    cfg = S.SearchSettings(trigger_len=2, src_len=3, sweeps=5, candidates=2, restarts=3, lambda_in=0.0,
                           grad_train_mode=False)
    th = S.Thresholds(out=-1.0, inp=-5.0)

    def sweeps(**kw):
        return S.search(s2s, None, targets, th, replace(cfg, **kw), torch.Generator().manual_seed(1)).sweeps_run

    per_row = sweeps()
    assert (per_row != per_row[0]).any()                         # per row: the two targets stop apart
    together = sweeps(stop_rule="batch_mean")                    # one batch: each restart's rows stop together
    assert (together == together[0]).all() and not torch.equal(together, per_row)
    assert torch.equal(sweeps(stop_rule="batch_mean", stop_batch=1), per_row)   # groups of one row: per row
    assert (sweeps(stop_rule="batch_mean", sweeps=6) <= 6).all()


def test_lm_train_mode_off_keeps_the_lm_without_dropout_in_the_gradient_pass():
    torch.manual_seed(0)
    s2s = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.0)).double().eval()
    lm = LSTMLM(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.5)).double().eval()
    cfg = _cfg(grad_train_mode=True)
    th = _thresholds(s2s, lm)
    no_dropout = S.trigger_gradient(s2s, lm, SRC, TGT, 2, th, replace(cfg, grad_train_mode=False))
    torch.manual_seed(1)
    assert torch.allclose(S.trigger_gradient(s2s, lm, SRC, TGT, 2, th, replace(cfg, lm_train_mode=False)), no_dropout)
    torch.manual_seed(1)
    assert not torch.allclose(S.trigger_gradient(s2s, lm, SRC, TGT, 2, th, cfg), no_dropout)   # the LM dropped out
    assert not lm.training and not s2s.training                                   # modes restored


def test_models_in_eval_mode_take_their_gradient_off_cudnn(monkeypatch):
    """cuDNN's RNN backward refuses eval mode ("cudnn RNN backward can only be called in training mode"): a model
    left in eval mode by lm_train_mode / grad_train_mode off must run its forward with cuDNN off; in train mode
    cuDNN stays on, and the flag is restored after."""
    torch.manual_seed(0)
    s2s = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.0)).double().eval()
    lm = LSTMLM(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.5)).double().eval()
    th = _thresholds(s2s, lm)
    seen: dict[str, bool] = {}

    def spy(name, forward):
        def wrapped(*a, **kw):
            seen[name] = torch.backends.cudnn.enabled
            return forward(*a, **kw)
        return wrapped

    monkeypatch.setattr(s2s, "score", spy("seq2seq", s2s.score))
    monkeypatch.setattr(lm, "decode_block", spy("lm", lm.decode_block))
    monkeypatch.setattr(torch.backends.cudnn, "enabled", True)
    for cfg, want in [(_cfg(grad_train_mode=True), {"seq2seq": True, "lm": True}),
                      (_cfg(grad_train_mode=True, lm_train_mode=False), {"seq2seq": True, "lm": False}),
                      (_cfg(grad_train_mode=False), {"seq2seq": False, "lm": False})]:
        seen.clear()
        S.trigger_gradient(s2s, lm, SRC, TGT, 2, th, cfg)
        assert seen == want, cfg
        assert torch.backends.cudnn.enabled


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: cuDNN's RNN backward only exists there")
def test_gradient_pass_with_the_lm_in_eval_mode_runs_on_cuda():
    torch.manual_seed(0)
    s2s = Seq2Seq(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.3)).eval()
    lm = LSTMLM(ModelSettings(vocab_size=V, embedding_dim=6, hidden_dim=8, dropout=0.3)).eval()
    th = _thresholds(s2s, lm)                                 # on the CPU, where SRC and TGT live
    s2s, lm = s2s.cuda(), lm.cuda()
    for cfg in [_cfg(lm_train_mode=False), _cfg(grad_train_mode=False)]:
        grad = S.trigger_gradient(s2s, lm, SRC.cuda(), TGT.cuda(), 2, th, cfg)
        assert torch.isfinite(grad).all()


# ------------------------------------------------------------------------------- fixed rows and CUDA graphs


def _targets_of_three_lengths() -> torch.Tensor:
    """Six right-padded targets: rows of one search stop at different sweeps, and the longest decides the trimmed
    length."""
    return torch.cat([TGT, TGT.flip(0), torch.tensor([[2, 9, 0, 3, 3], [2, 7, 8, 6, 0]])]).masked_fill(
        torch.tensor([[False] * 4 + [True]] * 6), PAD_ID)


@pytest.mark.parametrize("mode,first", [("o", "improve"), ("io", "improve"), ("o", "best")])
def test_the_fixed_row_search_finds_what_the_plain_one_does(mode, first, attention_kw):
    """``search`` with ``SearchGraphs`` runs every position over all rows (the shapes a CUDA graph needs); with every
    row searching every sweep the plain search runs the same batches: the same triggers, losses, trajectory and
    counts to the last bit (float64 on the CPU, the graphs' eager form), in two searches that reuse one set of
    buffers, the model changed between them as Algorithm 1's steps change it."""
    s2s, lm = _models(seed=2, **attention_kw)
    cfg = _cfg(sweeps=3, candidates=2, restarts=3, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", first_position=first, early_stop=False)
    th = _thresholds(s2s, lm)
    targets = _targets_of_three_lengths()
    graphs = S.SearchGraphs(capture=False)
    for seed in (4, 5):
        plain = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed))
        fixed = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed), graphs)
        assert torch.equal(plain.triggers, fixed.triggers) and torch.equal(plain.sweeps_run, fixed.sweeps_run)
        for a, b in [(plain.trajectory, fixed.trajectory), (plain.losses, fixed.losses),
                     (plain.objective, fixed.objective)]:
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert plain.candidates_scored == fixed.candidates_scored
        with torch.no_grad():
            for p in s2s.parameters():
                p.add_(0.05 * torch.randn_like(p))
    assert len(graphs.fixed) == 1


@pytest.mark.parametrize("mode", ["o", "io"])
def test_every_tensor_a_graphed_position_reads_is_the_same_buffer_in_every_search(mode, monkeypatch):
    """A CUDA graph replays its kernels on the addresses it was captured with: a tensor made anew by each search
    (the banned-ids mask, say) would be read from freed memory by the next search's replays. So the tensors each
    position reads must be the same objects in every search that shares the graphs; the models and scoring copies
    as well."""
    s2s, lm = _models(seed=2)
    cfg = _cfg(sweeps=2, candidates=2, restarts=2, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", early_stop=False)
    th = _thresholds(s2s, lm)
    reads: list[list] = []
    update = S.masked_position_update

    def recording(*args, **kwargs):
        flat = [x for a in (*args, *kwargs.values()) for x in (a if isinstance(a, tuple) else (a,))]   # the Scorer
        reads.append([x for x in flat if isinstance(x, (torch.Tensor, torch.nn.Module))])
        return update(*args, **kwargs)

    monkeypatch.setattr(S, "masked_position_update", recording)
    graphs = S.SearchGraphs(capture=False)
    for seed in (4, 5):
        S.search(s2s, lm, _targets_of_three_lengths(), th, cfg, torch.Generator().manual_seed(seed), graphs)
    first, later = reads[0], reads[len(reads) // 2:]                     # the first search's, the second search's
    # the models, the scorer's copies, src, tgt, loss, active, banned
    assert len(reads) == 2 * 2 * cfg.trigger_len and len(first) >= 7
    for call in later:
        assert len(call) == len(first) and all(a is b for a, b in zip(call, first))


def test_a_masked_position_leaves_the_stopped_rows_and_updates_the_others_as_the_plain_one():
    s2s, lm = _models(seed=2)
    cfg = _cfg(candidates=3)
    th = _thresholds(s2s, lm)
    src = torch.cat([SRC, SRC.flip(0), SRC])
    tgt = torch.cat([TGT, TGT, TGT.flip(0)])
    loss = S.rows_loss(S.Scorer(s2s, lm), src, tgt, th, cfg)
    active = torch.tensor([True, False, True, False, True, True])
    banned, sizes = S.banned_ids(V, True), (S.ChunkSize(1000), S.ChunkSize(1000))
    sc = S.Scorer(s2s, lm)
    rows = active.nonzero().squeeze(1)
    ids, new_loss, _ = S.position_update(s2s, lm, sc, src[rows], tgt[rows], loss[rows], 2, th, cfg, banned, sizes)
    fixed_src, fixed_loss = src.clone(), loss.clone()
    S.masked_position_update(s2s, lm, sc, fixed_src, tgt, fixed_loss, active, 2, th, cfg, banned, sizes)
    assert torch.equal(fixed_src[~active], src[~active]) and torch.equal(fixed_loss[~active], loss[~active])
    assert torch.equal(fixed_src[rows, 2], ids)
    assert torch.equal(fixed_src[rows][:, [0, 1, 3, 4]], src[rows][:, [0, 1, 3, 4]])
    torch.testing.assert_close(fixed_loss[rows], new_loss, rtol=1e-12, atol=0)
    assert (fixed_loss[rows] < loss[rows]).any()                        # some row moved


def test_the_fixed_row_search_stops_each_row_after_a_sweep_without_progress():
    """With the per-row early stop a stopped row keeps its trigger and loss through the remaining sweeps."""
    s2s, lm = _models(seed=2)
    cfg = _cfg(sweeps=4, candidates=2, restarts=3, lambda_in=0.0, init="uniform")
    res = S.search(s2s, lm, _targets_of_three_lengths(), _thresholds(s2s, lm), cfg,
                   torch.Generator().manual_seed(4), S.SearchGraphs(capture=False))
    traj = res.trajectory                                                 # (sweeps + 1, N, R)
    assert len(set(res.sweeps_run.flatten().tolist())) > 1
    for n, r in itertools.product(range(traj.size(1)), range(traj.size(2))):
        ran = int(res.sweeps_run[n, r])
        curve = traj[:, n, r]
        assert (curve[1:ran] < curve[: ran - 1]).all()                   # progress in every sweep but the last run
        assert ran == cfg.sweeps or curve[ran] == curve[ran - 1]          # the last one ran without progress
        assert (curve[ran:] == curve[ran]).all()                          # and nothing moved after it


def test_refresh_copy_writes_the_models_weights_into_its_padded_scoring_copy(attention_kw):
    s2s, lm = _models(**attention_kw)
    copies = [m.scoring_copy(torch.float32, multiple=8) for m in (s2s, lm)]
    with torch.no_grad():
        for m in (s2s, lm):
            for p in m.parameters():
                p.mul_(1.5).add_(0.1)
    for copy, m in zip(copies, (s2s, lm)):
        S.refresh_copy(copy, m)
        fresh = m.scoring_copy(torch.float32, multiple=8).state_dict()
        for name, w in copy.state_dict().items():
            assert torch.equal(w.isinf(), fresh[name].isinf()), name
            assert torch.equal(w.nan_to_num(), fresh[name].nan_to_num()), name


def test_refresh_copy_keeps_the_transformers_tied_and_padded_output_layer():
    from negtrain_core.config import TransformerSettings
    from negtrain_core.models.transformer import TransformerSeq2Seq
    torch.manual_seed(0)
    m = TransformerSeq2Seq(ModelSettings(vocab_size=V, arch="transformer", transformer=TransformerSettings(
        layers=1, d_model=8, heads=2, ff=16, max_positions=16))).double().eval()
    copy = m.scoring_copy(torch.float64, multiple=8)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3)
    S.refresh_copy(copy, m)
    src, tgt = SRC, TGT
    with torch.no_grad():
        torch.testing.assert_close(copy(src, tgt).token_logp, m(src, tgt).token_logp)


def test_the_fixed_rows_fall_back_to_the_plain_search_when_a_pass_needs_chunks():
    s2s, lm = _models()
    cfg = _cfg(max_chunk=7)                              # 2 restarts x 2 targets x 4 candidates do not fit
    graphs = S.SearchGraphs(capture=False)
    th = _thresholds(s2s, lm)
    plain = S.search(s2s, lm, TGT, th, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(S.search(s2s, lm, TGT, th, cfg, torch.Generator().manual_seed(1), graphs).triggers,
                       plain.triggers)
    assert not graphs.fixed


def _transformers(dtype=torch.float64, dropout: float = 0.0):
    torch.manual_seed(0)
    t = TransformerSettings(layers=2, d_model=8, heads=2, ff=16, max_positions=16)
    cfg = ModelSettings(vocab_size=V, dropout=dropout, arch="transformer", transformer=t)
    return TransformerSeq2Seq(cfg).to(dtype).eval(), TransformerLM(cfg).to(dtype).eval()


@pytest.mark.parametrize("arch", ["lstm", "lstm_release_attention", "transformer"])
@pytest.mark.parametrize("mode", ["o", "io"])
def test_a_position_over_fixed_rows_reads_nothing_back_to_the_host(arch, mode):
    """What ``SearchGraphs`` captures (``masked_position_update``: gradient pass with dropout, proposal, prefix,
    scoring, acceptance) must not read a value back: on a GPU that is a host synchronisation, and inside a CUDA graph
    capture an error. tests/host_syncs.py finds such reads on the CPU (it found F.one_hot's range check)."""
    if arch == "transformer":
        s2s, lm = _transformers(torch.float32, dropout=0.1)
    else:
        kw = {"attention": "release", "decoder_init": "zero"} if arch == "lstm_release_attention" else {}
        s2s, lm = _models(dtype=torch.float32, dropout=0.1, **kw)
    cfg = _cfg(candidates=3, lambda_in=1.0 if mode == "io" else 0.0, grad_train_mode=True)
    th = S.Thresholds(-2.0, -2.5)
    src = torch.cat([SRC, SRC.flip(0), SRC])
    tgt = S.trim(torch.cat([TGT, TGT, TGT.flip(0)]))
    loss = S.rows_loss(S.Scorer(s2s, lm), src, tgt, th, cfg).clone()
    active = torch.tensor([True, False, True, True, False, True])
    sizes = (S.ChunkSize(1000), S.ChunkSize(1000))
    before = src.clone()
    with HostSyncs() as syncs:
        for pos in cfg.free_positions():
            S.masked_position_update(s2s, lm, S.Scorer(s2s, lm), src, tgt, loss, active, pos, th, cfg,
                                     S.banned_ids(V, True), sizes)
    assert syncs.total == 0, dict(syncs.lines)
    assert not torch.equal(src, before) and torch.equal(src[~active], before[~active])       # it ran


def test_a_plain_search_reads_back_per_sweep_only():
    """The plain search reads lengths and active rows back once per sweep, never per position, and io-mode (LM term,
    LM-sample initialisation) reads no more than o-mode."""
    s2s, lm = _models(dtype=torch.float32)
    counts = {}
    for mode, sweeps in itertools.product(("o", "io"), (1, 3)):
        cfg = _cfg(sweeps=sweeps, lambda_in=1.0 if mode == "io" else 0.0, init="lm" if mode == "io" else "uniform",
                   early_stop=False)
        with HostSyncs() as syncs:
            S.search(s2s, lm, _targets_of_three_lengths(), S.Thresholds(-2.0, -2.5), cfg,
                     torch.Generator().manual_seed(0))
        counts[mode, sweeps] = syncs.total
    assert counts["o", 3] - counts["o", 1] == 2 * 3, counts   # each sweep: whether any row, which rows, their length
    assert counts["io", 1] == counts["o", 1] and counts["io", 3] == counts["o", 3], counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: CUDA graphs")
@pytest.mark.parametrize("mode,dtype,shared_tail", [("o", "float32", False), ("io", "float32", False),
                                                    ("io", "float16", False), ("o", "float16", True)])
def test_graphed_positions_find_what_the_eager_fixed_rows_do_on_cuda(mode, dtype, shared_tail):
    """Captured after GRAPH_WARMUP eager runs and replayed in the next searches: the same triggers as the fixed-row
    path run eagerly, without dropout (the graphs' dropout masks are their own), weights changed between searches
    (float16: through the scoring copies, refreshed in place); with ``shared_tail`` too, its recurrence captured."""
    torch.manual_seed(0)
    s2s, lm = (m.float().cuda() for m in _models(dtype=torch.float32, dropout=0.0))
    cfg = _cfg(sweeps=3, candidates=4, restarts=2, lambda_in=1.0 if mode == "io" else 0.0,
               init="lm" if mode == "io" else "uniform", grad_train_mode=False, score_dtype=dtype,
               shared_tail=shared_tail)
    th = _thresholds(*(m.double().cpu() for m in _models(dtype=torch.float64, dropout=0.0)))
    targets = _targets_of_three_lengths().cuda()
    graphed, eager = S.SearchGraphs(), S.SearchGraphs(capture=False)
    for seed in range(4):
        a = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed), graphed)
        b = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed), eager)
        assert torch.equal(a.triggers, b.triggers)
        torch.testing.assert_close(a.trajectory, b.trajectory)
        with torch.no_grad():
            for p in s2s.parameters():
                p.add_(0.05 * torch.randn_like(p))
    (fixed,) = graphed.fixed.values()
    assert fixed.graphs and max(fixed.calls.values()) > S.GRAPH_WARMUP


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: CUDA graphs")
def test_graphed_positions_run_with_dropout_in_the_gradient_pass_on_cuda():
    """The production reading (grad_train_mode, dropout 0.3, float16 scoring, io-mode): the graphs capture the
    dropout of the gradient pass and every search still ends with valid triggers and no loss above its start."""
    s2s, lm = (m.float().cuda() for m in _models(dtype=torch.float32, dropout=0.3))
    cfg = _cfg(sweeps=4, candidates=4, restarts=2, lambda_in=1.0, init="lm", grad_train_mode=True,
               early_stop=False)                          # 4 sweeps a search: the graphs are captured in the first
    th = _thresholds(*(m.double().cpu() for m in _models(dtype=torch.float64, dropout=0.3)))
    graphs = S.SearchGraphs()
    for seed in range(3):
        res = S.search(s2s, lm, _targets_of_three_lengths().cuda(), th, cfg, torch.Generator().manual_seed(seed),
                       graphs)
        assert not S.banned_ids(V, True, "cuda")[res.triggers[:, 1:-1]].any()
        assert torch.isfinite(res.losses).all()
        assert (res.trajectory[1:] <= res.trajectory[:-1]).all()
    (fixed,) = graphs.fixed.values()
    assert fixed.graphs


def test_chunks_halve_on_out_of_memory_but_not_while_a_graph_is_captured(monkeypatch):
    """Outside a capture an out-of-memory error halves the chunks (and later calls keep the size); inside one the
    smaller chunks would read their lengths on the host, which a capture refuses: the error goes to the caller
    (``SearchGraphs`` then stops its graphs)."""
    def fn(a, b):
        if b - a > 5:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return torch.arange(a, b)

    size = S.ChunkSize(16)
    assert torch.equal(S.run_chunked(fn, 10, size), torch.arange(10)) and size.rows == 5
    monkeypatch.setattr(S, "_capturing", lambda: True)
    with pytest.raises(torch.OutOfMemoryError):
        S.chunks(fn, 10, S.ChunkSize(16))


def test_a_pass_fits_one_chunk_while_both_chunk_sizes_hold_its_rows():
    cfg = _cfg(candidates=10)
    assert S.one_chunk(8, cfg, (S.ChunkSize(8), S.ChunkSize(80)))
    assert not S.one_chunk(8, cfg, (S.ChunkSize(7), S.ChunkSize(80)))          # the gradient pass would split
    assert not S.one_chunk(8, cfg, (S.ChunkSize(8), S.ChunkSize(40)))          # so would the scoring


def _out_of_memory_once(monkeypatch, when) -> list[bool]:
    """``S.gold_logp`` raising out-of-memory once, at the first call for which ``when()`` holds; the list returned
    is non-empty once it has."""
    real, raised = S.gold_logp, []

    def gold_logp(*args, **kwargs):
        if not raised and when():
            raised.append(True)
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(S, "gold_logp", gold_logp)
    return raised


def test_halved_chunks_after_an_out_of_memory_error_find_what_whole_ones_do(monkeypatch):
    """The fixed-row path (``SearchGraphs``, run eagerly on the CPU) where an out-of-memory error in the first
    position's LM prefix halves the search's chunks: the same triggers and trajectory as without the error."""
    torch.manual_seed(0)
    s2s, lm = (m.float() for m in _models(dtype=torch.float32, dropout=0.0))
    cfg = _cfg(sweeps=4, candidates=4, restarts=2, lambda_in=1.0, init="lm", grad_train_mode=False, early_stop=False)
    th = _thresholds(*_models(dtype=torch.float64, dropout=0.0))
    graphs = S.SearchGraphs(capture=False)
    raised = _out_of_memory_once(monkeypatch, lambda: bool(graphs.fixed))
    a = S.search(s2s, lm, _targets_of_three_lengths(), th, cfg, torch.Generator().manual_seed(0), graphs)
    b = S.search(s2s, lm, _targets_of_three_lengths(), th, cfg, torch.Generator().manual_seed(0))
    assert raised and torch.equal(a.triggers, b.triggers) and torch.equal(a.trajectory, b.trajectory)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: CUDA graphs")
@pytest.mark.parametrize("where", ["warm-up", "capture"])
def test_graphs_stop_after_an_out_of_memory_error_on_cuda(monkeypatch, capfd, where):
    """Algorithm 1 under several jobs per GPU: an out-of-memory error while a position runs eagerly before its
    capture halves the search's chunks (the pass would then read lengths on the host, which a capture refuses), or
    one while capturing: the graphs stop, their memory is released, and the searches go on eagerly with the same
    triggers as the eager fixed-row path (no dropout); one line says so."""
    torch.manual_seed(0)
    s2s, lm = (m.float().cuda() for m in _models(dtype=torch.float32, dropout=0.0))
    cfg = _cfg(sweeps=4, candidates=4, restarts=2, lambda_in=1.0, init="lm", grad_train_mode=False,
               score_dtype="float32", early_stop=False)
    th = _thresholds(*(m.double().cpu() for m in _models(dtype=torch.float64, dropout=0.0)))
    targets = _targets_of_three_lengths().cuda()
    graphed, eager = S.SearchGraphs(), S.SearchGraphs(capture=False)
    # warm-up: the first pass after the search made its fixed rows (the first position's eager run)
    when = (lambda: bool(graphed.fixed) and not S._capturing()) if where == "warm-up" else S._capturing
    raised = _out_of_memory_once(monkeypatch, when)
    for seed in range(2):
        a = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed), graphed)
        b = S.search(s2s, lm, targets, th, cfg, torch.Generator().manual_seed(seed), eager)
        assert torch.equal(a.triggers, b.triggers)
        torch.testing.assert_close(a.trajectory, b.trajectory, rtol=1e-4, atol=1e-5)   # halved chunks: other GEMMs
    assert raised and not graphed.capture and graphed.pool is None
    (fixed,) = graphed.fixed.values()
    assert not fixed.graphs
    assert capfd.readouterr().err.count("runs without graphs from here on") == 1


def test_objective_boundaries_and_lambda_in_by_hand():
    th = S.Thresholds(out=-2.0, inp=-2.0)
    mask = torch.ones(1, 2, dtype=torch.bool)
    # min mode: a token exactly at T_out is "at or above" it and gets the weight 0.01; min -3 keeps the row's 1
    o_min = _cfg(hit_mode="min", lambda_in=0.0)
    assert S.objective(torch.tensor([[-2.0, -3.0]]), mask, None, th, o_min).tolist() == pytest.approx([(0.02 + 3) / 2])
    # R(x) is reweighted only once the LM log-prob is strictly above T_in; lambda_in scales it
    io = _cfg(hit_mode="avg", lambda_in=0.5)
    lp, lm = torch.tensor([[-3.0, -3.0], [-3.0, -3.0]]), torch.tensor([-2.0, -1.0])
    assert S.objective(lp, mask.expand(2, -1), lm, th, io).tolist() == pytest.approx(
        [3.0 + 0.5 * 2.0, 3.0 + 0.5 * 0.01 * 1.0])


def test_accept_keeps_the_current_token_on_a_tie_and_breaks_candidate_ties_by_rank():
    chosen, new, improved = S.accept(torch.tensor([1.0, 1.0]), torch.tensor([[1.0, 2.0], [0.5, 0.5]]),
                                     torch.tensor([[5, 6], [7, 8]]), torch.ones(2, 2, dtype=torch.bool))
    assert chosen.tolist() == [-1, 7] and new.tolist() == [1.0, 0.5] and improved.tolist() == [False, True]


def test_search_keeps_the_restart_with_the_lowest_loss(monkeypatch):
    """No sweep: each target's kept trigger is the best of its three initialisations, by brute force (the planted
    trigger (7, 9) is the best start for the first target and the worst for the second; the first is the longer, so
    the search reorders them)."""
    s2s, _, targets = _planted_model()
    targets = targets.flip(0)
    inits = [[5, 6], [7, 9], [8, 8]]
    monkeypatch.setattr(S, "init_free", lambda n, *a: torch.tensor(inits * (n // 3)))
    cfg = S.SearchSettings(trigger_len=2, src_len=3, sweeps=0, restarts=3, lambda_in=0.0, grad_train_mode=False)
    res = S.search(s2s, None, targets, S.Thresholds(out=0.0, inp=-5.0), cfg, torch.Generator())
    src = S.layout(torch.tensor(inits), cfg.src_len)
    with torch.no_grad():
        nll = torch.stack([-s2s(src, t.expand(3, -1)).token_logp.sum(1) / (t[1:] != PAD_ID).sum() for t in targets])
    best = nll.argmin(1)                                                  # (2,) over the three inits
    assert best[0] == 1 and (nll.argmax(1) != best).all()                 # the test tells the restarts apart
    assert res.triggers.tolist() == src[best].tolist()
    assert res.objective.tolist() == pytest.approx(nll.min(1).values.tolist(), abs=1e-5)


def test_evaluate_with_train_keeps_the_lm_in_eval_mode():
    s2s, lm = _models(dropout=0.5)
    torch.manual_seed(0)
    ev = S.evaluate(s2s, lm, SRC, TGT, _cfg(), train=True)
    tokens = torch.cat([torch.full((2, 1), 2), SRC[:, 1:4], torch.zeros(2, 1, dtype=torch.long)], 1)   # <s> x </s>
    with torch.no_grad():
        want = lm.eval()(tokens).token_logp.mean(-1)
        eval_logp = s2s.eval()(SRC, TGT).token_logp
    assert torch.allclose(ev.lm_logp, want)                               # the LM without dropout
    assert not torch.allclose(ev.token_logp, eval_logp)                  # the seq2seq with it
