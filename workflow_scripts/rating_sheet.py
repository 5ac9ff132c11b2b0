# Table 6 support: a blind, shuffled A/B sheet (CSV and HTML form) of test inputs with the baseline's and the
# neg-train model's greedy responses, sides drawn with the seed, and the hidden key mapping items to sides.
from negtrain_core import stage
from negtrain_core.tables import rating

stage.main(snakemake, rating.write_sheet, snakemake.input.baseline, snakemake.input.negtrain, snakemake.output.csv,
           snakemake.output.html, snakemake.output.key, snakemake.params.settings)
