# Hits of one model on one malicious target list (paper §3.2, App. A): o- and io-mode gibbs-enum per target,
# the five hit criteria, results/{dataset}/hits/{model}/{target_list}.parquet and the hit-rate CSV.
from negtrain_core import stage
from negtrain_core.search import hits

s = snakemake.params.settings
configured = {"train": s.targets.train, "test": s.targets.test}[snakemake.wildcards.target_list]  # named in messages
stage.main(snakemake, hits.run, snakemake.input.seq2seq, snakemake.input.lm, snakemake.input.vocab,
           snakemake.input.targets, snakemake.input.thresholds, snakemake.output.hits, snakemake.output.rates,
           s, snakemake.wildcards.model, named=configured)
