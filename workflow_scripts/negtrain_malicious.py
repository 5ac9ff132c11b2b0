# Negative training against malicious targets (paper §3.2, §4.2, Algorithm 1): the baseline seq2seq, the
# {mode}-hit type, the {size} training list -> results/{dataset}/models/negtr-{mode}-{size}.pt and its curve.
import logging

from negtrain_core.negtrain import malicious

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s", force=True)
curve = malicious.run(dict(snakemake.input), snakemake.output.ckpt, snakemake.output.curve, snakemake.params.settings,
                      snakemake.wildcards.mode, logging.getLogger("negtrain_malicious").info)
print(f"negtr-{snakemake.wildcards.mode}-{snakemake.wildcards.size} ({snakemake.wildcards.dataset}): hit rate per "
      f"epoch {malicious.epoch_rates(curve)['hit_rate'].round(3).tolist()}")
