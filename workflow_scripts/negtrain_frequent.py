# Negative training for the frequent response problem (paper §3.3, §4.3, Algorithm 2) at one or several r_thres
# (frequent.runs_per_job of a dataset's r_thres interleaved in this one job).
import logging

from negtrain_core import frequent

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
try:
    frequent.run(snakemake.input.seq2seq, snakemake.input.train, snakemake.input.test, snakemake.params.r_thres,
                 snakemake.params.settings, snakemake.output.ckpt, snakemake.output.curve)
except frequent.FrequentAbort as err:      # test PPL exploded (frequent.ppl_abort): one line, in the log too
    logging.error("%s", err)
    raise SystemExit(f"negtrain: {err}") from None
