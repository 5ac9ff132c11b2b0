# MMI-antiLM decoding (Li et al. 2016; paper §4.3, Table 4 +MMI): (lambda, gamma) swept on validation, test decoded.
import logging

from negtrain_core.comparisons import mmi

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
mmi.run(snakemake.input.seq2seq, snakemake.input.lm, snakemake.input.valid, snakemake.input.test,
        snakemake.params.settings, snakemake.output.responses, snakemake.output.metrics, snakemake.output.sweep)
