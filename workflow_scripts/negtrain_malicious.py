# Negative training against malicious targets (paper §3.2, §4.2, Algorithm 1): the baseline seq2seq, the
# {mode}-hit type, the {size} training list -> results/{dataset}/models/negtr-{mode}-{size}.pt and its curve.
from negtrain_core import stage
from negtrain_core.negtrain import malicious

i, s = snakemake.input, snakemake.params.settings
configured = s.targets.train if snakemake.wildcards.size == "0.5k" else None   # the 0.5k list copies it line by line
stage.main(snakemake, malicious.run, i.seq2seq, i.lm, i.train, i.vocab, i.targets, i.thresholds,
           snakemake.output.ckpt, snakemake.output.curve, s, snakemake.wildcards.mode, named=configured,
           test_path=i.get("test") or None)    # none or an empty list unless malicious.eval_every_epoch
