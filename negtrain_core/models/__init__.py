"""Stage 2, the baselines (rules/baselines.smk): the networks, decoding, checkpoints and baseline training."""
