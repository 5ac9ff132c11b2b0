# Table 8 (paper App. C): test PPL and NLL of the LM and the seq2seq, and the hit thresholds (mean per-word
# log-likelihood of the test references) that the search stage reads.
import logging

import pandas as pd
import torch

from negtrain_core.device import resolve
from negtrain_core.evaluate.baselines import evaluate_baselines
from negtrain_core.data.vocab import Vocab

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
torch.set_num_threads(snakemake.threads)
s = snakemake.params.settings
evaluate_baselines(
    pd.read_parquet(snakemake.input.test),
    Vocab.load(snakemake.input.vocab),
    {"Seq2seq": snakemake.input.seq2seq, "LM": snakemake.input.lm},
    s.data,
    s.scale,
    resolve(s.device, s.gpu_jobs_per_device),
    snakemake.output.table8,
    snakemake.output.thresholds,
    log=logging.getLogger("evaluate_baselines"),
)
