# The GAN comparison (paper §4.3 eq. 6, Appendix E) at one generator lr: CNN discriminator, 3:1 D/G steps.
from negtrain_core import stage
from negtrain_core.comparisons import gan

stage.main(snakemake, gan.run_one, snakemake.input.seq2seq, snakemake.input.train, snakemake.input.valid,
           snakemake.output.ckpt, snakemake.output.row, snakemake.params.settings, snakemake.wildcards.g_lr)
