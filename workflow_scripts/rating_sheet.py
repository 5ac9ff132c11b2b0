# Table 6 support: a blind, shuffled A/B sheet (CSV and HTML form) of test inputs with the baseline's and the
# neg-train model's greedy responses, sides drawn with the seed, and the hidden key mapping items to sides.
import logging

from negtrain_core.tables import rating

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
s, p = snakemake.params.settings, snakemake.params
sheet = rating.write_sheet(snakemake.input.baseline, snakemake.input.negtrain, p.n_items, p.raters, s.seed,
                           ("baseline", p.negtrain_model), f"Which response is better? ({s.data.name})",
                           snakemake.output.csv, snakemake.output.html, snakemake.output.key)
logging.info("%d items for %d raters; neg-train model %s (smallest r_thres)", len(sheet), p.raters,
             p.negtrain_model)
