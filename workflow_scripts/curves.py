# Training curves of one dataset: Algorithm 1's hit rate per epoch, Algorithm 2's test max-ratio and PPL per epoch,
# and the baselines' train/valid PPL per epoch (one 4-panel PNG and the tidy CSV behind it).
from negtrain_core import stage
from negtrain_core.tables import curves

s = snakemake.params.settings
stage.main(snakemake, curves.write_curves, list(snakemake.input.malicious), list(snakemake.input.frequent),
           list(snakemake.input.baseline), snakemake.output.png, snakemake.output.csv, s.data.name, s.scale)
