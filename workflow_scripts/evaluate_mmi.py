# MMI-antiLM decoding (Li et al. 2016; paper §4.3, Table 4 +MMI): (lambda, gamma) swept on validation, test decoded.
from negtrain_core import stage
from negtrain_core.comparisons import mmi

stage.main(snakemake, mmi.run, snakemake.input.seq2seq, snakemake.input.lm, snakemake.input.valid,
           snakemake.input.test, snakemake.output.responses, snakemake.output.metrics, snakemake.output.sweep,
           snakemake.params.settings)
