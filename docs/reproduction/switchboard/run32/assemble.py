"""Writes run 32's files from its two working directories (see ../README.md#run-32 and ../transformer.md#run-32).

  PYTHONPATH=. python docs/reproduction/switchboard/run32/assemble.py LSTM_DIR TRANSFORMER_DIR

LSTM_DIR: config.yaml's LSTM on the coherent base (../run20/overlay.yaml): Table 8, Algorithm 1 on the authors' 0.5k
list in o- and io-mode, their hit tests and evaluations. TRANSFORMER_DIR: the same with configs/transformer.yaml,
plus Algorithm 2 at both r_thres for two epochs (../run28/frequent_epochs2.yaml). The baselines' hit tests are run
31's (same training, Table 8 equal to every digit). Writes hits.csv (in ../run31/hits.csv's layout), models.csv,
table8.csv, the curves, stage_seconds.csv (each stage's seconds in both directories, from Snakemake's benchmark
files) and the LSTM's rows of ../wall_times.csv; then prints Table 3's sample-avg rows beside run 31's baselines.
"""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)
evaluated = run15.evaluated          # run 15's reader of one model's eval/ folder

NEGTR = ("negtr-o-0.5k", "negtr-io-0.5k")
EVALUATED = {"lstm": NEGTR, "transformer": NEGTR + ("freq-0.1", "freq-0.01")}


def hit_rows(sw: Path, arch: str) -> pd.DataFrame:
    frames = [pd.read_csv(sw / "hits" / model / f"{lst}_rates.csv").assign(arch=arch, model=model, list=lst)
              for model in NEGTR for lst in ("train", "test")]
    return pd.concat(frames)[["arch", "model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]


def stage_seconds(run: Path, arch: str) -> pd.DataFrame:
    rows = [{"arch": arch, "stage": f.stem, "seconds": round(pd.read_csv(f, sep="\t")["s"].iloc[-1], 2)}
            for f in sorted((run / "benchmarks_out" / "switchboard").glob("*.tsv"))]
    return pd.DataFrame(rows)


def main(lstm: Path, transformer: Path) -> None:
    runs = {"lstm": lstm, "transformer": transformer}
    dirs = {arch: run / "results" / "switchboard" for arch, run in runs.items()}
    hits = pd.concat([hit_rows(sw, arch) for arch, sw in dirs.items()])
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"arch": arch, "model": m, **evaluated(dirs[arch] / "eval" / m)}
                           for arch, names in EVALUATED.items() for m in names])
    models.to_csv(HERE / "models.csv", index=False)
    pd.concat([pd.read_csv(sw / "table8.csv").assign(arch=arch) for arch, sw in dirs.items()]).to_csv(
        HERE / "table8.csv", index=False)
    for arch, names in EVALUATED.items():
        for name in names:
            (HERE / f"{arch}_{name}_curve.csv").write_text((dirs[arch] / "models" / f"{name}_curve.csv").read_text())

    seconds = pd.concat([stage_seconds(run, arch) for arch, run in runs.items()])
    seconds.to_csv(HERE / "stage_seconds.csv", index=False)
    write_wall_times("run32", seconds[seconds["arch"] == "lstm"])

    run31 = pd.read_csv(HERE.parent / "run31" / "hits.csv")
    both = pd.concat([run31[run31["model"] == "baseline"], hits])
    avg = both[both["hit_type"].str.endswith("sample_avg")]
    table3 = avg.pivot_table(index=["arch", "model"], columns=["list", "hit_type"], values="rate")
    print("Table 3, sample-avg hit rates (train: the authors' 0.5k list; test: ours; baselines: run 31)\n",
          table3.round(4))
    print(models.set_index(["arch", "model"])[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4))


def write_wall_times(run: str, seconds: pd.DataFrame) -> None:
    """``run``'s rows of ../wall_times.csv from ``seconds`` (stage_seconds' layout); other runs' rows kept as
    written."""
    table = HERE.parent / "wall_times.csv"
    kept = [line for line in table.read_text().splitlines() if not line.startswith(f"{run},")]
    table.write_text("\n".join(kept + [f"{run},{r.stage},{r.seconds:.2f}" for r in seconds.itertuples()]) + "\n")


def print_transformer_runs(hits: pd.DataFrame, models: pd.DataFrame) -> None:
    """Later runs' Transformer models (``hits`` and ``models`` with a ``run`` column): Table 3's sample-avg rows
    beside run 31's baseline and run 32's models, then their evaluations."""
    before = [pd.read_csv(HERE.parent / "run31" / "hits.csv").query("model == 'baseline'").assign(run=31),
              pd.read_csv(HERE / "hits.csv").assign(run=32)]
    both = pd.concat([*before, hits]).query("arch == 'transformer'")
    avg = both[both["hit_type"].str.endswith("sample_avg")]
    print("Table 3, sample-avg hit rates (train: the authors' 0.5k list; test: ours)\n",
          avg.pivot_table(index=["run", "model"], columns=["list", "hit_type"], values="rate").round(4).to_string())
    print(models.set_index(["run", "model"])[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4)
          .to_string())


def check_copied_baseline(base: Path, dirs: dict, out: Path, baseline_ppl: float) -> None:
    """Later Transformer runs that copied one baseline directory: BASE's Table 8 must equal run 31's (whose seq2seq
    test PPL is ``baseline_ppl``) and so must each copy's in ``dirs`` (run -> results/switchboard), or a copy retrained
    its baseline; writes BASE's table to ``out``/table8.csv."""
    table8 = pd.read_csv(base / "results" / "switchboard" / "table8.csv").assign(arch="transformer")
    run31 = pd.read_csv(HERE.parent / "run31" / "table8.csv").query("arch == 'transformer'").reset_index(drop=True)
    assert table8.equals(run31), "Table 8 differs from run 31's"
    assert abs(run31.set_index("model").loc["Seq2seq", "test_ppl"] - baseline_ppl) < 0.005
    table8.to_csv(out / "table8.csv", index=False)
    for run, sw in dirs.items():
        assert pd.read_csv(sw / "table8.csv").assign(arch="transformer").equals(run31), f"run {run} retrained"


def write_negtr_stage_seconds(base: Path, variants: dict, out: Path) -> None:
    """Later Transformer runs: the baseline's stage times (run "base") and each variant's Algorithm 1 stages (run ->
    working directory in ``variants``) into ``out``/stage_seconds.csv."""
    seconds = pd.concat([stage_seconds(base, "transformer").assign(run="base")]
                        + [stage_seconds(w, "transformer").assign(run=run) for run, w in variants.items()])
    seconds = seconds[(seconds["run"] == "base") | seconds["stage"].str.contains("negtr")]
    seconds.to_csv(out / "stage_seconds.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
