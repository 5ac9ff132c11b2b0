# Rule fetch_raw: the HTTP storage plugin downloaded raw.url; check it (sha256, archive opens), move it to raw.path.
from negtrain_core import stage
from negtrain_core.data import raw

stage.main(snakemake, raw.fetch, snakemake.input.download, snakemake.output.raw, snakemake.params.source)
