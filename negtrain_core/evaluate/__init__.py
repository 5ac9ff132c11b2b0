"""Evaluation, beside stage 3: the baselines' test scores (Table 8 and the hit thresholds, rule evaluate_baselines in
rules/baselines.smk), a model's greedy test responses with their metrics (rules/evaluate.smk), and the metrics
themselves (max-ratio, Ent-n, distinct-n, BLEU). Teacher-forced scoring and perplexity live in ``models.scoring``."""
