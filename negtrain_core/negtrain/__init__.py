"""Stage 4, negative training (rules/negtrain.smk): Algorithm 1 (malicious targets) and Algorithm 2 (frequent
responses)."""
