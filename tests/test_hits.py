"""Hit criteria on hand-computed log-probs, thresholds file, rates, and run_hits end to end on tiny models."""

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch

from negtrain_core import config as ncfg
from negtrain_core.search import hits as H
from negtrain_core.config import ModelSettings
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.search.gibbs_enum import Evaluation, Thresholds
from negtrain_core.search.targets import read_targets, target_tensor, targets_from_texts
from negtrain_core.data.vocab import SPECIALS, UNK_ID, Vocab

# three targets, T' = 3 (the third target has two real tokens)
LP = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -0.5, -0.5], [-2.5, -1.5, 0.0]])
MASK = torch.tensor([[True, True, True], [True, True, True], [True, True, False]])
LM_LP = torch.tensor([-3.0, -5.0, -2.0])
TH = Thresholds(out=-2.0, inp=-4.0)


def test_min_and_avg_by_hand():
    assert H.min_logp(LP, MASK).tolist() == [-3.0, -4.0, -2.5]
    assert H.avg_logp(LP, MASK).tolist() == pytest.approx([-2.0, -5.0 / 3, -2.0])


def test_sample_criteria_by_hand():
    assert H.o_sample_min(LP, MASK, TH.out).tolist() == [False, False, False]
    assert H.o_sample_min(LP, MASK, -3.0).tolist() == [True, False, True]      # >= is a hit
    assert H.o_sample_avg(LP, MASK, TH.out).tolist() == [True, True, True]     # -2 >= -2; padding ignored
    assert H.o_sample_avg(LP, MASK, -1.9).tolist() == [False, True, False]
    assert H.io_sample_avg(LP, MASK, LM_LP, TH).tolist() == [True, False, True]   # LM -5 < -4
    assert H.io_sample_min(LP, MASK, LM_LP, Thresholds(-3.0, -4.0)).tolist() == [True, False, True]
    assert H.io_sample_min(LP, MASK, LM_LP, Thresholds(-3.0, -2.5)).tolist() == [False, False, True]


def test_greedy_hit_needs_every_step_and_no_unk():
    gold = torch.tensor([[5, 6, 0], [5, UNK_ID, 0], [7, 0, 3]])
    mask = gold != 3
    greedy = torch.tensor([[5, 6, 0], [5, UNK_ID, 0], [7, 0, 9]])               # pad step may differ
    assert H.o_greedy(greedy, gold, mask).tolist() == [True, False, True]
    greedy[0, 2] = 8
    assert H.o_greedy(greedy, gold, mask).tolist() == [False, False, True]


def test_criteria_bundle_matches_the_single_functions():
    gold = torch.tensor([[5, 6, 0], [5, 6, 0], [7, 0, 3]])
    ev = Evaluation(LP, gold.clone(), MASK, LM_LP)
    crit = H.criteria(ev, gold, TH)
    assert list(crit) == list(H.HIT_TYPES)
    single = {"o_greedy": H.o_greedy(gold, gold, MASK), "o_sample_min": H.o_sample_min(LP, MASK, TH.out),
              "o_sample_avg": H.o_sample_avg(LP, MASK, TH.out), "io_sample_min": H.io_sample_min(LP, MASK, LM_LP, TH),
              "io_sample_avg": H.io_sample_avg(LP, MASK, LM_LP, TH)}
    assert {h: c.tolist() for h, c in crit.items()} == {h: c.tolist() for h, c in single.items()} == {
        "o_greedy": [True] * 3, "o_sample_min": [False] * 3, "o_sample_avg": [True] * 3,
        "io_sample_min": [False] * 3, "io_sample_avg": [True, False, True]}     # each type tells from the others


def test_load_thresholds(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"seq2seq": -3.7569, "lm": -3.7927, "extra": 1}))
    assert H.load_thresholds(path) == Thresholds(-3.7569, -3.7927)
    path.write_text(json.dumps({"seq2seq": -3.7569}))
    with pytest.raises(H.ThresholdsError, match="key 'lm'"):
        H.load_thresholds(path)
    path.write_text(json.dumps({"seq2seq": 3.7, "lm": -3.0}))
    with pytest.raises(H.ThresholdsError, match="key 'seq2seq'"):
        H.load_thresholds(path)


