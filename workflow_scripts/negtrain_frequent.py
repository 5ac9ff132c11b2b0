# Negative training for the frequent response problem (paper §3.3, §4.3, Algorithm 2) at one or several r_thres
# (frequent.runs_per_job of a dataset's r_thres interleaved in this one job).
import logging

from negtrain_core.negtrain import frequent
from negtrain_core.stage import one_line_errors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
with one_line_errors(frequent.FrequentAbort):   # test PPL exploded (frequent.ppl_abort)
    frequent.run(snakemake.input.seq2seq, snakemake.input.train, snakemake.input.test, snakemake.params.r_thres,
                 snakemake.params.settings, snakemake.output.ckpt, snakemake.output.curve)
