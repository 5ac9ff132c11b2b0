# Paraphrase model (paper §4.2): an attention seq2seq of the dialogue models' structure trained on the
# paraphrase.corpora pairs (both directions) with the baselines' training function and the paraphrase block's recipe.
from negtrain_core import stage
from negtrain_core.search import paraphrase

stage.main(snakemake, paraphrase.train_paraphraser, snakemake.output.ckpt, snakemake.output.curve,
           snakemake.params.settings)
