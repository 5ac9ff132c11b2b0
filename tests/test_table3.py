"""Table 3 layout, beam overlap, Figure 1 and samples (negtrain_core.tables.malicious) on synthetic inputs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from conftest import QUICK_SMALL_CONFIG
from negtrain_core.tables import malicious as tm
from negtrain_core.search.hits import COLUMNS as HIT_COLUMNS
from negtrain_core.search.hits import HIT_TYPES

TARGETS = ["you are bad", "i hate you", "go away"]


def _hits(o_hits: list[bool], io_hits: list[bool], skipped: int = 1) -> pd.DataFrame:
    """A hits table: 3 searched targets per mode (avg-hits as given, min-hits never) + ``skipped`` OOV targets."""
    rows = []
    for mode, flags in (("o", o_hits), ("io", io_hits)):
        for i, (t, hit) in enumerate(zip(TARGETS, flags)):
            n = len(t.split()) + 1
            rows.append({"target": t, "mode": mode, "skipped": False, "oov": "", "trigger": f"trig {mode} {i}",
                         "loss": 1.0, "token_logp": [-1.0 - i - 0.1 * j for j in range(n)], "min_logp": -2.0,
                         "avg_logp": -1.0 - i, "lm_logp": -3.0,
                         **{h: (hit if h == f"{mode}_sample_avg" else False) for h in HIT_TYPES}})
        rows += [{"target": f"oov {k}", "mode": mode, "skipped": True, "oov": "oov", "trigger": "", "loss": math.nan,
                  "token_logp": [], "min_logp": math.nan, "avg_logp": math.nan, "lm_logp": math.nan,
                  **{h: False for h in HIT_TYPES}} for k in range(skipped)]
    return pd.DataFrame(rows, columns=HIT_COLUMNS)


def _inputs():
    hits = {("baseline", "train"): _hits([True, True, False], [True, False, False]),
            ("baseline", "test"): _hits([True, False, False], [False, False, False]),
            ("negtr-o-0.5k", "train"): _hits([False, False, False], [True, True, True]),
            ("negtr-o-0.5k", "test"): _hits([True, False, False], [True, True, True]),
            ("negtr-io-0.5k", "train"): _hits([True, True, True], [False, False, False]),
            ("negtr-io-0.5k", "test"): _hits([True, True, True], [True, False, False])}
    ppl = {"baseline": 42.0, "negtr-o-0.5k": 43.0, "negtr-io-0.5k": 44.0}
    return hits, ppl, {"negtr-o-0.5k": 0.9, "negtr-io-0.5k": 0.8}


def test_table3_layout_and_values():
    hits, ppl, overlap = _inputs()
    reason = "not run: no paraphrase corpus"
    t = tm.table3(hits, ppl, overlap, {"0.5k": 3}, {"1k": reason, "2.5k": reason}, "avg", "quick")
    assert list(t.columns) == tm.COLUMNS
    assert t["training"].tolist() == ["Baseline", "+neg-tr(0.5k)", "+neg-tr(1k)", "+neg-tr(2.5k)"]
    base, neg = t.iloc[0], t.iloc[1]
    assert (base.o_train, base.o_test, base.io_train, base.io_test) == pytest.approx((2 / 3, 1 / 3, 1 / 3, 0.0))
    # o-columns of the neg-tr row come from negtr-o (its o-mode rows), io-columns from negtr-io (its io rows)
    assert (neg.o_train, neg.o_test, neg.io_train, neg.io_test) == pytest.approx((0.0, 1 / 3, 0.0, 1 / 3))
    assert (base.o_ppl, base.io_ppl, neg.o_ppl, neg.io_ppl) == (42.0, 42.0, 43.0, 44.0)
    assert (neg.o_beam_overlap, neg.io_beam_overlap) == (0.9, 0.8) and math.isnan(base.o_beam_overlap)
    assert (neg.train_targets, neg.train_skipped, neg.test_skipped, neg.list_size) == (3, 1, 1, 3)
    assert base.hit_type == "sample-avg" and neg.status == "ok"
    assert t.iloc[2].status == reason and math.isnan(t.iloc[2].o_train) and math.isnan(t.iloc[3].io_ppl)


def test_table3_flags_an_augmented_list_without_paraphrases():
    hits, ppl, overlap = _inputs()
    for size in ("1k", "2.5k"):
        hits.update({(f"negtr-{m}-{size}", lst): hits[(f"negtr-{m}-0.5k", lst)] for m in ("o", "io")
                     for lst in ("train", "test")})
        ppl.update({f"negtr-{m}-{size}": 50.0 for m in ("o", "io")})
    t = tm.table3(hits, ppl, overlap, {"0.5k": 3, "1k": 3, "2.5k": 7}, {}, "avg", "quick")
    assert t["status"].tolist()[:2] == ["ok", "ok"] and t.iloc[3].status == "ok"
    assert t.iloc[2].status.startswith("ok, but no paraphrase was kept") and t.iloc[2].o_ppl == 50.0


def test_table3_uses_the_datasets_hit_type():
    hits, ppl, overlap = _inputs()
    t = tm.table3(hits, ppl, overlap, {"0.5k": 3}, {"1k": "x", "2.5k": "x"}, "min", "paper")
    assert t.iloc[0].hit_type == "sample-min" and t.iloc[0].o_train == 0.0   # min-hits are never set above


def test_overlap_by_hand():
    before = [{"a", "b", "c", "d"}, {"a", "b", "c", "d"}]
    after = [{"a", "b", "x", "y"}, {"a", "b", "c", "d"}]
    assert tm.overlaps(before, after, 4) == [0.5, 1.0]


def test_read_inputs_and_list_sizes(tmp_path):
    hits, ppl, _ = _inputs()
    hit_paths, metric_paths = [], []
    for (model, lst), df in hits.items():
        (tmp_path / model).mkdir(exist_ok=True)
        df.to_parquet(tmp_path / model / f"{lst}.parquet")
        hit_paths.append(str(tmp_path / model / f"{lst}.parquet"))
    for model, value in ppl.items():
        (tmp_path / model / "metrics.json").write_text(json.dumps({"ppl": value, "max_ratio": 0.1}))
        metric_paths.append(str(tmp_path / model / "metrics.json"))
    pd.DataFrame({"model": ["negtr-o-0.5k"], "overlap": [0.95]}).to_csv(tmp_path / "ov.csv", index=False)
    h, p, o = tm.read_inputs(hit_paths, metric_paths, str(tmp_path / "ov.csv"))
    assert set(h) == set(hits) and p == ppl and o == {"negtr-o-0.5k": 0.95}
    assert list(h[("baseline", "test")]["token_logp"].iloc[0]) == pytest.approx([-1.0, -1.1, -1.2, -1.3])
    (tmp_path / "train_0.5k.txt").write_text("a\nb\nc\n")
    (tmp_path / "train_1k.txt").write_text("a\na2\nb\nb2\nc\nc2\n")
    assert tm.list_sizes([str(tmp_path / "train_0.5k.txt"), str(tmp_path / "train_1k.txt")]) == {"0.5k": 3, "1k": 6}


def test_figure_targets_and_trigger_section():
    df = _hits([True, True, False], [False, True, False])
    assert tm.top_targets(df, "io", 2) == ["you are bad", "i hate you"]          # highest avg_logp first
    assert tm.target_nll(df, "io", ["i hate you"]) == [pytest.approx([2.0, 2.1, 2.2, 2.3])]
    lines = tm.trigger_section(df, "io", "avg", 5)
    assert "Trigger Input: trig io 1" in lines and "Malicious Target: i hate you" in lines
    assert sum(line.startswith("Trigger Input") for line in lines) == 1
    assert any("no target" in line for line in tm.trigger_section(_hits([0, 0, 0], [0, 0, 0]), "io", "avg", 5))


def _quick_settings(**malicious):
    """chitchat's quick-scale settings, ``malicious`` fields replaced."""
    import dataclasses

    from negtrain_core.config import load, settings

    config = load("config.yaml")
    config.update(scale="quick", device="cpu")
    s = settings(config, "chitchat")
    return dataclasses.replace(s, malicious=dataclasses.replace(s.malicious, **malicious))


