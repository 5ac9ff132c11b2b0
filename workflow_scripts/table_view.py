# An HTML view of one table CSV for the Snakemake report (the report offers CSVs only as downloads).
import logging

from negtrain_core.tables import report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
report.write_table_view(snakemake.input.csv, snakemake.wildcards.table, snakemake.output.html)
