"""Response metrics (negtrain_core.evaluate.metrics): every value below is computed by hand."""

import json
import math
from pathlib import Path

import pytest
import sacrebleu

from negtrain_core.evaluate import metrics as M


def _r(*texts: str) -> list[list[str]]:
    return [t.split() for t in texts]


def test_max_ratio_is_the_share_of_the_most_frequent_exact_response():
    assert M.max_ratio(_r("i do n't know", "i do n't know", "yeah", "i do n't")) == 0.5
    assert M.max_ratio([]) == 0.0
    assert M.most_frequent(_r("yeah", "ok", "ok")) == ("ok", pytest.approx(2 / 3))


def test_entropy_counts_eos_as_the_release_does():
    responses = _r("a", "a", "b")
    # bigrams with </s>: (a,</s>) x2, (b,</s>) x1
    expected = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert M.entropy(responses, 2, count_eos=True) == pytest.approx(expected)
    assert M.entropy(responses, 2, count_eos=False) == 0.0          # one-word responses have no bigram
    # trigrams of "i do know </s>": (i,do,know), (do,know,</s>) -> ln 2
    assert M.entropy(_r("i do know"), 3, count_eos=True) == pytest.approx(math.log(2))
    assert M.entropy(_r("i do know"), 3, count_eos=False) == 0.0
    assert str(M.entropy(_r("a", "a"), 2)) == "0.0"                     # one n-gram type: 0.0, not -0.0


def test_entropy_pools_ngrams_over_responses():
    # unigrams with </s>: a, b, </s>, a, </s>  -> counts a 2, b 1, </s> 2
    p = [2 / 5, 1 / 5, 2 / 5]
    assert M.entropy(_r("a b", "a"), 1) == pytest.approx(-sum(x * math.log(x) for x in p))


def test_distinct_n_excludes_eos():
    assert M.distinct(_r("a a b"), 1) == pytest.approx(2 / 3)
    assert M.distinct(_r("a a b", "a b"), 2) == pytest.approx(2 / 3)   # (a,a) (a,b) (a,b)
    assert M.distinct([], 2) == 0.0