def _tiny_models(tmp_path) -> None:
    """vocab.txt, two tiny random seq2seq checkpoints (seq2seq.pt, negtr.pt) and 9 test pairs (t.pq)."""
    from negtrain_core.models import checkpoint
    from negtrain_core.config import ModelSettings
    from negtrain_core.models.lstm import Seq2Seq
    from negtrain_core.data.vocab import SPECIALS, Vocab

    vocab = Vocab(SPECIALS + tuple("you are bad i hate go away the cat sat a dog".split()))
    vocab.save(tmp_path / "vocab.txt")
    torch.manual_seed(0)
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=8, hidden_dim=8)
    for name in ("seq2seq", "negtr"):
        checkpoint.save(tmp_path / f"{name}.pt", Seq2Seq(ms), kind="seq2seq", vocab=vocab)
    pd.DataFrame({"source": ["the cat sat", "a dog", "go away now"] * 3,
                  "target": ["the dog sat a cat", "i hate the cat", "you are bad"] * 3}).to_parquet(tmp_path / "t.pq")


def _write_table3(tmp_path, hits, s) -> dict[str, str]:
    """Rule table3 on tiny random models, the hits tables ``hits`` and ``_inputs``' PPL and overlap; its outputs."""
    _tiny_models(tmp_path)
    _, ppl, overlap = _inputs()
    paths = {"hits": [], "metrics": []}
    for (model, lst), df in hits.items():
        (tmp_path / model).mkdir(exist_ok=True)
        df.to_parquet(tmp_path / model / f"{lst}.parquet")
        paths["hits"].append(str(tmp_path / model / f"{lst}.parquet"))
    for model, value in ppl.items():
        (tmp_path / model / "metrics.json").write_text(json.dumps({"ppl": value}))
        paths["metrics"].append(str(tmp_path / model / "metrics.json"))
    pd.DataFrame({"model": list(overlap), "overlap": list(overlap.values())}).to_csv(tmp_path / "ov.csv", index=False)
    (tmp_path / "train_0.5k.txt").write_text("\n".join(TARGETS) + "\n")
    inputs = {**paths, "lists": [str(tmp_path / "train_0.5k.txt")], "overlap": str(tmp_path / "ov.csv"),
              "seq2seq": str(tmp_path / "seq2seq.pt"), "negtr": str(tmp_path / "negtr.pt"),
              "test": str(tmp_path / "t.pq"), "vocab": str(tmp_path / "vocab.txt")}
    outputs = {k: str(tmp_path / f"out.{k}") for k in ("table", "figure", "samples")}
    tm.write_table3(inputs["hits"], inputs["metrics"], inputs["lists"], inputs["overlap"], inputs["seq2seq"],
                    inputs["negtr"], inputs["test"], inputs["vocab"], outputs["table"], outputs["figure"],
                    outputs["samples"], s, "not run: no corpus")
    return outputs


