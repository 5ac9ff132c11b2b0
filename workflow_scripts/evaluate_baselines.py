# Table 8 (paper App. C): test PPL and NLL of the LM and the seq2seq, and the hit thresholds (mean per-word
# log-likelihood of the test references) that the search stage reads.
from negtrain_core import stage
from negtrain_core.evaluate.baselines import evaluate_baselines

stage.main(snakemake, evaluate_baselines, snakemake.input.test, snakemake.input.vocab, snakemake.input.seq2seq,
           snakemake.input.lm, snakemake.output.table8, snakemake.output.thresholds, snakemake.params.settings)
