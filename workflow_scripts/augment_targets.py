# Augmented malicious training lists (paper §4.2, Table 2): each training target followed by 1 (the 1k list) or
# 4 (the 2.5k list) beam-search paraphrases, none equal to a training or test target; or the given lists.
import logging

from negtrain_core import paraphrase
from negtrain_core.malicious import ListError

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
try:
    sizes = paraphrase.build_lists(snakemake.input.train, snakemake.input.test, snakemake.input.get("ckpt") or None,
                                   [snakemake.output.aug1, snakemake.output.aug4], snakemake.config,
                                   logging.getLogger("augment_targets").info)
except ListError as err:                   # e.g. a given list sharing targets with the test list: one line, logged
    logging.error("%s", err)
    raise SystemExit(f"negtrain: {err}") from None
logging.info("augmented lists: %s targets", sizes)
