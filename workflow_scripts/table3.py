# Table 3 (paper §4.2): hit rates on the training and test lists and PPL, before and after negative training, with
# the beam-search k-best overlap beside it; Figure 1 (App. D) and the samples of Tables 1 and 10.
from negtrain_core import stage
from negtrain_core.tables import malicious as tables_malicious

i, o = snakemake.input, snakemake.output
stage.main(snakemake, tables_malicious.write_table3, list(i.hits), list(i.metrics), list(i.lists), i.overlap,
           i.seq2seq, i.negtr, i.test, i.vocab, o.table, o.figure, o.samples, snakemake.params.settings,
           snakemake.params.not_run)
