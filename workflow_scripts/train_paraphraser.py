# Paraphrase model (paper §4.2): an attention seq2seq of the dialogue models' structure trained on the
# paraphrase.corpora pairs (both directions) with the baselines' training function and the paraphrase block's recipe.
import logging

from negtrain_core.search import paraphrase

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
paraphrase.train_paraphraser(snakemake.params.corpora, snakemake.output.ckpt, snakemake.output.curve,
                             snakemake.config, logging.getLogger("train_paraphraser").info)
