# The GAN comparison (paper §4.3 eq. 6, Appendix E): the generator lr picked on validation from the per-lr runs.
from negtrain_core import stage
from negtrain_core.comparisons import gan

stage.main(snakemake, gan.run_select, list(snakemake.input.rows), list(snakemake.input.ckpts), snakemake.output.ckpt,
           snakemake.output.sweep, snakemake.params.settings)
