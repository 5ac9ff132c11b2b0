"""Response metrics of the frequent-response experiments (paper §3.3, §4.3, Table 4, Appendix F Table 9).

Pure functions on token lists (a response is a ``list[str]`` of words, without ``</s>``):

- ``max_ratio``: share of the most frequent exact response (paper §3.3).
- ``entropy`` (Ent-n, paper eq. 5, Zhang et al. 2018): natural-log entropy of the n-gram distribution pooled over
  all responses. With ``count_eos`` (config ``metrics.entropy_count_eos``, the release's way) each response gets a
  trailing ``</s>`` before its n-grams are taken, so ``i know </s>`` is a bigram; no ``<s>`` is added.
- ``distinct`` (distinct-n, Li et al. 2016): distinct n-grams / all n-grams, pooled, without ``</s>``.
- ``bleu4``: sacrebleu corpus BLEU-4 (one reference per response) with ``tokenize`` and ``smooth_method`` from config
  ``metrics.bleu``; ``tokenize: none`` because the text is already in the paper's tokenisation. Returned on a 0-1
  scale (sacrebleu's score / 100), the scale of the paper's Table 9 (e.g. 0.476).
- ``bleu4_sentence_avg``: the mean over responses of sentence-level BLEU-4 against the one reference, ``</s>``
  appended to hypothesis and reference, computed as NLTK 3.2.5's unsmoothed ``sentence_bleu``
  (``nltk_sentence_bleu``, pure Python: nltk is not needed): the n-gram orders from the first one with no match on
  are dropped while the others keep their 0.25 weight, so ``a b </s>`` against ``b a </s>`` scores 1.0. The
  authors' release averages that function over the test set (docs/release.md#metrics), the paper's definition of
  Table 9's BLEU-4 on our reading.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

import sacrebleu

from negtrain_core.config import MetricSettings
from negtrain_core.data.vocab import EOS

Response = Sequence[str]


def max_ratio(responses: Sequence[Response]) -> float:
    """Share of the most frequent exact response; 0.0 for no responses."""
    if not responses:
        return 0.0
    counts = Counter(" ".join(r) for r in responses)
    return max(counts.values()) / len(responses)


def most_frequent(responses: Sequence[Response]) -> tuple[str, float]:
    """The most frequent exact response (ties: the one seen first) and its share."""
    if not responses:
        return "", 0.0
    text, count = Counter(" ".join(r) for r in responses).most_common(1)[0]
    return text, count / len(responses)


def ngrams(tokens: Response, n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of ``tokens`` (none when shorter than n)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_counts(responses: Sequence[Response], n: int, count_eos: bool = True) -> Counter:
    """Pooled n-gram counts over all responses; ``count_eos`` appends ``</s>`` to each response first."""
    counts: Counter = Counter()
    for r in responses:
        counts.update(ngrams([*r, EOS] if count_eos else list(r), n))
    return counts


def entropy(responses: Sequence[Response], n: int, count_eos: bool = True) -> float:
    """Ent-n = -sum_g r(g) ln r(g) over the pooled n-gram distribution (paper eq. 5); 0.0 when empty."""
    counts = ngram_counts(responses, n, count_eos)
    total = sum(counts.values())
    return max(0.0, -sum(c / total * math.log(c / total) for c in counts.values())) if total else 0.0  # no -0.0


def distinct(responses: Sequence[Response], n: int) -> float:
    """distinct-n: number of distinct n-grams / number of n-grams, pooled, ``</s>`` not counted; 0.0 when empty."""
    counts = ngram_counts(responses, n, count_eos=False)
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def bleu4(hypotheses: Sequence[Response], references: Sequence[Response], tokenize: str = "none",
          smooth_method: str = "exp") -> float:
    """sacrebleu corpus BLEU-4 of ``hypotheses`` against one reference each, on a 0-1 scale (score / 100)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"bleu4: {len(hypotheses)} hypotheses but {len(references)} references")
    hyp = [" ".join(h) for h in hypotheses]
    ref = [" ".join(r) for r in references]
    return sacrebleu.corpus_bleu(hyp, [ref], tokenize=tokenize, smooth_method=smooth_method).score / 100.0


