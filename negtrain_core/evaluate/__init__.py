"""Stage 5, evaluation (rules/evaluate.smk): teacher-forced scoring, perplexity, Table 8, thresholds and the
diversity metrics."""
