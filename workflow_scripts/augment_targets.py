# Augmented malicious training lists (paper §4.2, Table 2): each training target followed by 1 (the 1k list) or
# 4 (the 2.5k list) beam-search paraphrases, none equal to a training or test target; or the given lists.
import logging

from negtrain_core.search import paraphrase
from negtrain_core.negtrain.malicious import ListError
from negtrain_core.stage import one_line_errors

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
with one_line_errors(ListError):           # e.g. a given list sharing targets with the test list
    sizes = paraphrase.build_lists(snakemake.input.train, snakemake.input.test, snakemake.input.get("ckpt") or None,
                                   [snakemake.output.aug1, snakemake.output.aug4], snakemake.config,
                                   logging.getLogger("augment_targets").info)
logging.info("augmented lists: %s targets", sizes)
