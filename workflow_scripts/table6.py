# Table 6 (paper §4.3): the filled-in A/B ratings, unblinded with the key -> shares of tie / baseline / neg-train.
import logging

from negtrain_core.tables import rating

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
s = snakemake.params.settings
table = rating.write_table6(snakemake.input.ratings, snakemake.input.key, s.data.name, s.scale,
                            snakemake.output.table)
logging.info("Table 6:\n%s", table.to_string(index=False))
