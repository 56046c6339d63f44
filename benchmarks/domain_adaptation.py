"""Benchmark: domain adaptation from unlabeled target data, against source-only and scratch, in one process.

Pairs (cnn pretrained 5 epochs on the source, with `--source-augment` (default affine) transforms;
digits that are not 28×28 framed like MNIST's: fit in 20×20 inside 28×28 and placed by centre of mass,
`--image-size 28 --image-margin 4 --image-center mass`; `--image-center box` gives the older framing):
- mnist-usps:    MNIST-5k → USPS (../shared/data/usps/usps.npz, 16×16 framed 28×28);
- usps-mnist:    USPS → MNIST-5k (the source framed 28×28);
- mnist-digits:  MNIST-5k → UCI digits (8×8 framed 28×28);
- mnist-fashion: MNIST-5k → Fashion-MNIST (../shared/data/fashion_mnist): adaptation should not help
  (class names 0–9 match, meanings do not); its unlabeled pool is the first 5,000 training images.
Every cell (pair × labels per class × strategy) runs the same seeds; at 0 labels the baseline is
source-only (the pretrained model with its source head, classes matched by name), at K labels it is
scratch, and full fine-tuning is shown too. Budgets: `--epochs` at 0 labels (adabn: one pass); at K
labels every strategy gets the engine's default (about 300 optimiser steps). Verdicts are paired by seed (Student-t 95% CI of the
difference, as `compare` does). Strategies take `--unlabeled-data train` (the target's pool without
its labels); dann/coral/mmd/self-training read the model's source task. Strategy options other than
the defaults: `--options '{"source-free": {"pseudo_weight": 0.3}}'`. Results are appended to
OUT/runs.jsonl as they finish and reused by a rerun with the same settings (delete it to start anew);
the table is printed at the end (`--json` prints the summary instead).

    python benchmarks/domain_adaptation.py [--pairs mnist-usps,usps-mnist,mnist-digits,mnist-fashion]
        [--seeds 5] [--shots 0,5] [--strategies adabn,dann,coral,mmd,self-training,source-free]
        [--epochs 10] [--image-center mass] [--source-augment affine] [--source-seed 0] [--options JSON]
        [--threads 1] [--out bench-out/domain_adaptation] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
USPS = DATA / "usps" / "usps.npz"
FASHION = DATA / "fashion_mnist"
FRAME = {"image_size": 28, "image_margin": 4}  # + image_center (--image-center)
SOURCES = {"mnist5k": ("mnist5k", False), "usps": (str(USPS), True)}  # name: (data, framed)
PAIRS = {  # name: (source, target data, target framed)
    "mnist-usps": ("mnist5k", str(USPS), True),
    "usps-mnist": ("usps", "mnist5k", False),
    "mnist-digits": ("mnist5k", "digits", True),
    "mnist-fashion": ("mnist5k", str(FASHION), False),
}
DA_STRATEGIES = ["adabn", "dann", "coral", "mmd", "self-training", "source-free"]
FASHION_POOL = 5000


def epochs_of(strategy: str, shots: int, epochs: int) -> int | None:
    """The training budget of one cell: `--epochs` at 0 labels (adabn: one pass of target statistics, the
    paper's method); at K labels per class the engine's default for every strategy alike (None: epochs
    for about 300 optimiser steps; an epoch over 5 rows per class is 2 steps)."""
    if shots > 0:
        return None
    return 1 if strategy == "adabn" else epochs


def _frame(framed: bool, center: str) -> dict[str, Any]:
    return FRAME | {"image_center": center} if framed else {}


def _source_model(out: Path, name: str, threads: int, center: str, augment: str, seed: int) -> Path:
    from transferlab.api import pretrain
    from transferlab.artifacts.model_folder import CONFIG
    from transferlab.engine import TrainConfig

    data, framed = SOURCES[name]
    folder = out / "models" / ((f"{name}-{center}-{augment}" if framed else f"{name}-{augment}")
                               + (f"-seed{seed}" if seed else ""))
    if not (folder / CONFIG).is_file():
        pretrain(data, backbone="cnn", out=folder, overwrite=True,
                 train=TrainConfig(epochs=5, threads=threads, augment=augment, seed=seed), **_frame(framed, center))
    return folder


def _unlabeled(pair: str, task: Any, out: Path) -> str:
    """'train' (the target pool without labels), or for Fashion-MNIST a 5,000-image slice of its pool, saved as x only."""
    if pair != "mnist-fashion":
        return "train"
    import numpy as np

    path = out / "fashion-unlabeled.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=task.x_pool[:FASHION_POOL, 0])  # inputs in [0, 1]: no labels in the file
    return str(path)


def _run_cell(pair: str, strategy: str, shots: int, seed: int, *, source: Any, task: Any, unlabeled: Any,
              source_rows: Any, epochs: int, threads: int, options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from transferlab.data import split_task
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.engine.adaptation import adaptation_run, source_only_metrics
    from transferlab.strategies import create_strategy

    start = time.perf_counter()
    names = source.config["source_task"]["label_names"]
    if strategy == "source-only":
        metrics = source_only_metrics(copy.deepcopy(source.backbone), source.source_head, names, task)
        return {"test_accuracy": metrics["accuracy"], "train_seconds": 0.0, "seconds": time.perf_counter() - start}
    cfg = TrainConfig(epochs=epochs_of(strategy, shots, epochs), seed=seed, threads=threads)
    strat = create_strategy(strategy, **options.get(strategy, {}))
    if strategy in ("scratch", "full"):
        _, run, metrics = train_run(copy.deepcopy(source.backbone), split_task(task, shots=shots, seed=seed), strat, cfg)
    else:
        _, run, metrics, _ = adaptation_run(
            copy.deepcopy(source.backbone), task, strat, cfg, shots=shots, unlabeled=unlabeled,
            source=source_rows if getattr(strat, "needs_source", False) else None,
            source_head=source.source_head, source_names=names)
    return {"test_accuracy": metrics["accuracy"], "train_seconds": run.train_seconds,
            "seconds": time.perf_counter() - start}


def _verdicts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (pair, shots, strategy): mean, 95% CI, and the paired verdict against the cell's baseline."""
    from transferlab.compare.statistics import mean_ci, paired_delta, verdict

    rows = []
    cells: dict[tuple[str, int, str], dict[int, float]] = {}
    for r in runs:
        cells.setdefault((r["pair"], r["shots"], r["strategy"]), {})[r["seed"]] = r["test_accuracy"]
    for (pair, shots, strategy), by_seed in cells.items():
        baseline = "source-only" if shots == 0 else "scratch"
        base = cells.get((pair, shots, baseline), {})
        if baseline == "source-only":  # deterministic: one value serves every seed
            base = {s: next(iter(base.values())) for s in by_seed} if base else {}
        mean, lo, hi = mean_ci(list(by_seed.values()))
        seeds = sorted(by_seed.keys() & base.keys())
        row = {"pair": pair, "shots": shots, "strategy": strategy, "n_seeds": len(by_seed), "mean": mean,
               "ci_low": lo, "ci_high": hi, "baseline": baseline, "delta": None, "verdict": "baseline"}
        if strategy != baseline and seeds:
            d, d_lo, d_hi = paired_delta([by_seed[s] for s in seeds], [base[s] for s in seeds])
            row |= {"delta": d, "verdict": verdict(d_lo, d_hi)}
        elif strategy != baseline:
            row["verdict"] = "n/a"
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    def fmt(x: float | None) -> str:
        return "–" if x is None or x != x else f"{x:.3f}"

    lines = ["| pair | labels/class | strategy | seeds | test accuracy (95% CI) | Δ vs baseline | verdict (baseline) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"{fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["n_seeds"] > 1 else fmt(r["mean"])
        delta = "–" if r["delta"] is None else f"{r['delta']:+.3f}"
        lines.append(f"| {r['pair']} | {r['shots']} | {r['strategy']} | {r['n_seeds']} | {ci} | {delta} | "
                     f"{r['verdict']} ({r['baseline']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", default="0,5")
    parser.add_argument("--strategies", default=",".join(DA_STRATEGIES))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-center", default="mass", choices=["box", "mass"],
                        help="how digits that are not 28×28 are placed in their 28×28 frame")
    parser.add_argument("--source-augment", default="affine", help="--augment of the source models' pretraining")
    parser.add_argument("--source-seed", type=int, default=0, help="seed of the source models' pretraining")
    parser.add_argument("--options", default="{}", help='strategy options, e.g. {"source-free": {"pseudo_weight": 0.3}}')
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "domain_adaptation"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from transferlab.api import load
    from transferlab.data import load_task
    from transferlab.data.unlabeled import load_source_rows, load_unlabeled

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.jsonl"
    options = json.loads(args.options)
    setting = {"image_center": args.image_center, "source_augment": args.source_augment, "source_seed": args.source_seed}
    runs = [json.loads(line) for line in store.read_text().splitlines()] if store.is_file() else []
    runs = [r for r in runs if all(r.get(k, 0) == v for k, v in setting.items())  # this setting's runs only
            and r.get("options", {}) == options.get(r["strategy"], {})
            and (r["epochs"] == epochs_of(r["strategy"], r["shots"], args.epochs) or r["strategy"] == "source-only")]
    done = {(r["pair"], r["shots"], r["strategy"], r["seed"]) for r in runs}
    shots_list = [int(s) for s in args.shots.split(",")]
    for pair in args.pairs.split(","):
        source_name, data, framed = PAIRS[pair]
        if not Path(SOURCES[source_name][0]).exists() and source_name != "mnist5k" or \
                (data.startswith("/") and not Path(data).exists()):
            print(f"skipped {pair}: its data is not in {DATA}")
            continue
        source = load(_source_model(out, source_name, args.threads, args.image_center, args.source_augment,
                                    args.source_seed))
        task = load_task(data, **_frame(framed, args.image_center))
        unlabeled = load_unlabeled(_unlabeled(pair, task, out), task)
        source_rows = load_source_rows(source.config["source_task"]["path"], source.config["preprocessing"], task)
        for shots in shots_list:
            baselines = ["source-only"] if shots == 0 else ["scratch", "full"]
            for seed in range(args.seeds):
                # alternating: every strategy of this seed before the next seed, baselines first
                for strategy in baselines + args.strategies.split(","):
                    if (pair, shots, strategy, seed) in done or (strategy == "source-only" and seed > 0):
                        continue
                    result = _run_cell(pair, strategy, shots, seed, source=source, task=task, unlabeled=unlabeled,
                                       source_rows=source_rows, epochs=args.epochs, threads=args.threads, options=options)
                    record = {"pair": pair, "shots": shots, "strategy": strategy, "seed": seed,
                              "options": options.get(strategy, {}),
                              "epochs": epochs_of(strategy, shots, args.epochs)} | setting | result
                    runs.append(record)
                    done.add((pair, shots, strategy, seed))
                    with store.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    print(f"{pair} {shots} labels {strategy} seed {seed}: {result['test_accuracy']:.4f} "
                          f"({result['seconds']:.0f} s)", flush=True)
    rows = _verdicts([r for r in runs if r["pair"] in args.pairs.split(",")])
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(_table(rows))


if __name__ == "__main__":
    main()
