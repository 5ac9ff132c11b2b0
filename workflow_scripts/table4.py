# Tables 4 and 9 of the paper and the greedy samples of Tables 5, 11-13 (frequent response problem).
from negtrain_core import stage
from negtrain_core.tables import frequent as tables_frequent

stage.main(snakemake, tables_frequent.write_tables, snakemake.input.test, list(snakemake.input.metrics),
           list(snakemake.input.responses), snakemake.output.table4, snakemake.output.table9,
           snakemake.output.samples, snakemake.params.settings)
