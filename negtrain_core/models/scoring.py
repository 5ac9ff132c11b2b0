"""Teacher-forced scoring: the model output of a seq2seq or an LM, the summed log-likelihood and token count of a
dataset scored in batches, and the perplexity from them.

Perplexity and NLL are per word with ``</s>`` counted (paper §2 footnote 1), pooled over all target tokens. The
float64 sum of a dataset's token log-probs is taken in one of two orders, each kept for the results made with it:
``corpus_logp`` adds up each batch's sum (Algorithm 2's curves, the GAN's sweep, Tables 4 and 9), ``logp_total`` of
``score_dataset`` sums the whole dataset's scores at once (baseline training's validation, Table 8 and the hit
thresholds). The two agree to rounding, not bit for bit.

Shapes: N pairs, S source length, T target length ``<s> y </s> <pad>..``; scores are over ``tgt[:, 1:]`` (T-1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from negtrain_core.data.tensors import PairTensors
from negtrain_core.models.interface import SeqOutput, SequenceModel


def model_output(model: SequenceModel, src: Tensor, tgt: Tensor) -> SeqOutput:
    """Teacher-forced scores of ``tgt[:, 1:]``: the seq2seq reads ``src`` (B, S); the LM reads ``tgt`` (B, T) only."""
    return model.score(src, tgt)


@torch.no_grad()
def batch_outputs(model: nn.Module, src: Tensor, tgt: Tensor, batch_size: int = 256) -> list[SeqOutput]:
    """The scores of src (N, S), tgt (N, T) in batches of ``batch_size`` pairs, in eval mode (the model's mode is
    restored afterwards), on the pairs' device."""
    was_training = model.training
    model.eval()
    outs = [model_output(model, s, t) for s, t in zip(src.split(batch_size), tgt.split(batch_size))]
    model.train(was_training)
    return outs


def score_dataset(model: nn.Module, tensors: PairTensors, batch_size: int = 256,
                  device: torch.device | str = "cpu") -> SeqOutput:
    """Per-pair token log-probs of every reference, scored on ``device`` in eval mode, as one SeqOutput on cpu.

    token_logp, greedy, mask: (N, T-1); row i scores ``tensors.tgt[i, 1:]`` (0 on ``<pad>``).
    """
    outs = batch_outputs(model, *tensors.to(device), batch_size)
    return SeqOutput(*(torch.cat([getattr(o, f) for o in outs]).cpu() for f in SeqOutput._fields))


def logp_total(scores: SeqOutput) -> tuple[float, int]:
    """The float64 sum of ``scores``' token log-probs and their number of real target tokens."""
    return float(scores.token_logp.double().sum()), int(scores.mask.sum())


def corpus_logp(model: nn.Module, src: Tensor, tgt: Tensor, batch_size: int = 256) -> tuple[float, int]:
    """Summed target log-prob and target-token count (``</s>`` included) of src (N, S), tgt (N, T) in eval mode:
    each batch's float64 sum, added up."""
    total, count = 0.0, 0
    for out in batch_outputs(model, src, tgt, batch_size):
        logp, n = logp_total(out)
        total += logp
        count += n
    return total, count


def nll(logp_sum: float, n_tokens: int) -> float:
    """-logp_sum / n_tokens: the per-word NLL (nats) of ``n_tokens`` target tokens of summed log-prob ``logp_sum``."""
    if n_tokens <= 0:
        raise ValueError("perplexity: no target tokens")
    return -logp_sum / n_tokens


def perplexity(logp_sum: float, n_tokens: int) -> float:
    """exp(-logp_sum / n_tokens): ``logp_sum`` is the summed natural-log prob of ``n_tokens`` target tokens."""
    return math.exp(nll(logp_sum, n_tokens))


def corpus_perplexity(model: nn.Module, src: Tensor, tgt: Tensor, batch_size: int = 256) -> float:
    """Teacher-forced perplexity of src (N, S), tgt (N, T) (``perplexity`` of ``corpus_logp``)."""
    return perplexity(*corpus_logp(model, src, tgt, batch_size))
