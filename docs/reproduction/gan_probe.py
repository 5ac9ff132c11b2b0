"""The GAN row of Table 4 under the paper's discriminator and the release's, per generator lr and seed.

For one trained seq2seq, the GAN rule's own training (``negtrain_core.comparisons.gan.train_gan``) runs from it
under each discriminator reading, generator lr (``gan.g_lrs``) and seed, and each run prints one row: validation
PPL, greedy max-ratio and Ent-2 (what the rule's sweep table and its g_lr pick read), and D's accuracy; the first row
is the baseline itself. Readings: ``paper`` (the configuration as it is), ``release`` (the ``gan`` block of
configs/release.yaml: its convolution banks, dropout, gate bias, alignment, no projection, SGD with weight decay)
and ``release, adam`` (the same with Adam, to part the optimiser from the structure). E.g. at quick scale:

  PYTHONPATH=. python docs/reproduction/gan_probe.py --dataset switchboard \\
      --seq2seq results/switchboard/models/seq2seq.pt --vocab results/switchboard/data/vocab.txt \\
      --data results/switchboard/data --overlay quick.yaml --seeds 1 2 --out gan_probe.csv
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from ablation import config_arguments, load_configs, settings_for

from negtrain_core import config as ncfg
from negtrain_core import device
from negtrain_core.comparisons import gan
from negtrain_core.data.tensors import load_pairs
from negtrain_core.data.vocab import Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.interface import fresh_copy

log = logging.getLogger("gan_probe")
COLUMNS = ["reading", "g_lr", "seed", "valid_ppl", "max_ratio", "ent2", "d_acc"]


def readings(release: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, gan overlay) per discriminator reading."""
    block = dict(release.get("gan") or {})
    return [("paper", {}), ("release", block), ("release, adam", {**block, "d_optimizer": "adam"})]


def probe(base_path: str | Path, vocab: Vocab, data: Path, config: dict[str, Any], release: dict[str, Any],
          dataset: str, seeds: list[int]) -> pd.DataFrame:
    """The baseline's row, then one row per reading, seed and generator lr, each GAN trained from the baseline."""
    s = ncfg.settings(config, dataset)
    dev = device.resolve(s.device, s.gpu_jobs_per_device)
    base = checkpoint.load(base_path, vocab, dev).model
    train = load_pairs(data / "train.parquet", vocab, s.data, dev, s.gan.max_train_pairs)
    valid = load_pairs(data / "valid.parquet", vocab, s.data, dev)
    rows = [{"reading": "baseline", **gan.validation_scores(base, valid, vocab, s.gan.max_len)}]
    for label, block in readings(release):
        for seed in seeds:
            cfg = settings_for(config, {"gan": block, "seed": seed}, dataset).gan
            for g_lr in cfg.g_lrs:
                model = fresh_copy(base)
                stats = gan.train_gan(model, train, g_lr, cfg)
                rows.append({"reading": label, "g_lr": g_lr, "seed": seed,
                             **gan.validation_scores(model, valid, vocab, cfg.max_len), "d_acc": stats.d_acc})
                log.info("%s", rows[-1])
    return pd.DataFrame(rows, columns=COLUMNS)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--seq2seq", required=True)
    p.add_argument("--vocab", required=True)
    p.add_argument("--data", required=True, help="the folder with the dataset's train.parquet and valid.parquet")
    config_arguments(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--out", help="also write the table as CSV")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    a = _args(argv)
    config, release = load_configs(a)
    table = probe(a.seq2seq, Vocab.load(a.vocab), Path(a.data), config, release, a.dataset, a.seeds)
    print(table.to_string(index=False))
    if a.out:
        table.to_csv(a.out, index=False)
    return table


if __name__ == "__main__":
    main()
