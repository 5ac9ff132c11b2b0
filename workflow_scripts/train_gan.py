# The GAN comparison (paper §4.3 eq. 6, Appendix E): CNN discriminator, 3:1 D/G steps, generator lr from validation.
import logging

from negtrain_core import gan

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
gan.run(snakemake.input.seq2seq, snakemake.input.train, snakemake.input.valid, snakemake.params.settings,
        snakemake.output.ckpt, snakemake.output.sweep)
