# Vocabulary unlikelihood training (Welleck et al. 2019; Li et al. 2020 vocabulary variant), a Table 4 comparison.
from negtrain_core import stage
from negtrain_core.comparisons import unlikelihood

stage.main(snakemake, unlikelihood.run, snakemake.input.seq2seq, snakemake.input.train, snakemake.output.ckpt,
           snakemake.output.curve, snakemake.params.settings)
