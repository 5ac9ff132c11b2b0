"""CPU probe: does file-order batching (train.shuffle false, the release's) hurt the seq2seq's validation PPL?

  PYTHONPATH=. python docs/reproduction/switchboard/run15/file_order_probe.py DATA_DIR

DATA_DIR: a Switchboard run's results/switchboard/data (train.parquet, valid.parquet, vocab.txt). A small LSTM
seq2seq (embedding 64, hidden 128, dropout 0.3) on the first 30,000 training pairs (file order), 4 epochs of plain
SGD at lr 1 (no decay), the same seed, shuffled mini-batches against file order; writes file_order_probe.csv.
"""

import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from negtrain_core.config import ModelSettings, TrainSettings
from negtrain_core.data.vocab import Vocab
from negtrain_core.models.training import train_baseline

torch.set_num_threads(2)
D = sys.argv[1]
train = pd.read_parquet(f"{D}/train.parquet").iloc[:30000]
valid = pd.read_parquet(f"{D}/valid.parquet")
vocab = Vocab.load(f"{D}/vocab.txt")
m = ModelSettings(vocab_size=len(vocab), embedding_dim=64, hidden_dim=128, dropout=0.3)
curves = []
for shuffle in (True, False):
    s = TrainSettings(epochs=4, batch_size=32, lr=1.0, momentum=0.0, shuffle=shuffle, decay_start_epoch=100,
                      device="cpu", seed=1)
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        c = train_baseline("seq2seq", train, valid, vocab, m, s, Path(tmp) / "m.pt", Path(tmp) / "c.csv", print,
                           progress=quiet)
    curves.append(c.assign(shuffle=shuffle))
out = pd.concat(curves)[["shuffle", "epoch", "train_ppl", "valid_ppl", "seconds"]]
print(out.to_string(index=False))
out.to_csv(Path(__file__).with_suffix(".csv"), index=False)
