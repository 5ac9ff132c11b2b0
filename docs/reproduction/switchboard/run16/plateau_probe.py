"""CPU probe: does train.plateau_factor help a Transformer that over-fits?

  PYTHONPATH=. python docs/reproduction/switchboard/run16/plateau_probe.py DATA_DIR

DATA_DIR: a Switchboard run's results/switchboard/data. A small setting chosen to over-fit as the paper-size
Transformer does on the whole corpus (docs/reproduction/switchboard/transformer.md): a 2-layer Transformer seq2seq
(d_model 128, 4 heads, ff 512, dropout 0.1) on the first 8,000 training pairs, 16 epochs at batch 32, AdamW at peak
lr 5e-4 after 500 warm-up steps, inverse square root; validation on the whole validation set. Without the plateau
rule against train.plateau_factor 0.5 (patience 0). Writes plateau_probe.csv.
"""
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from negtrain_core.config import ModelSettings, TrainSettings, TransformerSettings
from negtrain_core.data.vocab import Vocab
from negtrain_core.models.training import train_baseline

torch.set_num_threads(2)
D = sys.argv[1]
train = pd.read_parquet(f"{D}/train.parquet").iloc[:8000]
valid = pd.read_parquet(f"{D}/valid.parquet")
vocab = Vocab.load(f"{D}/vocab.txt")
m = ModelSettings(vocab_size=len(vocab), dropout=0.1, arch="transformer",
                  transformer=TransformerSettings(layers=2, d_model=128, heads=4, ff=512))
curves = []
for factor in (None, 0.5):
    s = TrainSettings(epochs=16, batch_size=32, warmup_steps=500, plateau_factor=factor, device="cpu", seed=1)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        c = train_baseline("seq2seq", train, valid, vocab, m, s, Path(tmp) / "m.pt", Path(tmp) / "c.csv", print,
                           progress=quiet)
    curves.append(c.assign(plateau_factor=factor))
    out = pd.concat(curves)[["plateau_factor", "epoch", "lr", "train_ppl", "valid_ppl", "seconds"]]
    out.to_csv(Path(__file__).with_suffix(".csv"), index=False)
print(out.to_string(index=False))
