# Rule fetch_raw: the HTTP storage plugin downloaded raw.url; check it (sha256, archive opens), move it to raw.path.
import sys

from negtrain_core.data import raw

with open(snakemake.log[0], "w") as log:
    try:
        info = raw.install(snakemake.input.download, snakemake.output.raw, snakemake.params.source.sha256)
    except raw.RawInputError as err:
        print(err, file=log)
        sys.exit(str(err))
    pinned = "verified" if snakemake.params.source.sha256 else "not pinned in the config"
    print(f"{snakemake.params.source.url} -> {snakemake.output.raw}: {info['bytes']} bytes, {info['members']} archive "
          f"members, sha256 {info['sha256']} ({pinned})", file=log)
