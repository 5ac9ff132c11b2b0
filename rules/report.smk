# What the run shows: the paper comparison, training curves, the Table 6 rating sheet and Table 6, and
# the HTML views of the tables for `snakemake --report report.html` (captions in report/). These rules take
# seconds on one core, so they run where Snakemake runs (localrule), also under the slurm profile.


report: "../report/workflow.rst"


rule paper_comparison:
    """Every number of Tables 3, 4, 8 and 9 beside the paper's, as a CSV and a plot"""
    input:
        table3="results/{dataset}/table3.csv",
        table4="results/{dataset}/table4.csv",
        table8="results/{dataset}/table8.csv",
        table9="results/{dataset}/table9.csv",
    output:
        csv=report("results/{dataset}/paper_comparison.csv", caption="../report/captions/paper_comparison.rst",
                   category="{dataset}", subcategory=nreport.COMPARISON),
        png=report("results/{dataset}/paper_comparison.png", caption="../report/captions/paper_comparison_plot.rst",
                   category="{dataset}", subcategory=nreport.COMPARISON),
    params:
        settings=settings,
        settings_key=settings_key("paper_comparison"),
    log:
        "logs/{dataset}/paper_comparison.log",
    localrule: True
    script:
        "../workflow_scripts/paper_comparison.py"


rule curves:
    """The training curves of the baselines and both algorithms, as one figure and CSV"""
    input:
        malicious=expand("results/{{dataset}}/models/negtr-{mode}-{size}_curve.csv", mode=HIT_MODES,
                         size=MALICIOUS_SIZES),
        frequent=lambda w: expand("results/{dataset}/models/{model}_curve.csv", dataset=w.dataset,
                                  model=frequent_models(w)),
        baseline=expand("results/{{dataset}}/models/{kind}_curve.csv", kind=["seq2seq", "lm"]),
    output:
        png=report("results/{dataset}/curves.png", caption="../report/captions/curves.rst", category="{dataset}",
                   subcategory=nreport.CURVES),
        csv=report("results/{dataset}/curves.csv", caption="../report/captions/curves_csv.rst",
                   category="{dataset}", subcategory=nreport.CURVES),
    params:
        settings=settings,
        settings_key=settings_key("curves"),
    log:
        "logs/{dataset}/curves.log",
    localrule: True
    script:
        "../workflow_scripts/curves.py"


rule rating_sheet:
    """Table 6's blind A/B sheet: the baseline's and a negative-trained model's responses, sides shuffled"""
    input:
        baseline="results/{dataset}/eval/baseline/greedy.parquet",
        negtrain=lambda w: f"results/{w.dataset}/eval/{sheet_negtrain_model(w)}/greedy.parquet",
    output:
        csv=report("results/{dataset}/rating/sheet.csv", caption="../report/captions/rating_sheet_csv.rst",
                   category="{dataset}", subcategory=nreport.HUMAN),
        html=report("results/{dataset}/rating/sheet.html", caption="../report/captions/rating_sheet.rst",
                    category="{dataset}", subcategory=nreport.HUMAN),
        key="results/{dataset}/rating_key.csv",
    params:
        settings=settings,
        settings_key=settings_key("rating_sheet"),
    log:
        "logs/{dataset}/rating_sheet.log",
    localrule: True
    script:
        "../workflow_scripts/rating_sheet.py"


rule table6:
    """Table 6 from the human ratings that human_eval.ratings names"""
    input:
        ratings=ratings_file,
        key="results/{dataset}/rating_key.csv",
    output:
        table=report("results/{dataset}/table6.csv", caption="../report/captions/table6.rst", category="{dataset}",
                     subcategory=nreport.HUMAN),
    params:
        settings=settings,
        settings_key=settings_key("table6"),
    log:
        "logs/{dataset}/table6.log",
    localrule: True
    script:
        "../workflow_scripts/table6.py"


rule table_view:
    """One table as an HTML page beside the paper's, for snakemake --report"""
    input:
        csv="results/{dataset}/{table}.csv",
        figures=lambda w: [f"results/{w.dataset}/{name}" for name in nreport.FIGURES.get(w.table, {})],
    output:
        html=report("results/{dataset}/report/{table}.html", caption="../report/captions/table_view.rst",
                    category="{dataset}", subcategory=lambda w: nreport.STAGES[w.table]),
    wildcard_constraints:
        table="table[3489]|table6|paper_comparison",
    log:
        "logs/{dataset}/table_view_{table}.log",
    localrule: True
    script:
        "../workflow_scripts/table_view.py"
