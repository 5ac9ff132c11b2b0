"""Stage 5, the paper's tables, figure and report (rules/tables.smk, rules/report.smk)."""
