# Preprocessing (paper App. B): raw corpus -> (context, response) pairs in Parquet, vocabulary, stats, reader notes.
import logging

from negtrain_core import preprocess

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
settings = snakemake.params.settings
try:
    preprocess.run(settings.data, dict(snakemake.output.items()), scale=settings.scale)
except ValueError as err:          # malformed records, bad raw files, impossible split: one line, in the log too
    logging.error("%s", err)
    raise SystemExit(f"negtrain: preprocess {settings.data.name}: {err}") from None
