"""Writes run 31's files from its two working directories (see ../README.md#run-31 and ../transformer.md#run-31).

  PYTHONPATH=. python docs/reproduction/switchboard/run31/assemble.py LSTM_DIR TRANSFORMER_DIR

LSTM_DIR: config.yaml's LSTM on the coherent base (../run20/overlay.yaml): Table 8, the baseline's hit tests,
Algorithm 1 on the authors' 1k list in o- and io-mode, their hit tests and evaluations. TRANSFORMER_DIR: run 25's
Transformer with average_last3.yaml: Table 8, the baseline's hit tests and evaluation. Writes hits.csv (every hit test
of both, in run25/hits.csv's layout with an `arch` column), models.csv (per model: test PPL, Table 4's greedy max-ratio,
Ent-2, Ent-3, its most frequent response, both BLEU-4 definitions), table8.csv, the curves and the LSTM's rows of
../wall_times.csv (each stage's seconds from Snakemake's benchmark files); then prints Table 3's sample-avg rows of the
LSTM on the coherent base and the Transformer baseline beside run 25's."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("run15_assemble", HERE.parent / "run15" / "assemble.py")
run15 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run15)
evaluated = run15.evaluated          # run 15's reader of one model's eval/ folder

RUNS = {"lstm": ("baseline", "negtr-o-1k", "negtr-io-1k"), "transformer": ("baseline",)}


def hit_rows(sw: Path, arch: str) -> pd.DataFrame:
    frames = [pd.read_csv(sw / "hits" / model / f"{lst}_rates.csv").assign(arch=arch, model=model, list=lst)
              for model in RUNS[arch] for lst in ("train", "test")]
    return pd.concat(frames)[["arch", "model", "list", "hit_type", "hits", "targets", "rate", "skipped"]]


def main(lstm: Path, transformer: Path) -> None:
    dirs = {"lstm": lstm / "results" / "switchboard", "transformer": transformer / "results" / "switchboard"}
    hits = pd.concat([hit_rows(sw, arch) for arch, sw in dirs.items()])
    hits.to_csv(HERE / "hits.csv", index=False)
    models = pd.DataFrame([{"arch": arch, "model": m, **evaluated(sw / "eval" / m)}
                           for arch, sw in dirs.items() for m in RUNS[arch] if (sw / "eval" / m).is_dir()])
    models.to_csv(HERE / "models.csv", index=False)
    pd.concat([pd.read_csv(sw / "table8.csv").assign(arch=arch) for arch, sw in dirs.items()]).to_csv(
        HERE / "table8.csv", index=False)
    for name in ("negtr-o-1k", "negtr-io-1k"):
        (HERE / f"lstm_{name}_curve.csv").write_text((dirs["lstm"] / "models" / f"{name}_curve.csv").read_text())
    for name in ("seq2seq", "lm"):
        src = dirs["transformer"] / "models" / f"{name}_curve.csv"
        (HERE / f"transformer_{name}_curve.csv").write_text(src.read_text())

    seconds = {f.stem: pd.read_csv(f, sep="\t")["s"].iloc[-1]
               for f in sorted((lstm / "benchmarks_out" / "switchboard").glob("*.tsv"))}
    walls = [f"run31,{stage},{s:.2f}" for stage, s in seconds.items()]
    table = HERE.parent / "wall_times.csv"          # other runs' rows kept as written
    kept = [line for line in table.read_text().splitlines() if not line.startswith("run31,")]
    table.write_text("\n".join(kept + walls) + "\n")

    avg = hits[hits["hit_type"].str.endswith("sample_avg")]
    table3 = avg.pivot_table(index=["arch", "model"], columns=["list", "hit_type"], values="rate")
    print("Table 3, sample-avg hit rates (train: the authors' 0.5k list; test: ours)\n", table3.round(4))
    run25 = pd.read_csv(HERE.parent / "run25" / "hits.csv")
    run25 = run25[run25["hit_type"].str.endswith("sample_avg")].pivot_table(index="list", columns="hit_type",
                                                                            values="rate")
    print("Transformer baseline of run 25 (best epoch, no averaging)\n", run25.round(4))
    print(models.set_index(["arch", "model"])[["test_ppl", "max_ratio", "ent2", "ent3", "top_response"]].round(4))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
