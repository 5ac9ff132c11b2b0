"""How much of Switchboard the release's target cut touches: the targets that lose their ``</s>`` under
``preprocess.target_cut: release`` and the scored positions it removes.

  PYTHONPATH=. python docs/reproduction/switchboard/target_cut_share.py results/switchboard/data

The paper's cut (``paper``, the default) keeps ``<s>`` + at most 19 words + ``</s>``; the release's (myutil.py
L56-60) cuts ``<s>`` + words + ``</s>`` to 20 ids including ``<s>``, so a response of 19 words or more keeps 19 words
and no ``</s>``. This encodes each split's targets under both cuts (``load_pairs`` with config.yaml's Switchboard
settings, as training does) and prints how many keep a ``</s>`` and how many positions are scored (teacher-forced
outputs, ``</s>`` included).
"""

import dataclasses
import sys
from pathlib import Path

from negtrain_core import config
from negtrain_core.data.tensors import load_pairs
from negtrain_core.data.vocab import EOS_ID, PAD_ID, Vocab


ROOT = Path(__file__).resolve().parents[3]


def main(data: Path) -> None:
    vocab = Vocab.load(data / "vocab.txt")
    switchboard = config.settings(config.load(ROOT / "config.yaml"), "switchboard").data
    for split in ("train", "valid", "test"):
        counts = {}
        for cut in ("paper", "release"):
            settings = dataclasses.replace(switchboard, target_cut=cut)
            tgt = load_pairs(data / f"{split}.parquet", vocab, settings, "cpu").tgt
            counts[cut] = ((tgt == EOS_ID).any(1).sum().item(), (tgt[:, 1:] != PAD_ID).sum().item())
        n, ended = len(tgt), counts["release"][0]
        paper, release = counts["paper"][1], counts["release"][1]
        print(f"{split}: {n:,} targets; {n - ended:,} ({(n - ended) / n:.1%}) lose </s> under the release's cut; "
              f"scored positions {paper:,} (paper) against {release:,} (release), {1 - release / paper:.1%} fewer")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
