"""Table 3 (hit rates and PPL before/after negative training), Figure 1 and the samples of Tables 1 and 10.

Table 3 (He & Glass 2020, §4.2): rows Baseline, +neg-tr(0.5k), +neg-tr(1k), +neg-tr(2.5k); for the o- and the
io- hit type of the dataset (sample-avg for Switchboard and chitchat, sample-min for Ubuntu and OpenSubtitles:
``malicious.hit_type``), the hit rate on the training list, on the test list, and the test PPL. The o-columns of a
neg-tr row come from the model negatively trained against o-hits (``negtr-o-{size}``), the io-columns from
``negtr-io-{size}``; the baseline's hit rates come from its own o- and io-searches. Rates are fractions in [0, 1],
counted off the hits tables' criteria, so they follow config ``hits`` (strictness, LM check, train-mode scores,
the baseline's restarts: docs/release.md#hit-criteria).
Beside them: the beam-search k-best overlap with the baseline (§4.2), the scale, the list sizes, and how many
targets the search skipped (out of vocabulary). Rows whose target list could not be built say why.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from negtrain_core import device
from negtrain_core.config import Settings
from negtrain_core.data.tensors import tensorize
from negtrain_core.data.vocab import Vocab
from negtrain_core.models.scoring import score_dataset
from negtrain_core.io import atomic_path, atomic_write_text, write_csv
from negtrain_core.models import checkpoint
from negtrain_core.models.decoding import beam, sample
from negtrain_core.search.hits import hit_rates

log = logging.getLogger(__name__)

HIT_MODES = ("o", "io")
SIZES = ("0.5k", "1k", "2.5k")
PPL_KEY = "ppl"       # metrics.json key of the test perplexity (rule evaluate_model)
COLUMNS = ["training", "model_o", "model_io", "hit_type", "o_train", "o_test", "o_ppl", "io_train", "io_test",
           "io_ppl", "o_beam_overlap", "io_beam_overlap", "list_size", "train_targets", "test_targets",
           "train_skipped", "test_skipped", "scale", "status"]


def hit_column(mode: str, hit_type: str) -> str:
    """The hits-table column of a hit type: mode o|io, hit_type min|avg -> e.g. ``io_sample_avg``."""
    return f"{mode}_sample_{hit_type}"


def hit_rate(hits: pd.DataFrame, mode: str, hit_type: str) -> tuple[float, int, int]:
    """(rate, searched targets, skipped targets) of the ``{mode}_sample_{hit_type}`` hit type (``hits.hit_rates``:
    o-types on the o-mode rows, io-types on the io-mode rows; skipped targets excluded from the rate)."""
    r = hit_rates(hits).set_index("hit_type").loc[hit_column(mode, hit_type)]
    return float(r["rate"]), int(r["targets"]), int(r["skipped"])


def row_label(size: str | None) -> str:
    return "Baseline" if size is None else f"+neg-tr({size})"


def model_name(mode: str, size: str | None) -> str:
    return "baseline" if size is None else f"negtr-{mode}-{size}"


def table3(hits: Mapping[tuple[str, str], pd.DataFrame], ppl: Mapping[str, float], overlap: Mapping[str, float],
           list_sizes: Mapping[str, int], not_run: Mapping[str, str], hit_type: str, scale: str) -> pd.DataFrame:
    """Table 3 in the paper's layout.

    hits: (model, "train"|"test") -> hits table; ppl: model -> test PPL; overlap: model -> mean k-best overlap;
    list_sizes: size -> targets in that negative-training list; not_run: size -> reason (rows without models).
    """
    rows = []
    for size in (None, *SIZES):
        row = {"training": row_label(size), "model_o": model_name("o", size), "model_io": model_name("io", size),
               "hit_type": f"sample-{hit_type}", "scale": scale, "list_size": list_sizes.get(size or "", math.nan),
               "status": not_run.get(size or "", "ok")}
        if size in not_run:
            rows.append(row)
            continue
        if size not in (None, SIZES[0]) and list_sizes.get(size, 0) <= list_sizes.get(SIZES[0], 0):
            row["status"] = f"ok, but no paraphrase was kept: the {size} list is the {SIZES[0]} list"
        for mode in HIT_MODES:
            model = model_name(mode, size)
            for lst in ("train", "test"):
                rate, searched, skipped = hit_rate(hits[(model, lst)], mode, hit_type)
                row.update({f"{mode}_{lst}": rate, f"{lst}_targets": searched, f"{lst}_skipped": skipped})
            row[f"{mode}_ppl"] = ppl[model]
            row[f"{mode}_beam_overlap"] = overlap.get(model, math.nan)
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def read_inputs(hit_paths: list[str], metric_paths: list[str], overlap_path: str | None
                ) -> tuple[dict[tuple[str, str], pd.DataFrame], dict[str, float], dict[str, float]]:
    """Read ``results/{dataset}/hits/{model}/{list}.parquet``, ``eval/{model}/metrics.json`` and the overlap csv."""
    hits = {(Path(p).parent.name, Path(p).stem): pd.read_parquet(p) for p in hit_paths}
    ppl = {Path(p).parent.name: float(json.loads(Path(p).read_text())[PPL_KEY]) for p in metric_paths}
    overlap: dict[str, float] = {}
    if overlap_path:
        df = pd.read_csv(overlap_path)
        overlap = dict(zip(df["model"], df["overlap"].astype(float)))
    return hits, ppl, overlap


# ------------------------------------------------------------------------------------- beam overlap (§4.2)


def kbest_strings(model: nn.Module, src: Tensor, vocab: Vocab, k: int, max_len: int, batch_size: int = 64
                  ) -> list[set[str]]:
    """The beam-search k-best hypotheses (k beams) of each input src (N, S), as sets of token strings."""
    out: list[set[str]] = []
    for start in range(0, len(src), batch_size):
        res = beam(model, src[start:start + batch_size], k=k, n_best=k, max_len=max_len)   # (b, k, L)
        for toks, scores in zip(res.tokens.tolist(), res.scores.tolist()):
            out.append({" ".join(vocab.decode(t)) for t, sc in zip(toks, scores) if sc > -math.inf})
    return out


def overlaps(before: list[set[str]], after: list[set[str]], k: int) -> list[float]:
    """Per input, |A ∩ B| / k: the share of the baseline's k-best list that is also in the other model's."""
    return [len(a & b) / k for a, b in zip(before, after, strict=True)]


def beam_overlap(baseline_path: str | Path, negtrained_paths: list[str], test_path: str | Path,
                 vocab_path: str | Path, out_path: str | Path, settings: Settings) -> pd.DataFrame:
    """Rule beam_overlap: mean k-best overlap (k = ``malicious.beam_overlap_k``) with the baseline on test inputs.

    Rows: model, k, inputs, overlap (mean of |A ∩ B| / k), overlap_min, identical (share of inputs whose k-best
    sets are equal). The paper reports "larger than 90%" for its negatively trained models (§4.2).
    """
    vocab, dev = Vocab.load(vocab_path), device.resolve(settings.device, settings.gpu_jobs_per_device)
    seq2seq = dict(arch=settings.model.arch, kind="seq2seq")          # what checkpoint.load checks
    k = settings.malicious.beam_overlap_k
    src = tensorize(pd.read_parquet(test_path), vocab, settings.data).src.to(dev)
    max_len = settings.data.max_target_len
    ref = kbest_strings(checkpoint.load(baseline_path, vocab, dev, **seq2seq).model, src, vocab, k, max_len)
    rows = []
    for path in negtrained_paths:
        ov = overlaps(ref, kbest_strings(checkpoint.load(path, vocab, dev, **seq2seq).model, src, vocab, k, max_len), k)
        rows.append({"model": Path(path).stem, "k": k, "inputs": len(ov), "overlap": sum(ov) / len(ov),
                     "overlap_min": min(ov), "identical": sum(o == 1.0 for o in ov) / len(ov)})
        log.info("%s: mean %d-best overlap with the baseline %.3f on %d test inputs", rows[-1]["model"], k,
                 rows[-1]["overlap"], len(ov))
    table = pd.DataFrame(rows, columns=["model", "k", "inputs", "overlap", "overlap_min", "identical"])
    write_csv(table, out_path)
    return table


# ------------------------------------------------------------------------------- Figure 1 and the samples

FIGURE_MODE = "io"        # [paper App. D] Figure 1 shows the io-hit model (OpenSubtitles, io-sample-min-hit)
FIGURE_SENTENCES = 4      # [ours] sentences per panel
SAMPLES = 5               # [paper Tables 1 and 10] examples per section


def top_targets(hits: pd.DataFrame, mode: str, n: int) -> list[str]:
    """The ``n`` searched targets of ``mode`` with the highest mean log-prob under their triggers (best first)."""
    rows = hits[(hits["mode"] == mode) & ~hits["skipped"].astype(bool)]
    return rows.sort_values("avg_logp", ascending=False, kind="stable")["target"].head(n).tolist()


def target_nll(hits: pd.DataFrame, mode: str, targets: list[str]) -> list[list[float]]:
    """Per-word NLL (``</s>`` last) of ``targets`` under the triggers the search found (``token_logp`` column)."""
    rows = hits[hits["mode"] == mode].set_index("target")
    return [[-float(v) for v in rows.loc[t, "token_logp"]] for t in targets]


def pick_test_pairs(test: pd.DataFrame, n: int, min_words: int = 3, max_words: int = 8) -> pd.DataFrame:
    """The first ``n`` test pairs whose response has ``min_words``..``max_words`` words (Figure 1's test samples)."""
    words = test["target"].str.split().str.len()
    return test[(words >= min_words) & (words <= max_words)].head(n).reset_index(drop=True)


def pair_nll(model: nn.Module, pairs: pd.DataFrame, vocab: Vocab, settings: Settings) -> list[list[float]]:
    """Per-word NLL of each pair's response (``</s>`` last) under its input; eval mode."""
    dev = next(model.parameters()).device
    scores = score_dataset(model, tensorize(pairs, vocab, settings.data), device=dev)
    return [(-lp[m]).tolist() for lp, m in zip(scores.token_logp, scores.mask)]


def plot_figure1(panels: list[tuple[str, list[str], list[list[float]], list[list[float]]]], path: str | Path) -> None:
    """One bar panel per (title, sentences, NLL before, NLL after): words side by side, ``</s>`` ends a sentence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 3.6 * len(panels)), squeeze=False)
    for ax, (title, sentences, before, after) in zip(axes[:, 0], panels):
        words = [w for s in sentences for w in (*s.split(), "</s>")]
        b, a = [v for r in before for v in r], [v for r in after for v in r]
        x = range(len(words))
        ax.bar([i - 0.2 for i in x], b, width=0.4, label="baseline")
        ax.bar([i + 0.2 for i in x], a, width=0.4, label="after negative training")
        ax.set_xticks(list(x), words, rotation=90, fontsize=8)
        ax.set_ylabel("NLL (nats)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def trigger_section(hits: pd.DataFrame, mode: str, hit_type: str, n: int) -> list[str]:
    """Table 1 layout: trigger inputs and the malicious targets they hit (baseline, test list)."""
    col = hit_column(mode, hit_type)
    hit = hits[(hits["mode"] == mode) & hits[col].astype(bool)].head(n)
    lines = [f"# Table 1 layout: trigger inputs of the baseline, {mode}-sample-{hit_type}-hit, test list "
             f"({len(hits[(hits['mode'] == mode) & hits[col].astype(bool)])} hits)", ""]
    if hit.empty:
        lines += [f"(no target of the test list is {mode}-sample-{hit_type}-hit by the baseline)", ""]
    for r in hit.itertuples():
        lines += [f"Trigger Input: {r.trigger}", f"Malicious Target: {r.target}", ""]
    return lines


def sample_section(test: pd.DataFrame, models: dict[str, nn.Module], vocab: Vocab, settings: Settings,
                   n: int, seed: int) -> list[str]:
    """Table 10 layout: samples of each model for ``n`` consecutive test inputs (one seeded sampler per model)."""
    pairs = test.head(n)
    src = tensorize(pairs, vocab, settings.data).src.to(next(next(iter(models.values())).parameters()).device)
    outs = {name: sample(m, src, settings.data.max_target_len, generator=torch.Generator(src.device).manual_seed(seed))
            for name, m in models.items()}
    lines = [f"# Table 10 layout: consecutive model samples before and after negative training "
             f"(sampling, seed {seed}), the first {len(pairs)} test inputs", ""]
    for i, source in enumerate(pairs["source"]):
        lines.append(f"Input: {source}")
        lines += [f"{name}: {' '.join(vocab.decode(outs[name][i].tolist()))}" for name in models]
        lines.append("")
    return lines


# ------------------------------------------------------------------------------------------------ the stage


def list_sizes(list_paths: list[str]) -> dict[str, int]:
    """``results/targets/train_{size}.txt`` paths -> {size: number of targets}."""
    return {Path(p).stem.split("_", 1)[1]: len(Path(p).read_text().split("\n")) - 1 for p in list_paths}


def write_table3(hit_paths: list[str], metric_paths: list[str], list_paths: list[str], overlap_path: str,
                 seq2seq_path: str | Path, negtr_path: str | Path, test_path: str | Path, vocab_path: str | Path,
                 table_out: str | Path, figure_out: str | Path, samples_out: str | Path, settings: Settings,
                 not_run_reason: str | None) -> pd.DataFrame:
    """Rule table3: table3.csv, figure1.png and samples_malicious.txt of one dataset.

    Inputs: the hits tables, metrics.json files and training lists of Table 3's models, the beam overlap table, the
    baseline and the FIGURE_MODE 0.5k model (``negtr_path``), the test pairs and the vocabulary.
    ``not_run_reason``: why the 1k/2.5k rows have no models (None when they do).
    """
    hits, ppl, overlap = read_inputs(list(hit_paths), list(metric_paths), overlap_path)
    sizes = list_sizes(list(list_paths))
    not_run = {s: not_run_reason or "not run" for s in SIZES if s not in sizes}
    ht = settings.malicious.hit_type
    table = table3(hits, ppl, overlap, sizes, not_run, ht, settings.scale)
    write_csv(table, table_out)
    log.info("table 3:\n%s", table.to_string(index=False))
    vocab, dev = Vocab.load(vocab_path), device.resolve(settings.device, settings.gpu_jobs_per_device)
    seq2seq = dict(arch=settings.model.arch, kind="seq2seq")          # what checkpoint.load checks
    models = {"Baseline": checkpoint.load(seq2seq_path, vocab, dev, **seq2seq).model,
              "Neg-train": checkpoint.load(negtr_path, vocab, dev, **seq2seq).model}
    test = pd.read_parquet(test_path)
    after = model_name(FIGURE_MODE, "0.5k")
    targets = top_targets(hits[("baseline", "test")], FIGURE_MODE, FIGURE_SENTENCES)
    pairs = pick_test_pairs(test, FIGURE_SENTENCES)
    plot_figure1([
        (f"test-list malicious targets under their {FIGURE_MODE}-triggers ({settings.data.name}, {after})", targets,
         target_nll(hits[("baseline", "test")], FIGURE_MODE, targets),
         target_nll(hits[(after, "test")], FIGURE_MODE, targets)),
        ("test-data references under their inputs", list(pairs["target"]),
         *(pair_nll(m, pairs, vocab, settings) for m in models.values())),
    ], figure_out)
    lines = trigger_section(hits[("baseline", "test")], "io", ht, SAMPLES)
    lines += sample_section(test, models, vocab, settings, SAMPLES, settings.seed)
    atomic_write_text(samples_out, "\n".join(lines))
    return table
