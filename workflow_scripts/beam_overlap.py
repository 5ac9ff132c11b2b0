# The paper's check that normal behaviour is kept (§4.2): overlap of the beam-search k-best lists of each negatively
# trained model with the baseline's on the test inputs (paper: larger than 90%).
from negtrain_core import stage
from negtrain_core.tables import malicious as tables_malicious

stage.main(snakemake, tables_malicious.beam_overlap, snakemake.input.baseline, list(snakemake.input.negtrained),
           snakemake.input.test, snakemake.input.vocab, snakemake.output[0], snakemake.params.settings)
