# Augmented malicious training lists (paper §4.2, Table 2): each training target followed by 1 (the 1k list) or
# 4 (the 2.5k list) beam-search paraphrases, none equal to a training or test target; or the given lists.
from negtrain_core import stage
from negtrain_core.search import paraphrase

stage.main(snakemake, paraphrase.build_lists, snakemake.input.train, snakemake.input.test,
           snakemake.input.get("ckpt") or None, [snakemake.output.aug1, snakemake.output.aug4],
           snakemake.params.settings)
