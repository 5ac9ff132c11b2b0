"""Table 3's baseline hit rates under each of the release's search and hit-scoring readings, one at a time.

For one trained seq2seq + LM, its thresholds.json and one target list, the hits rule's own code
(``negtrain_core.search.hits``) runs under the configuration (config.yaml and any overlays), then with each key of
the release overlay's ``search`` and ``hits`` blocks (configs/release.yaml) set alone, then with all of them. Each
reading prints one row: the baseline's o- and io-mode sample-avg and sample-min hit rates (Table 3's baseline
columns) and the targets counted. A search is run once per distinct search setting: the hit-scoring keys re-test
the default row's triggers. Run from the repository root, e.g. on the Switchboard baseline's test list:

  PYTHONPATH=. python docs/reproduction/ablation.py --dataset switchboard \\
      --seq2seq results/switchboard/models/seq2seq.pt --lm results/switchboard/models/lm.pt \\
      --vocab results/switchboard/data/vocab.txt --thresholds results/switchboard/thresholds.json \\
      --targets results/targets/test_0.5k.txt --overlay docs/reproduction/switchboard/overlay.yaml --out ablation.csv
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from negtrain_core import config as ncfg
from negtrain_core import device
from negtrain_core.data.vocab import Vocab
from negtrain_core.models import checkpoint
from negtrain_core.models.interface import LanguageModel, Seq2SeqModel
from negtrain_core.search import hits
from negtrain_core.search.gibbs_enum import SearchResult, Thresholds
from negtrain_core.search.targets import read_targets, target_tensor

log = logging.getLogger("ablation")
ROOT = Path(__file__).resolve().parents[2]
RATES = ("o_sample_avg", "o_sample_min", "io_sample_avg", "io_sample_min")
COLUMNS = ["reading", *RATES, "targets", "skipped"]
BLOCKS = ("search", "hits")   # the release overlay's blocks that need no retraining


def _text(value: Any) -> str:
    """A config value as YAML writes it (``false``, ``io_only``, ``6``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def readings(release: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, overlay) per table row: the configuration as it is, each key of the release overlay's ``search`` and
    ``hits`` blocks alone, and all of them together."""
    blocks = {b: dict(release.get(b) or {}) for b in BLOCKS}
    rows: list[tuple[str, dict[str, Any]]] = [("default", {})]
    rows += [(f"{b}.{k}: {_text(v)}", {b: {k: v}}) for b, keys in blocks.items() for k, v in keys.items()]
    rows.append(("all of the above", blocks))
    return rows


def settings_for(config: dict[str, Any], overlay: dict[str, Any], dataset: str) -> ncfg.Settings:
    """The dataset's settings with ``overlay`` deep-merged into a copy of the (validated) ``config``."""
    return ncfg.settings(ncfg.validate(ncfg.deep_update(copy.deepcopy(config), overlay)), dataset)


def rates_row(label: str, table: pd.DataFrame) -> dict[str, Any]:
    """One printed row of a hits table: its four sample hit rates (``hits.hit_rates``) and the targets counted."""
    r = hits.hit_rates(table).set_index("hit_type")
    return {"reading": label, **{h: float(r.loc[h, "rate"]) for h in RATES},
            "targets": int(r.loc[RATES[0], "targets"]), "skipped": int(r.loc[RATES[0], "skipped"])}


def ablation(seq2seq: Seq2SeqModel, lm: LanguageModel, vocab: Vocab, targets_path: str | Path, th: Thresholds,
             config: dict[str, Any], release: dict[str, Any], dataset: str) -> pd.DataFrame:
    """The baseline's hit rates under each reading (``readings``), as the hits rule computes them."""
    cache: dict[Any, SearchResult] = {}
    rows = []
    for label, overlay in readings(release):
        s = settings_for(config, overlay, dataset)
        targets = read_targets(targets_path, vocab, s.search.oov_policy)
        tgt = target_tensor(targets.ids)
        results = hits.mode_results(seq2seq, lm, tgt, th, hits.searches_for("baseline", s.search), s.seed, cache)
        rows.append(rates_row(label, hits.hits_table(seq2seq, lm, vocab, targets, tgt, results, th, s.hits, s.seed)))
        log.info("%s: %s", label, ", ".join(f"{h} {rows[-1][h]:.1%}" for h in RATES))
    return pd.DataFrame(rows, columns=COLUMNS)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, help="the config's dataset block (hit type, search sizes)")
    for name in ("seq2seq", "lm", "vocab", "thresholds", "targets"):
        p.add_argument(f"--{name}", required=True)
    config_arguments(p)
    p.add_argument("--out", help="also write the table as CSV (rates as fractions)")
    return p.parse_args(argv)


def config_arguments(p: argparse.ArgumentParser) -> None:
    """--config, --overlay and --release, read back by ``load_configs``."""
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--overlay", action="append", default=[], help="config overlays, in order (repeatable)")
    p.add_argument("--release", default=str(ROOT / "configs" / "release.yaml"), help="the release overlay")


def load_configs(a: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The configuration with its overlays (validated), and the release overlay as written; logging set up."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return ncfg.load(a.config, tuple(a.overlay)), yaml.safe_load(Path(a.release).read_text()) or {}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    a = _args(argv)
    config, release = load_configs(a)
    s = ncfg.settings(config, a.dataset)
    vocab, dev = Vocab.load(a.vocab), device.resolve(s.device, s.gpu_jobs_per_device)
    seq2seq = checkpoint.load(a.seq2seq, vocab, dev).model
    lm = checkpoint.load(a.lm, vocab, dev).model
    table = ablation(seq2seq, lm, vocab, a.targets, hits.load_thresholds(a.thresholds), config, release, a.dataset)
    print(table.to_string(index=False, formatters={h: "{:.1%}".format for h in RATES}))
    if a.out:
        table.to_csv(a.out, index=False)
    return table


if __name__ == "__main__":
    main()
