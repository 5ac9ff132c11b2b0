# An HTML view of one table CSV for the Snakemake report (the report offers CSVs only as downloads), in the paper's
# form, with the plots that belong to the table.
from negtrain_core import stage
from negtrain_core.tables import report

stage.main(snakemake, report.write_table_view, snakemake.input.csv, list(snakemake.input.figures),
           snakemake.output.html, snakemake.wildcards.table, snakemake.wildcards.dataset)
