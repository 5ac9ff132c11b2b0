# Preprocessing (paper App. B): raw corpus -> (context, response) pairs in Parquet, vocabulary, stats, reader notes.
import logging

from negtrain_core.data import preprocess
from negtrain_core.stage import one_line_errors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
settings = snakemake.params.settings
# malformed records, bad raw files, impossible split
with one_line_errors(ValueError, context=f"preprocess {settings.data.name}: "):
    preprocess.run(settings.data, dict(snakemake.output.items()), scale=settings.scale)
