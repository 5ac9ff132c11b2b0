# Every number of Tables 3, 4, 8 and 9 of one dataset beside the paper's value, as a long CSV and a plot (issue 7).
import logging

from negtrain_core.tables import comparison

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
s = snakemake.params.settings
tables = {name: snakemake.input[name] for name in comparison.TABLES}
frame = comparison.write_comparison(tables, s.data.name, s.scale, snakemake.output.csv, snakemake.output.png)
logging.info("%d cells: %s", len(frame), frame["status"].value_counts().to_dict())
