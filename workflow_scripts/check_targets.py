# The configured malicious target lists checked against one dataset's vocabulary as soon as it exists
# (paper §4.2): UTF-8, no blank line, no target over preprocess.max_target_len - 1 words (</s> counts), at most
# targets.max_oov_share of the targets out of vocabulary.
from negtrain_core import stage
from negtrain_core.search import targets

stage.main(snakemake, targets.check_lists, snakemake.input.vocab, list(snakemake.input.lists), snakemake.output.checked,
           snakemake.params.settings)
