"""CPU probe: the Transformer's learning-rate schedule on a small scale.

  PYTHONPATH=. python docs/reproduction/switchboard/run15/transformer_schedule_probe.py DATA_DIR

DATA_DIR: a Switchboard run's results/switchboard/data. A 2-layer Transformer seq2seq (d_model 128, 4 heads, ff 512,
dropout 0.3 as on Switchboard) on the first 30,000 training pairs, 10 epochs (9,380 steps at batch 32), AdamW at
peak lr 5e-4 after 1,000 warm-up steps: inverse square root (the default) against cosine to 0 at the last step.
Writes transformer_schedule_probe.csv.
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
train = pd.read_parquet(f"{D}/train.parquet").iloc[:30000]
valid = pd.read_parquet(f"{D}/valid.parquet")
vocab = Vocab.load(f"{D}/vocab.txt")
curves = []
for schedule, dropout in (("inverse_sqrt", 0.3), ("cosine", 0.3)):
    m = ModelSettings(vocab_size=len(vocab), dropout=dropout, arch="transformer",
                      transformer=TransformerSettings(layers=2, d_model=128, heads=4, ff=512))
    s = TrainSettings(epochs=10, batch_size=32, schedule=schedule, warmup_steps=1000, device="cpu", seed=1)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        c = train_baseline("seq2seq", train, valid, vocab, m, s, Path(tmp) / "m.pt", Path(tmp) / "c.csv", print,
                           progress=quiet)
    curves.append(c.assign(schedule=schedule, dropout=dropout))
    out = pd.concat(curves)[["schedule", "dropout", "epoch", "lr", "train_ppl", "valid_ppl", "seconds"]]
    out.to_csv(Path(__file__).with_suffix(".csv"), index=False)
print(out.to_string(index=False))
