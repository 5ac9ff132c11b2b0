"""Stage 6, the paper's tables, figure and report (rules/tables.smk, rules/report.smk)."""