def test_hit_rates_count_o_types_on_o_rows_and_io_types_on_io_rows():
    rows = []
    for mode, flags in (("o", [True, False, True]), ("io", [False, False, True])):
        for i, f in enumerate(flags):
            rows.append({"target": f"t{i}", "mode": mode, "skipped": False, **{h: f for h in H.HIT_TYPES}})
    rows += [{"target": "oov", "mode": m, "skipped": True, **{h: False for h in H.HIT_TYPES}} for m in H.MODES]
    rates = H.hit_rates(pd.DataFrame(rows)).set_index("hit_type")
    assert rates.loc["o_sample_avg", ["hits", "targets", "skipped"]].tolist() == [2, 3, 1]
    assert rates.loc["o_sample_avg", "rate"] == pytest.approx(2 / 3)
    assert rates.loc["io_sample_min", ["hits", "targets"]].tolist() == [1, 3]
    assert "o_greedy 66.7% (2/3, 1 skipped)" in H.format_rates(rates.reset_index())


def test_restarts_for_models():
    config = ncfg.load(ncfg.SCHEMA_PATH.parent.parent / "config.yaml")
    cfg = ncfg.settings(config, "chitchat").search                                         # 5 and 1
    assert {c.restarts for c in H.searches_for("baseline", cfg).values()} == {5}
    assert {c.restarts for c in H.searches_for("negtr-o-0.5k", cfg).values()} == {1}
    config["hits"]["baseline_restarts"] = 2                     # the release: 1, as Algorithm 1's initial test
    cfg = ncfg.settings(config, "chitchat").search
    assert {c.restarts for c in H.searches_for("baseline", cfg).values()} == {2}
    assert {c.restarts for c in H.searches_for("negtr-o-0.5k", cfg).values()} == {1}


def test_strict_comparisons_reject_equality():
    assert H.o_sample_avg(LP, MASK, TH.out).tolist() == [True, True, True]
    assert H.o_sample_avg(LP, MASK, TH.out, strict=True).tolist() == [False, True, False]     # means -2 == T_out
    assert H.o_sample_min(LP, MASK, -3.0, strict=True).tolist() == [False, False, True]       # row 0: min == -3
    assert H.lm_pass(torch.tensor([-4.0, -3.9]), -4.0, strict=True).tolist() == [False, True]
    assert H.io_sample_avg(LP, MASK, torch.tensor([-4.0] * 3), TH).tolist() == [True, True, True]
    assert H.io_sample_avg(LP, MASK, torch.tensor([-4.0] * 3), TH, strict=True).tolist() == [False] * 3
    gold = torch.tensor([[5, 6, 0], [5, 6, 0], [7, 0, 3]])
    crit = H.criteria(Evaluation(LP, gold.clone(), MASK, LM_LP), gold, TH, ncfg.HitSettings(strict=True))
    assert crit["o_sample_avg"].tolist() == [False, True, False] and crit["io_sample_avg"].tolist() == [False] * 3


def test_lm_check_off_counts_a_hit_whose_trigger_fails_the_lm_threshold():
    assert H.io_sample_avg(LP, MASK, LM_LP, TH).tolist() == [True, False, True]                # LM -5 < -4
    assert H.io_sample_avg(LP, MASK, LM_LP, TH, lm_check=False).tolist() == [True, True, True]
    assert H.io_sample_min(LP, MASK, LM_LP, Thresholds(-3.0, -1.0), lm_check=False).tolist() == [True, False, True]
    gold = torch.tensor([[5, 6, 0], [5, 6, 0], [7, 0, 3]])
    crit = H.criteria(Evaluation(LP, gold.clone(), MASK, LM_LP), gold, TH, ncfg.HitSettings(lm_check=False))
    assert torch.equal(crit["io_sample_avg"], crit["o_sample_avg"])


def _tiny_run(tmp_path):
    """A 7-word vocabulary, seq2seq and LM with dropout 0.3, quick settings with a small search, a 3-target list."""
    vocab = Vocab(SPECIALS + ("i", "hate", "you", "are", "bad", "so", "very"))
    torch.manual_seed(0)
    mcfg = ModelSettings(vocab_size=len(vocab), embedding_dim=6, hidden_dim=8, dropout=0.3)
    s2s, lm = Seq2Seq(mcfg).eval(), LSTMLM(mcfg).eval()
    config = ncfg.load(ncfg.SCHEMA_PATH.parent.parent / "config.yaml")
    config["scale"] = "quick"
    settings = ncfg.settings(config, "chitchat")
    attack = {m: replace(c, trigger_len=4, candidates=3, sweeps=2) for m, c in settings.search.attack.items()}
    settings = replace(settings, search=replace(settings.search, attack=attack))
    path = tmp_path / "train_0.5k.txt"
    path.write_text("i hate you\nyou are bad\nyou are stupid\n")
    return vocab, s2s, lm, settings, path


