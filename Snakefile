# negtrain: He & Glass (ACL 2020), "Negative Training for Neural Dialogue Response Generation", end to end.
#   snakemake --cores 8 results/ubuntu/table3.csv
#   snakemake --cores 2 --config scale=quick -- results/chitchat/table3.csv
#   snakemake --config scale=quick --report report.html    (after a run: every table and plot, with captions)
import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/baselines.smk"
include: "rules/paraphrase.smk"
include: "rules/search.smk"
include: "rules/negtrain.smk"
include: "rules/evaluate.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


check_mps_rules()
check_set_rules()


rule all:
    """Every dataset of run_datasets: Tables 3, 4, 8, 9, Figure 1, curves, paper comparison, rating sheet, HTML views"""
    input:
        expand("results/{dataset}/table{n}.csv", dataset=config["run_datasets"], n=[3, 4, 8, 9]),
        report_targets(config["run_datasets"]),


onstart:
    check_executor()


onsuccess:
    print_summary()
