"""How much of Switchboard the release's target cut touches: the targets that lose their ``</s>`` under
``preprocess.target_cut: release`` and the scored positions it removes.

  PYTHONPATH=. python docs/reproduction/switchboard/target_cut_share.py results/switchboard/data

The paper's cut (``paper``, the default) keeps ``<s>`` + at most 19 words + ``</s>``; the release's (myutil.py
L56-60) cuts ``<s>`` + words + ``</s>`` to 20 ids including ``<s>``, so a response of 19 words or more keeps 19 words
and no ``</s>``. The two differ only on those responses: this prints, per split, how many there are and how many
scored positions (teacher-forced outputs, ``</s>`` included) each cut leaves.
"""

import sys
from pathlib import Path

import pandas as pd

from negtrain_core.config import DataSettings


def main(data: Path) -> None:
    words_max = DataSettings.max_target_len - 1              # outputs are at most max_target_len, </s> among them
    for split in ("train", "valid", "test"):
        words = pd.read_parquet(data / f"{split}.parquet", columns=["target"])["target"].str.split().str.len()
        long = words >= words_max
        paper = (words.clip(upper=words_max) + 1).sum()        # words + </s>
        release = (words + 1).clip(upper=words_max).sum()      # <s> + words + </s> cut to 20 ids: 19 outputs at most
        print(f"{split}: {len(words):,} targets; {long.sum():,} ({long.mean():.1%}) of {words_max} words or more lose "
              f"</s> under the release's cut; scored positions {paper:,} (paper) against {release:,} (release), "
              f"{1 - release / paper:.1%} fewer")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
