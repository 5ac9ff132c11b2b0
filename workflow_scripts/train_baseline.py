# Baseline training (paper §4.1): the LSTM LM or the attention seq2seq; the best epoch on validation PPL is kept.
# A killed job resumes from <ckpt>.state after its last finished epoch.
from negtrain_core import stage
from negtrain_core.models import training

stage.main(snakemake, training.run, snakemake.input.train, snakemake.input.valid, snakemake.input.vocab,
           snakemake.output.ckpt, snakemake.output.curve, snakemake.params.settings, snakemake.wildcards.kind)
