# Malicious target lists (paper §4.2): validate the configured lists, refuse any train/test sentence overlap,
# keep the first quick.target_list_size of each at quick scale, write results/targets/{train,test}_0.5k.txt.
import logging

from negtrain_core.negtrain import malicious

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
n_train, n_test = malicious.prepare_lists(
    snakemake.input.train, snakemake.input.test, snakemake.output.train, snakemake.output.test,
    snakemake.params.size,
)
logging.info("malicious lists: %d training targets, %d test targets, no shared sentence", n_train, n_test)
