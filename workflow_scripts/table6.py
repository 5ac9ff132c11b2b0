# Table 6 (paper §4.3): the filled-in A/B ratings, unblinded with the key -> shares of tie / baseline / neg-train.
from negtrain_core import stage
from negtrain_core.tables import rating

s = snakemake.params.settings
stage.main(snakemake, rating.write_table6, snakemake.input.ratings, snakemake.input.key, snakemake.output.table,
           s.data.name, s.scale)
