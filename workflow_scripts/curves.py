# Training curves of one dataset: Algorithm 1's hit rate per epoch, Algorithm 2's test max-ratio and PPL per epoch,
# and the baselines' train/valid PPL per epoch (one 4-panel PNG and the tidy CSV behind it).
import logging

from negtrain_core.tables import curves

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
s = snakemake.params.settings
frame = curves.write_curves(list(snakemake.input.malicious), list(snakemake.input.frequent),
                            list(snakemake.input.baseline), s.data.name, s.scale, snakemake.output.png,
                            snakemake.output.csv)
logging.info("%d curve points in %d series", len(frame), frame["series"].nunique())
