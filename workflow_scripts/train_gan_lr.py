# The GAN comparison (paper §4.3 eq. 6, Appendix E) at one generator lr: CNN discriminator, 3:1 D/G steps.
import logging

from negtrain_core.comparisons import gan
from negtrain_core.stage import one_line_errors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
with one_line_errors(gan.GanLrError):      # an lr that gan.g_lrs does not list
    gan.run_one(snakemake.input.seq2seq, snakemake.input.train, snakemake.input.valid, float(snakemake.wildcards.g_lr),
                snakemake.params.settings, snakemake.output.ckpt, snakemake.output.row)
