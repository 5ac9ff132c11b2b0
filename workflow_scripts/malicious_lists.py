# Malicious target lists (paper §4.2): validate the configured lists (no target over preprocess.max_target_len - 1
# words), refuse any train/test sentence overlap, keep the first quick.target_list_size of each at quick scale, write
# results/targets/{train,test}_0.5k.txt.
from negtrain_core import stage
from negtrain_core.search import targets

stage.main(snakemake, targets.prepare_lists, snakemake.input.train, snakemake.input.test, snakemake.output.train,
           snakemake.output.test, snakemake.params.settings.targets)
