# Preprocessing (paper App. B): raw corpus -> (context, response) pairs in Parquet, vocabulary, stats, reader notes.
from negtrain_core import stage
from negtrain_core.data import preprocess

o, s = snakemake.output, snakemake.params.settings
stage.main(snakemake, preprocess.run, o.train, o.valid, o.test, o.vocab, o.stats, o.notes, s.data, s.scale)