def test_bleu4_hand_computed_and_equal_to_sacrebleu_over_100():
    hyp, ref = _r("a b c d e"), _r("a b c d f")
    # precisions 4/5, 3/4, 2/3, 1/2; brevity penalty 1
    assert M.bleu4(hyp, ref) == pytest.approx((4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25)
    hyps, refs = _r("i do n't know", "yeah i think so", "ok"), _r("i know", "yeah i think that 's right", "ok then")
    direct = sacrebleu.corpus_bleu([" ".join(h) for h in hyps], [[" ".join(r) for r in refs]],
                                   tokenize="none", smooth_method="exp").score
    assert M.bleu4(hyps, refs) == pytest.approx(direct / 100)
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        M.bleu4(_r("a", "b"), _r("a"))


NLTK325 = json.loads((Path(__file__).parent / "fixtures" / "bleu" / "nltk325_sentence_bleu.json").read_text())


@pytest.mark.parametrize("case", NLTK325["pairs"], ids=[c["name"] for c in NLTK325["pairs"]])
def test_nltk_sentence_bleu_equals_nltk_3_2_5(case):
    got = M.nltk_sentence_bleu(case["references"], case["hypothesis"], tuple(case["weights"]))
    assert got == pytest.approx(case["bleu"], abs=1e-12, rel=0)


def test_bleu4_sentence_avg_equals_nltk_3_2_5_on_a_dialogue_batch():
    batch = NLTK325["batch"]
    for h, r, score in zip(batch["hypotheses"], batch["references"], batch["scores"], strict=True):
        assert M.nltk_sentence_bleu([[*r, "</s>"]], [*h, "</s>"]) == pytest.approx(score, abs=1e-12, rel=0)
    assert M.bleu4_sentence_avg(batch["hypotheses"], batch["references"]) == pytest.approx(batch["mean"], abs=1e-12,
                                                                                            rel=0)


def test_nltk_sentence_bleu_by_hand():
    # orders with no match are dropped but keep their weight: unigrams 3/3 only -> 1.0
    assert M.nltk_sentence_bleu([_r("i know </s>")[0]], _r("know i </s>")[0]) == 1.0
    # 1-3-grams 4/5, 2/4, 1/3, no 4-gram: (4/5 * 2/4 * 1/3) ** 0.25; hypothesis 5 < reference 6: exp(1 - 6/5)
    got = M.nltk_sentence_bleu([_r("i do n't think so </s>")[0]], _r("i do n't know </s>")[0])
    assert got == pytest.approx((4 / 5 * 2 / 4 * 1 / 3) ** 0.25 * math.exp(1 - 6 / 5))
    assert M.nltk_sentence_bleu([["a"]], []) == 0.0 and M.nltk_sentence_bleu([[]], ["a"]) == 0.0
    with pytest.raises(ValueError):
        M.nltk_sentence_bleu([], ["a"])                                 # NLTK: min() of no reference lengths


def test_bleu4_sentence_avg_appends_eos_and_averages():
    # "a" vs "b": only </s> matches: unigrams 1/2, bigrams 0 -> 0.5 ** 0.25; "a" vs "a": 1.0
    assert M.bleu4_sentence_avg(_r("a", "a"), _r("b", "a")) == pytest.approx((0.5 ** 0.25 + 1.0) / 2)
    assert M.bleu4_sentence_avg([], []) == 0.0
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        M.bleu4_sentence_avg(_r("a", "b"), _r("a"))


def test_response_metrics_bundle():
    out = M.response_metrics(_r("a", "a", "b c"), _r("a", "a", "b c"), M.MetricSettings())
    assert out["n"] == 3 and out["max_ratio"] == pytest.approx(2 / 3)
    assert out["mean_len"] == pytest.approx(4 / 3) and out["top_response"] == "a"
    # bigrams with </s>: "a </s>" x2, "b c", "c </s>"; the one trigram "b c </s>"; unigrams a a b c, one bigram "b c"
    assert out["ent2"] == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))) and out["ent3"] == 0.0
    assert (out["distinct1"], out["distinct2"]) == (0.75, 1.0)
    hyps, refs = _r("the cat sat on the mat", "a dog ran"), _r("the cat sat on a mat today", "a dog ran off")
    s = M.MetricSettings()
    bleu = M.response_metrics(hyps, refs, s)["bleu4"]
    assert bleu == M.bleu4(hyps, refs, s.bleu_tokenize, s.bleu_smooth_method) > 0.1
    assert bleu != M.bleu4(refs, hyps, s.bleu_tokenize, s.bleu_smooth_method)       # responses vs references


def test_response_metrics_follow_the_entropy_count_eos_setting():
    responses = _r("a b", "a b", "b c")
    # without </s>: bigrams (a,b) x2, (b,c) x1; no trigram
    out = M.response_metrics(responses, None, M.MetricSettings(entropy_count_eos=False))
    assert out["ent2"] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))) and out["ent3"] == 0.0
    # with </s>: trigrams (a,b,</s>) x2, (b,c,</s>) x1
    out = M.response_metrics(responses, None, M.MetricSettings(entropy_count_eos=True))
    assert out["ent3"] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))


def test_response_metrics_bleu4_follows_the_bleu_settings():
    # 13a splits the final period off "d.", so the response matches its reference exactly
    tokenized = M.MetricSettings(bleu_tokenize="13a", bleu_smooth_method="none")
    assert M.response_metrics(_r("a b c d."), _r("a b c d ."), tokenized)["bleu4"] == pytest.approx(1.0)
    # no 4-gram matches (precisions 3/5, 2/4, 1/3, 0/2): 0 unsmoothed; exp smoothing takes 1/(2 x 2) for 0/2
    hyp, ref = _r("a b c d e"), _r("a b c x y")
    assert M.response_metrics(hyp, ref, M.MetricSettings(bleu_smooth_method="none"))["bleu4"] == 0.0
    smoothed = M.response_metrics(hyp, ref, M.MetricSettings())["bleu4"]
    assert smoothed == pytest.approx((3 / 5 * 2 / 4 * 1 / 3 / 4) ** 0.25)