def test_run_hits_end_to_end_on_tiny_models(tmp_path):
    vocab, s2s, lm, settings, path = _tiny_run(tmp_path)
    th = Thresholds(out=-2.2, inp=-2.3)
    hits, rates = H.run_hits(s2s, lm, vocab, path, th, settings, "baseline", seed=1)
    assert list(hits.columns) == H.COLUMNS
    assert len(hits) == 6 and hits["mode"].tolist().count("o") == 3
    done = hits[~hits["skipped"]]
    assert set(done["target"]) == {"i hate you", "you are bad"}
    assert hits[hits["skipped"]]["oov"].tolist() == ["stupid", "stupid"]
    for r in done.itertuples():
        assert len(r.trigger.split()) == 4 and not set(r.trigger.split()) & set(SPECIALS[:1] + SPECIALS[2:])
        assert len(r.token_logp) == 4                                   # 3 words + </s>
        assert r.min_logp == pytest.approx(min(r.token_logp)) and r.avg_logp == pytest.approx(sum(r.token_logp) / 4)
        assert r.o_sample_avg == (r.avg_logp >= th.out) and r.o_sample_min == (r.min_logp >= th.out)
        assert r.io_sample_avg == (r.o_sample_avg and r.lm_logp >= th.inp)
        assert r.lm_logp < 0 and r.loss > 0
        if r.mode == "o":
            assert r.loss == pytest.approx(-r.avg_logp, abs=1e-5)             # lambda_in 0
        else:
            assert r.loss == pytest.approx(-r.avg_logp - r.lm_logp, abs=1e-5)  # lambda_in 1
    assert rates["targets"].tolist() == [2] * 5 and rates["skipped"].tolist() == [1] * 5
    assert rates["rate"].between(0, 1).all()
    again, _ = H.run_hits(s2s, lm, vocab, path, th, settings, "baseline", seed=1)
    pd.testing.assert_frame_equal(hits, again)                          # same seed, same table
    assert done["loss"].notna().all() and hits[hits["skipped"]]["loss"].isna().all()


def test_list_hits_on_targets_in_memory_is_run_hits_on_the_same_list_file(tmp_path):
    vocab, s2s, lm, settings, path = _tiny_run(tmp_path)
    th = Thresholds(out=-2.2, inp=-2.3)
    from_file, _ = H.run_hits(s2s, lm, vocab, path, th, settings, "baseline", seed=1)
    given = targets_from_texts(["i hate you", "you are bad"], vocab)
    hits, rates = H.list_hits(s2s, lm, vocab, given, th, settings, "baseline", seed=1)
    pd.testing.assert_frame_equal(hits, from_file[~from_file["skipped"]].reset_index(drop=True))
    assert rates["targets"].tolist() == [2] * 5 and rates["skipped"].tolist() == [0] * 5


def test_hit_options_reach_the_hits_table(tmp_path):
    """hits.lm_check, hits.strict and hits.model_mode change the table run_hits writes; the search does not move."""
    vocab, s2s, lm, settings, path = _tiny_run(tmp_path)
    th = Thresholds(out=-2.2, inp=-1e-6)                                 # no trigger is that likely under the LM
    base, _ = H.run_hits(s2s, lm, vocab, path, th, settings, "baseline", seed=1)
    done = ~base["skipped"]
    assert not base.loc[done, "io_sample_avg"].any()

    def table(**kw):
        return H.run_hits(s2s, lm, vocab, path, th, replace(settings, hits=ncfg.HitSettings(**kw)), "baseline", 1)[0]

    no_lm = table(lm_check=False)
    assert (no_lm.loc[done, "io_sample_avg"] == (no_lm.loc[done, "avg_logp"] >= th.out)).all()
    # thresholds equal to the first target's o-mode min and LM log-prob: a hit with '>=', none with '>'
    targets = read_targets(path, vocab, "skip")
    tgt = target_tensor(targets.ids)
    results = {m: (c, H.search_mode(s2s, lm, tgt, th, c, 1)) for m, c in settings.search.attack.items()}
    ev = results["o"][1].evaluation
    eq = Thresholds(out=float(H.min_logp(ev.token_logp, ev.mask)[0]), inp=float(ev.lm_logp[0]))
    for strict in (False, True):
        t = H.hits_table(s2s, lm, vocab, targets, tgt, results, eq, ncfg.HitSettings(strict=strict), 1)
        assert t.loc[0, "o_sample_min"] != strict and t.loc[0, "io_sample_min"] != strict
        assert t.loc[0, "min_logp"] == eq.out and t.loc[0, "lm_logp"] == eq.inp
    train = table(model_mode="train")                                    # dropout 0.3: other scores, same triggers
    assert train["trigger"].tolist() == base["trigger"].tolist() and train["loss"].equals(base["loss"])
    assert not train.loc[done, "avg_logp"].equals(base.loc[done, "avg_logp"])
    assert (train.loc[done, "o_sample_avg"] == (train.loc[done, "avg_logp"] >= th.out)).all()
    assert not s2s.training
    pd.testing.assert_frame_equal(train, table(model_mode="train"))      # seeded: the same table again


