# Every number of Tables 3, 4, 8 and 9 of one dataset beside the paper's value, as a long CSV and a plot.
from negtrain_core import stage
from negtrain_core.tables import comparison

s = snakemake.params.settings
stage.main(snakemake, comparison.write_comparison, {name: snakemake.input[name] for name in comparison.TABLES},
           snakemake.output.csv, snakemake.output.png, s.data.name, s.scale)
