# The GAN comparison (paper §4.3 eq. 6, Appendix E): the generator lr picked on validation from the per-lr runs.
import logging

from negtrain_core.comparisons import gan

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
gan.run_select(snakemake.input.rows, snakemake.input.ckpts, snakemake.params.settings, snakemake.output.ckpt,
               snakemake.output.sweep)
