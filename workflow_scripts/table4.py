# Tables 4 and 9 of the paper and the greedy samples of Tables 5, 11-13 (frequent response problem).
import logging

from negtrain_core.tables import frequent as tables_frequent

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
tables_frequent.write_tables(snakemake.input.test, snakemake.input.metrics, snakemake.input.responses,
                             snakemake.params.settings, snakemake.output.table4, snakemake.output.table9,
                             snakemake.output.samples)
