# Greedy test responses of one model and their metrics (paper §4.3, Tables 4 and 9): PPL, max-ratio, Ent-2/3,
# distinct-1/2, BLEU-4.
from negtrain_core import stage
from negtrain_core.evaluate import responses

stage.main(snakemake, responses.evaluate_model, snakemake.input.ckpt, snakemake.input.test,
           snakemake.output.responses, snakemake.output.metrics, snakemake.params.settings, snakemake.wildcards.model)