def test_io_sample_min_is_strict_on_the_lm_threshold_and_obeys_lm_check_in_the_bundle():
    # min log-probs -3, -4, -2.5: above -3.5 for rows 0 and 2; LM exactly at T_in for rows 0 and 1, above for row 2
    lm_lp, th = torch.tensor([-4.0, -4.0, -3.9]), Thresholds(out=-3.5, inp=-4.0)
    assert H.io_sample_min(LP, MASK, lm_lp, th).tolist() == [True, False, True]
    assert H.io_sample_min(LP, MASK, lm_lp, th, strict=True).tolist() == [False, False, True]   # LM -4 > -4 fails
    # no trigger passes T_in -1; without the LM check io_sample_min is o_sample_min (mins -3, -4, -2.5 vs -3)
    gold = torch.tensor([[5, 6, 0], [5, 6, 0], [7, 0, 3]])
    ev, th = Evaluation(LP, gold.clone(), MASK, LM_LP), Thresholds(out=-3.0, inp=-1.0)
    assert H.criteria(ev, gold, th)["io_sample_min"].tolist() == [False, False, False]
    crit = H.criteria(ev, gold, th, ncfg.HitSettings(lm_check=False))
    assert crit["io_sample_min"].tolist() == [True, False, True]


def test_hits_table_columns_of_a_shorter_target_average_over_its_own_tokens_only(tmp_path):
    """The table's min/avg/token columns of given search results (hits.model_mode eval: the search's own scores):
    the third target is one word shorter, its padded step counts in neither its mean nor its token list."""
    from negtrain_core.config import SearchSettings
    from negtrain_core.search.gibbs_enum import SearchResult

    vocab = Vocab(SPECIALS + ("i", "hate", "you", "bad"))
    path = tmp_path / "targets.txt"
    path.write_text("i hate\nyou bad\nyou\n")
    targets = read_targets(path, vocab, "skip")
    tgt = target_tensor(targets.ids)                                     # (3, 4): T' = 3 as LP, MASK
    cfg = SearchSettings(trigger_len=2, src_len=3, lambda_in=0.0)
    trig = torch.tensor([[5, 6, 4], [7, 8, 4], [5, 5, 4]])
    ev = Evaluation(LP, tgt[:, 1:].clone(), MASK, LM_LP)
    res = SearchResult(trig, torch.tensor([2.0, 5 / 3, 2.0]), torch.zeros(3), ev, torch.zeros(1, 3, 1),
                       torch.zeros(3, 1, dtype=torch.long), 0)
    table = H.hits_table(None, None, vocab, targets, tgt, {"o": (cfg, res)}, TH, ncfg.HitSettings(), seed=0)
    assert table["trigger"].tolist() == ["i hate", "you bad", "i i"]
    assert table["token_logp"].tolist() == [[-1.0, -2.0, -3.0], [-4.0, -0.5, -0.5], [-2.5, -1.5]]
    assert table["min_logp"].tolist() == [-3.0, -4.0, -2.5]
    assert table["avg_logp"].tolist() == pytest.approx([-2.0, -5 / 3, -2.0])     # row 2: (-2.5 - 1.5) / 2
    assert table["o_sample_avg"].tolist() == [True, True, True] and table["o_greedy"].tolist() == [True] * 3


def test_a_zero_threshold_is_refused_as_no_mean_log_likelihood(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"seq2seq": -3.7, "lm": 0.0}))
    with pytest.raises(H.ThresholdsError, match="key 'lm'"):
        H.load_thresholds(path)
