# Negative training for the frequent response problem (paper §3.3, §4.3, Algorithm 2) at one or several r_thres
# (frequent.runs_per_job of a dataset's r_thres interleaved in this one job).
from negtrain_core import stage
from negtrain_core.negtrain import frequent

stage.main(snakemake, frequent.run, snakemake.input.seq2seq, snakemake.input.train, snakemake.input.test,
           list(snakemake.output.ckpt), list(snakemake.output.curve), snakemake.params.settings,
           snakemake.params.r_thres)
