"""Which of the release's differences keeps baseline training at lr 1 with momentum 0.9 from blowing up.

    PYTHONPATH=. python benchmarks/baseline_divergence.py --data results/switchboard/data [--steps 60] [--seed 1]

The first ``--steps`` SGD steps of the paper-size seq2seq (embedding 300, hidden 600, dropout 0.3, batch 32,
lr 1, momentum 0.9, weight decay 1e-5, clipping 5: Switchboard's recipe in the release) on the preprocessed
corpus of ``--data`` (``train.parquet``, ``vocab.txt``), once per variant: ours, each release choice alone
(``model.*`` / ``train.*`` options), all of them together, and ours with the combine layer W_c or the attention
matrix W_a frozen at its initial value (left out of the update). The step is TrainStep's foreach step written out,
so that the gradient norms before clipping can be printed: per variant, the training loss (mean token NLL) at a
few steps, its maximum, the first step above 2 ln V (a blow-up: worse than twice a uniform guess), and the median
pre-clipping gradient norm of the one-hot map, the encoder and the decoder over the first 10 steps, and the RMS
of what enters the vocabulary projection (tanh(W_c [c; h]) in ours, the LSTM output in the release's decoder) at
steps 1 and 10 and its maximum. CPU-sized: about 1.5 s per step on one core. What it shows:
docs/release.md#baseline-training.

Measured (CPU, torch 2.13.0, 2026-12-02; Switchboard from tests/shared_data.yaml's raw corpus, seed 1), mean token
NLL at steps 10 / 20 / 60 (ln V = 9.21) and the first step above 2 ln V:

    ours                    9.48 / 11.9 / 41.7   step 14     all release choices     7.38 / 5.59 / 5.42   none
    init=release            7.39 / 6.89 / 12.4   none        release, init=torch     8.17 / 6.41 / 5.69   none
    clip=per_module         10.1 / 41.3 / 87.3   step 12     attention=release       8.18 / 6.83 / 5.57   none
    decoder_init=zero       9.46 / 20.2 / 110    step 14     ours, W_c frozen        8.11 / 6.65 / 5.69   none
    dropout_sites=decoder   9.50 / 17.4 / 102    step 14     ours, W_a frozen        9.48 / 22.7 / 133    step 14
    shuffle=false           9.18 / 21.8 / 79.9   step 14

At 200 steps: attention=release 5.12, all release choices 4.96, init=release 11.8. Median pre-clipping gradient
norms over the first 10 steps (ours): one-hot map 0.0067, encoder 0.065, decoder 0.39; RMS of the projection's
input (ours) 0.024 at step 1, 0.16 at step 10, 0.65 at most, against 0.025 / 0.065 / 0.16 with attention=release.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import pandas as pd
import torch

from negtrain_core.config import DataSettings, ModelSettings, TrainSettings
from negtrain_core.data.tensors import tensorize
from negtrain_core.data.vocab import Vocab
from negtrain_core.models import steps
from negtrain_core.models.lstm import Seq2Seq
from negtrain_core.models.scoring import model_output
from negtrain_core.models.training import epoch_batches

RELEASE_MODEL = dict(attention="release", decoder_init="zero", dropout_sites="decoder", init="release")
RELEASE_TRAIN = dict(shuffle=False, drop_last_batch=True, clip_scope="per_module")
# name -> (model options, train options, a parameter-name prefix left out of the update: frozen at its init)
VARIANTS: dict[str, tuple[dict, dict] | tuple[dict, dict, str]] = {
    "ours": ({}, {}),
    "init=release": ({"init": "release"}, {}),
    "clip=per_module": ({}, {"clip_scope": "per_module"}),
    "decoder_init=zero": ({"decoder_init": "zero"}, {}),
    "attention=release": ({"attention": "release"}, {}),
    "dropout_sites=decoder": ({"dropout_sites": "decoder"}, {}),
    "shuffle=false": ({}, {"shuffle": False}),
    "release (all)": (RELEASE_MODEL, RELEASE_TRAIN),
    "release, init=torch": ({**RELEASE_MODEL, "init": "torch"}, RELEASE_TRAIN),
    "ours, W_c frozen": ({}, {}, "combine."),
    "ours, W_a frozen": ({}, {}, "attn_q."),
}


def run(variant: tuple, data, vocab_size: int, n_steps: int, seed: int) -> dict:
    """The first ``n_steps`` steps of one variant: losses, pre-clipping gradient norms per module, and the RMS of
    the vocabulary projection's input."""
    m_kw, t_kw, frozen = (*variant, "")[:3]
    torch.manual_seed(seed)
    model = Seq2Seq(ModelSettings(vocab_size=vocab_size, embedding_dim=300, hidden_dim=600, dropout=0.3, **m_kw))
    s = TrainSettings(batch_size=32, lr=1.0, momentum=0.9, **t_kw)
    params = [p for n, p in model.named_parameters() if not (frozen and n.startswith(frozen))]
    kept = {id(p) for p in params}
    index = steps.group_indices(params, [[p for p in g if id(p) in kept] for g in model.clip_modules()])
    bufs, lr = [torch.zeros_like(p) for p in params], torch.tensor(1.0)
    order = epoch_batches(len(data), 32, s, torch.Generator().manual_seed(seed), "cpu")
    losses, norms, feats = [], [], []
    model.out.register_forward_hook(lambda mod, inp, out: feats.append(float(inp[0].detach().pow(2).mean().sqrt())))
    model.train()
    for idx in order[:n_steps]:
        out = model_output(model, data.src[idx], data.tgt[idx])
        loss = -out.token_logp.sum() / out.mask.sum()
        grads = list(torch.autograd.grad(loss, params))
        norms.append([float(torch.linalg.vector_norm(torch.stack([grads[i].norm() for i in g]))) for g in index])
        if s.clip_scope == "per_module":
            steps.clip_groups_(grads, s.clip_norm, index)
        else:
            steps.clip_grad_norm_(grads, s.clip_norm)
        steps.sgd_momentum_(params, grads, bufs, lr, s.momentum, s.weight_decay)
        losses.append(float(loss.detach()))
    return {"losses": losses, "norms": norms, "feats": feats}


def summary(name: str, res: dict, vocab_size: int) -> dict:
    losses, limit = res["losses"], 2 * math.log(vocab_size)
    blown = next((i + 1 for i, x in enumerate(losses) if not x < limit), None)
    med = [statistics.median(n[k] for n in res["norms"][:10]) for k in range(3)]
    row = {"variant": name, **{f"loss@{k}": losses[k - 1] for k in (1, 10, 20, 40, len(losses)) if k <= len(losses)},
           "max_loss": max(losses), "first_blowup": blown,
           "norm_embed": med[0], "norm_encoder": med[1], "norm_decoder": med[2],
           "out_in@1": res["feats"][0], "out_in@10": res["feats"][min(9, len(losses) - 1)],
           "out_in_max": max(res["feats"])}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a preprocessed dataset folder (results/<name>/data)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    vocab = Vocab.load(args.data / "vocab.txt")
    data = tensorize(pd.read_parquet(args.data / "train.parquet"), vocab,
                     DataSettings(name="", reader="", raw={}, split={}, vocab_size=len(vocab) - 5))
    rows = []
    for name in args.variants:
        rows.append(summary(name, run(VARIANTS[name], data, len(vocab), args.steps, args.seed), len(vocab)))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3g", header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3g"))


if __name__ == "__main__":
    main()