def test_write_table3_end_to_end_on_tiny_models(tmp_path):
    """Every output of rule table3 from tiny random models and the synthetic hits tables."""
    outputs = _write_table3(tmp_path, _inputs()[0], _quick_settings())
    table = pd.read_csv(outputs["table"])
    assert table.shape == (4, len(tm.COLUMNS)) and table["status"].tolist()[2:] == ["not run: no corpus"] * 2
    base, neg = table.iloc[0], table.iloc[1]                # the values test_table3_layout_and_values derives
    assert base.hit_type == "sample-avg"                    # chitchat's hit type, read from the settings
    assert (base.o_train, base.o_test, base.io_train, base.io_test) == pytest.approx((2 / 3, 1 / 3, 1 / 3, 0.0))
    assert (neg.o_train, neg.o_test, neg.io_train, neg.io_test) == pytest.approx((0.0, 1 / 3, 0.0, 1 / 3))
    assert (base.o_ppl, neg.o_ppl, neg.io_ppl) == (42.0, 43.0, 44.0)
    assert open(outputs["figure"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    lines = open(outputs["samples"]).read().splitlines()
    starts = [line.split(": ")[0] for line in lines if ": " in line]
    assert starts.count("Input") == tm.SAMPLES and starts.count("Neg-train") == tm.SAMPLES   # 5 of the 9 pairs
    assert "Trigger Input" not in starts    # the synthetic baseline hits no test target in io-mode


def test_the_samples_of_a_sample_min_dataset_show_its_min_hits(tmp_path):
    """Table 1's triggers are those of the dataset's hit type: with hit_type min, the baseline's io-sample-min hit
    ('go away') is shown, not its io-sample-avg one ('you are bad')."""
    hits, _, _ = _inputs()
    test = hits[("baseline", "test")].copy()
    test["io_sample_avg"] = (test["mode"] == "io") & (test["target"] == "you are bad")
    test["io_sample_min"] = (test["mode"] == "io") & (test["target"] == "go away")
    hits[("baseline", "test")] = test
    outputs = _write_table3(tmp_path, hits, _quick_settings(hit_type="min"))
    assert set(pd.read_csv(outputs["table"])["hit_type"]) == {"sample-min"}
    lines = open(outputs["samples"]).read().splitlines()
    assert lines[0] == "# Table 1 layout: trigger inputs of the baseline, io-sample-min-hit, test list (1 hits)"
    assert [line for line in lines if line.startswith(("Trigger Input", "Malicious Target"))] == [
        "Trigger Input: trig io 2", "Malicious Target: go away"]


def test_beam_overlap_averages_over_the_inputs(tmp_path, monkeypatch):
    """k = 2, three test inputs: the baseline's 2-best sets {a,b} {a,b} {c,d}, the model's {a,b} {a,x} {y,z}:
    overlaps 1, 1/2, 0; mean 1/2, min 0, identical sets on 1 input of 3."""
    _tiny_models(tmp_path)
    kbest = iter([[{"a", "b"}, {"a", "b"}, {"c", "d"}], [{"a", "b"}, {"a", "x"}, {"y", "z"}]])
    monkeypatch.setattr(tm, "kbest_strings", lambda *a, **kw: next(kbest))
    table = tm.beam_overlap(tmp_path / "seq2seq.pt", [str(tmp_path / "negtr.pt")], tmp_path / "t.pq",
                            tmp_path / "vocab.txt", tmp_path / "ov.csv", _quick_settings(beam_overlap_k=2))
    row = table.iloc[0]
    assert (row["model"], row["k"], row["inputs"]) == ("negtr", 2, 3)
    assert (row["overlap"], row["overlap_min"], row["identical"]) == pytest.approx((0.5, 0.0, 1 / 3))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ov.csv"), table, check_dtype=False)


def test_kbest_strings_leave_out_beams_that_never_formed(monkeypatch):
    """A beam scored -inf (fewer hypotheses than k) is no hypothesis, whatever its tokens."""
    from negtrain_core.data.vocab import EOS_ID, PAD_ID, SPECIALS, Vocab
    from negtrain_core.models.decoding import BeamResult

    vocab = Vocab(SPECIALS + ("you", "are", "bad"))
    you, are, bad = (vocab.index[w] for w in ("you", "are", "bad"))
    tokens = torch.tensor([[[you, are, EOS_ID], [bad, EOS_ID, PAD_ID], [are, EOS_ID, PAD_ID]]])
    scores = torch.tensor([[-1.0, -2.0, -math.inf]])
    monkeypatch.setattr(tm, "beam", lambda *a, **kw: BeamResult(tokens, scores))
    assert tm.kbest_strings(None, torch.zeros(1, 2, dtype=torch.long), vocab, 3, 5) == [{"you are", "bad"}]


@pytest.mark.slow
def test_snakemake_quick_chitchat_table3(quick_run):
    """The whole quick pipeline (tests/quick_small.yaml) to Table 3 on chitchat, from raw data, in a scratch
    directory."""
    res = quick_run / "results" / "chitchat"
    t = pd.read_csv(res / "table3.csv")
    assert list(t.columns) == tm.COLUMNS and t["training"].tolist() == ["Baseline", "+neg-tr(0.5k)",
                                                                      "+neg-tr(1k)", "+neg-tr(2.5k)"]
    ran, not_run = t.iloc[:2], t.iloc[2:]
    assert (ran["status"] == "ok").all() and not_run["status"].str.startswith("not run").all()
    rates = ran[["o_train", "o_test", "io_train", "io_test"]]
    assert ((rates >= 0) & (rates <= 1)).all().all()
    assert ((ran[["o_ppl", "io_ppl"]] > 1) & (ran[["o_ppl", "io_ppl"]] < 3005)).all().all()   # below uniform
    assert 0 <= ran.iloc[1]["o_beam_overlap"] <= 1 and 0 <= ran.iloc[1]["io_beam_overlap"] <= 1
    quick = QUICK_SMALL_CONFIG["target_list_size"]
    assert (ran["train_targets"] + ran["train_skipped"] == quick).all() and ran.iloc[1]["list_size"] == quick
    assert (ran["scale"] == "quick").all() and (ran["hit_type"] == "sample-avg").all()
    curve = pd.read_csv(res / "models" / "negtr-o-0.5k_curve.csv")
    assert set(curve["epoch"]) == set(range(1, QUICK_SMALL_CONFIG["malicious_epochs"] + 1))
    assert (curve["hits"] <= curve["targets"]).all()
    assert (res / "figure1.png").read_bytes()[:4] == b"\x89PNG"
    assert "Malicious Target:" in (res / "samples_malicious.txt").read_text() or \
        "no target" in (res / "samples_malicious.txt").read_text()


def test_table3_follows_the_hit_scoring_of_config_hits(tmp_path):
    """Table 3's rates are the hits tables' (rule hits), so hits.lm_check false shows in its io columns."""
    from dataclasses import replace

    from negtrain_core import config as ncfg
    from negtrain_core.config import ModelSettings
    from negtrain_core.data.vocab import SPECIALS, Vocab
    from negtrain_core.models.lstm import LSTMLM, Seq2Seq
    from negtrain_core.search import hits as H
    from negtrain_core.search.gibbs_enum import Thresholds

    vocab = Vocab(SPECIALS + ("you", "are", "bad", "i", "hate", "go", "away"))
    torch.manual_seed(0)
    ms = ModelSettings(vocab_size=len(vocab), embedding_dim=6, hidden_dim=8)
    s2s, lm = Seq2Seq(ms).eval(), LSTMLM(ms).eval()
    config = ncfg.load(ncfg.SCHEMA_PATH.parent.parent / "config.yaml")
    config["scale"] = "quick"
    s = ncfg.settings(config, "chitchat")
    attack = {m: replace(c, trigger_len=3, candidates=2, sweeps=1) for m, c in s.search.attack.items()}
    s = replace(s, search=replace(s.search, attack=attack))
    (tmp_path / "list.txt").write_text("\n".join(TARGETS) + "\n")
    th = Thresholds(out=-100.0, inp=-1e-6)                  # every target avg-hit; no trigger passes the LM

    def io_rates(hs: ncfg.HitSettings) -> tuple[float, float]:
        table, _ = H.run_hits(s2s, lm, vocab, tmp_path / "list.txt", th, replace(s, hits=hs), "baseline", 1)
        hits = {(m, lst): table for m in ("baseline", "negtr-o-0.5k", "negtr-io-0.5k") for lst in ("train", "test")}
        ppl = {m: 1.0 for m, _ in hits}
        t = tm.table3(hits, ppl, {}, {"0.5k": 3}, {"1k": "x", "2.5k": "x"}, "avg", "quick")
        return float(t.iloc[0].io_train), float(t.iloc[0].o_train)

    assert io_rates(ncfg.HitSettings()) == (0.0, 1.0)
    assert io_rates(ncfg.HitSettings(lm_check=False)) == (1.0, 1.0)