def nltk_modified_precision(references: Sequence[Response], hypothesis: Response, n: int) -> tuple[int, int]:
    """NLTK 3.2.5 ``modified_precision`` as its unnormalised ``Fraction(numerator, denominator, _normalize=False)``:
    hypothesis n-gram counts clipped by their largest count in any reference, over max(1, hypothesis n-grams)."""
    counts = Counter(ngrams(hypothesis, n))
    max_counts: Counter = Counter()
    for reference in references:
        reference_counts = Counter(ngrams(reference, n))
        for gram in counts:
            max_counts[gram] = max(max_counts[gram], reference_counts[gram])
    numerator = sum(min(count, max_counts[gram]) for gram, count in counts.items())
    return numerator, max(1, sum(counts.values()))


def nltk_brevity_penalty(references: Sequence[Response], hyp_len: int) -> float:
    """NLTK 3.2.5 brevity penalty: against the closest reference length (ties: the shorter reference), 1 for a
    longer hypothesis, 0 for an empty one, else exp(1 - r / c)."""
    ref_len = min((len(r) for r in references), key=lambda r: (abs(r - hyp_len), r))
    if hyp_len > ref_len:
        return 1.0
    return 0.0 if hyp_len == 0 else math.exp(1 - ref_len / hyp_len)


def nltk_sentence_bleu(references: Sequence[Response], hypothesis: Response,
                       weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> float:
    """NLTK 3.2.5 ``sentence_bleu(references, hypothesis, weights)`` without smoothing, tokens taken as given.

    0.0 when no unigram matches (NLTK returns int 0). Otherwise the precisions are cut at the first order with no
    match (NLTK's ``SmoothingFunction.method0`` breaks there) and ``zip`` with ``weights`` keeps the first weights, so
    the dropped orders count as precision 1: bp * exp(fsum(w_n * ln p_n over the kept orders)). The floating-point
    operations are NLTK's, in its order, so the result is the same double.
    """
    if not weights:
        raise ValueError("nltk_sentence_bleu: no weights")
    bp = nltk_brevity_penalty(references, len(hypothesis))   # first, as NLTK: no references raises ValueError
    precisions = [nltk_modified_precision(references, hypothesis, n) for n in range(1, len(weights) + 1)]
    if precisions[0][0] == 0:
        return 0.0
    kept = list(itertools.takewhile(lambda p: p[0] != 0, precisions))
    return bp * math.exp(math.fsum(w * math.log(num / den) for w, (num, den) in zip(weights, kept)))


def bleu4_sentence_avg(hypotheses: Sequence[Response], references: Sequence[Response]) -> float:
    """Mean of ``nltk_sentence_bleu([reference + </s>], hypothesis + </s>)`` over the pairs (one reference each,
    words without ``</s>``, which is appended here as the release keeps it); 0.0 for no pairs."""
    if len(hypotheses) != len(references):
        raise ValueError(f"bleu4_sentence_avg: {len(hypotheses)} hypotheses but {len(references)} references")
    scores = [nltk_sentence_bleu([[*r, EOS]], [*h, EOS]) for h, r in zip(hypotheses, references)]
    return math.fsum(scores) / len(scores) if scores else 0.0


def response_metrics(responses: Sequence[Response], references: Sequence[Response] | None,
                     settings: MetricSettings) -> dict[str, float | int | str]:
    """The diversity metrics of Table 4 (and BLEU-4 of Table 9 when ``references`` are given)."""
    eos = settings.entropy_count_eos
    top, top_share = most_frequent(responses)
    out: dict[str, float | int | str] = {
        "n": len(responses), "max_ratio": max_ratio(responses),
        "ent2": entropy(responses, 2, eos), "ent3": entropy(responses, 3, eos),
        "distinct1": distinct(responses, 1), "distinct2": distinct(responses, 2),
        "mean_len": sum(len(r) for r in responses) / len(responses) if responses else 0.0,
        "top_response": top,
    }
    if references is not None:
        out["bleu4"] = bleu4(responses, references, settings.bleu_tokenize, settings.bleu_smooth_method)
    return out
