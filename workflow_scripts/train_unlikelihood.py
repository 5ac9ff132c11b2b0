# Vocabulary unlikelihood training (Welleck et al. 2019; Li et al. 2020 vocabulary variant), a Table 4 comparison.
import logging

from negtrain_core.comparisons import unlikelihood

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
unlikelihood.run(snakemake.input.seq2seq, snakemake.input.train, snakemake.params.settings, snakemake.output.ckpt,
                 snakemake.output.curve)
