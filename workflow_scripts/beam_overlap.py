# The paper's check that normal behaviour is kept (§4.2): overlap of the beam-search k-best lists of each negatively
# trained model with the baseline's on the test inputs (paper: larger than 90%).
import logging

from negtrain_core.tables import malicious as tables_malicious

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
tables_malicious.beam_overlap(snakemake.input.baseline, list(snakemake.input.negtrained), snakemake.input.test,
                              snakemake.input.vocab, snakemake.params.settings, snakemake.output[0],
                              logging.getLogger("beam_overlap").info)
