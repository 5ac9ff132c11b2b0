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
- ``perplexity``: exp of the mean negative token log-prob (every target position, ``</s>`` included).
"""

from __future__ import annotations

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


def perplexity(logp_sum: float, n_tokens: int) -> float:
    """exp(-logp_sum / n_tokens): ``logp_sum`` is the summed natural-log prob of ``n_tokens`` target tokens."""
    if n_tokens <= 0:
        raise ValueError("perplexity: no target tokens")
    return math.exp(-logp_sum / n_tokens)


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
