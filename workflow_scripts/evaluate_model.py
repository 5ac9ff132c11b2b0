# Greedy test responses of one model and their metrics (paper §4.3, Tables 4 and 9): PPL, max-ratio, Ent-2/3,
# distinct-1/2, BLEU-4.
import logging

from negtrain_core.tables import frequent as tables_frequent

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
tables_frequent.evaluate_model(snakemake.input.ckpt, snakemake.input.test, snakemake.wildcards.model,
                               snakemake.params.settings, snakemake.output.responses, snakemake.output.metrics)
