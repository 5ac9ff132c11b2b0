# Hits of one model on one malicious target list (paper §3.2, App. A): o- and io-mode gibbs-enum per target,
# the five hit criteria, results/{dataset}/hits/{model}/{target_list}.parquet and the hit-rate CSV.
import logging

from negtrain_core.models import checkpoint
from negtrain_core import device
from negtrain_core.search.hits import format_rates, load_thresholds, run_hits
from negtrain_core.io import write_csv, write_parquet
from negtrain_core.data.vocab import Vocab

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
settings = snakemake.params.settings
vocab = Vocab.load(snakemake.input.vocab)
dev = device.resolve(settings.device, settings.gpu_jobs_per_device)
seq2seq = checkpoint.load(snakemake.input.seq2seq, vocab, dev).model
lm = checkpoint.load(snakemake.input.lm, vocab, dev).model
hits, rates = run_hits(seq2seq, lm, vocab, snakemake.input.targets, load_thresholds(snakemake.input.thresholds),
                       settings, snakemake.wildcards.model, settings.seed)
write_parquet(hits, snakemake.output.hits)
write_csv(rates, snakemake.output.rates)
print(f"hits {snakemake.wildcards.dataset}/{snakemake.wildcards.model}/{snakemake.wildcards.target_list}: "
      f"{format_rates(rates)}")
