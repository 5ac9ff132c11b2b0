# Table 3 (paper §4.2): hit rates on the training and test lists and PPL, before and after negative training, with
# the beam-search k-best overlap beside it; Figure 1 (App. D) and the samples of Tables 1 and 10.
import logging

from negtrain_core.tables import malicious as tables_malicious

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
table = tables_malicious.write_table3(dict(snakemake.input), dict(snakemake.output), snakemake.params.settings,
                                      snakemake.params.not_run, logging.getLogger("table3").info)
print(table.to_string(index=False))
