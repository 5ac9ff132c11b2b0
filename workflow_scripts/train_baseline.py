# Baseline training (paper §4.1): the LSTM LM or the attention seq2seq; the best epoch on validation PPL is kept.
# A killed job resumes from <ckpt>.state after its last finished epoch.
import logging
import sys

import pandas as pd
import torch

from negtrain_core.models.training import train_baseline
from negtrain_core.data.vocab import Vocab

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # progress bar, epoch lines and any traceback: the rule log
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s", force=True)
torch.set_num_threads(snakemake.threads)
s = snakemake.params.settings
train_baseline(
    snakemake.wildcards.kind,
    pd.read_parquet(snakemake.input.train),
    pd.read_parquet(snakemake.input.valid),
    Vocab.load(snakemake.input.vocab),
    s.model,
    s.train,
    snakemake.output.ckpt,
    snakemake.output.curve,
    logging.getLogger("train_baseline").info,
    data_settings=s.data,
)
