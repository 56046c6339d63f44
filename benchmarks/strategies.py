"""Benchmark: every registered strategy on two transfer pairs, as evidence for choosing one.

Every strategy that learns from labels (those that learn from unlabeled target data are
benchmarks/domain_adaptation.py's). Pairs (a cnn pretrained on MNIST-5k, 40 epochs with `--augment affine`; every run of the comparison,
scratch included, also trains with `--augment affine` — `--augment none` reproduces the plain recipe):
- mnist5k → digits (UCI 8×8, framed 28×28: the demo pair);
- mnist5k → USPS (../shared/data/usps/usps.npz, 16×16 framed 28×28; 7,291 train / 2,007 test).
Each runs `compare` with every strategy at 1, 5, 10 and 50 labels per class over 3 seeds, then reports
the winner per budget, and whether LP-FT ≥ max(linear-probe, full) holds (the published pattern
under domain shift, Kumar et al. 2022).

    python benchmarks/strategies.py [--seeds 3] [--shots 1,5,10,50] [--pairs digits,usps]
                                    [--pretrain-epochs 40] [--augment affine] [--jobs 1] [--json]

`--ab` times the whole benchmark (pretraining included) against the grid of issue 20's time (the cnn in
NCHW, every use reading its dataset again: compare_grid.py's `--baseline issue`, always one process),
alternating in this process, `--repeats` rounds each; the current side runs with `--after-jobs` worker
processes. It prints the wall-time ratio and whether every verdict is the same. A subset keeps it short:

    python benchmarks/strategies.py --ab --pairs usps --shots 10 --after-jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USPS = ROOT.parent / "shared" / "data" / "usps" / "usps.npz"
STRATEGY_OPTIONS = {"partial": {"freeze": 2}, "add-layers": {"hidden": [128]}, "setfit": {"iterations": 10}}


def benchmark_strategies() -> list[Any]:
    """Every registered strategy that learns from labels, with this benchmark's options (those that learn from
    unlabeled target data are benchmarks/domain_adaptation.py's)."""
    from transferlab.compare import StrategySpec
    from transferlab.engine.adaptation import adaptation_strategies
    from transferlab.strategies import list_strategies

    unlabeled = set(adaptation_strategies())
    return [StrategySpec(n, STRATEGY_OPTIONS.get(n, {})) for n in list_strategies() if n not in unlabeled]


def comparison_config(args: argparse.Namespace, pretrained: Path, data: str, strategies: list[Any]) -> Any:
    from transferlab.compare import CompareConfig

    return CompareConfig(pretrained=str(pretrained), data=data, image_size=28, image_margin=4, strategies=strategies,
                         shots=args.shots, seeds=args.seeds, train={"augment": args.augment})


def run(args: argparse.Namespace, out: Path, jobs: int) -> dict[str, Any]:
    """Pretrain the source cnn, then one comparison per pair; the wall time of all of it and each pair's cells."""
    from transferlab.api import pretrain
    from transferlab.compare import run_comparison
    from transferlab.engine import TrainConfig

    start = time.perf_counter()
    source = pretrain("mnist5k", out=out / "pretrained", backbone="cnn", overwrite=True,
                      train=TrainConfig(epochs=args.pretrain_epochs, augment=args.augment))
    print(f"pretrained cnn on mnist5k: {args.pretrain_epochs} epochs, --augment {args.augment}, "
          f"source test accuracy {source.test_accuracy:.3f}, {source.train_seconds:.0f} s", file=sys.stderr)
    targets = {"digits": "digits", "usps": str(USPS)}
    strategies = benchmark_strategies()
    report: dict[str, Any] = {}
    for pair in args.pairs.split(","):
        if pair == "usps" and not USPS.is_file():
            print(f"skipped usps: {USPS} not found", file=sys.stderr)
            continue
        config = comparison_config(args, out / "pretrained", targets[pair], strategies)
        began = time.perf_counter()
        result = run_comparison(config, out / pair, force=True, jobs=jobs)
        report[pair] = {"seconds": time.perf_counter() - began, "cells": result.summary["cells"],
                        "recommendation": result.summary["recommendation"]}
    return {"wall_seconds": time.perf_counter() - start, "jobs": jobs, "pairs": report,
            "strategies": [s.label for s in strategies]}


def verdicts(figures: dict[str, Any]) -> dict[str, str]:
    return {f"{pair} {c['strategy']} @ {c['shots']}": c["verdict"]
            for pair, r in figures["pairs"].items() for c in r["cells"]}


def ab(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The grid of issue 20's time (sequential, patched in this process) and today's (`--after-jobs`), alternating."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compare_grid import BASELINES

    earlier: list[dict[str, Any]] = []
    now: list[dict[str, Any]] = []
    loads: list[float] = []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        with BASELINES["issue"]():
            earlier.append(run(args, out / "issue", 1))
        loads.append(os.getloadavg()[0])
        now.append(run(args, out / "current", args.after_jobs))
    loads.append(os.getloadavg()[0])
    before = statistics.median(f["wall_seconds"] for f in earlier)
    after = statistics.median(f["wall_seconds"] for f in now)
    first = verdicts(earlier[0])
    changed = {cell: [first[cell], verdicts(f).get(cell)] for f in earlier + now for cell in first
               if verdicts(f).get(cell) != first[cell]}
    return {"earlier_wall_seconds": [f["wall_seconds"] for f in earlier],
            "current_wall_seconds": [f["wall_seconds"] for f in now], "ratio": before / after,
            "after_jobs": args.after_jobs, "load_1min": loads, "changed_verdicts": changed,
            "cells": len(first), "current": now[-1]}


def print_tables(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    names = figures["strategies"]
    for pair, r in figures["pairs"].items():
        cells = r["cells"]
        shots = sorted({c["shots"] for c in cells}, key=lambda s: (isinstance(s, str), s))
        print(f"\n### mnist5k → {pair} ({args.seeds} seeds, {r['seconds'] / 60:.1f} min): test accuracy, mean\n")
        print("| strategy | " + " | ".join(f"{s} labels/class" for s in shots) + " |")
        print("|---|" + "---:|" * len(shots))
        best = {s: max((c for c in cells if c["shots"] == s), key=lambda c: c["mean"]) for s in shots}
        for name in names:
            row = []
            for s in shots:
                c = next(c for c in cells if c["shots"] == s and c["strategy"] == name)
                mark = "**" if c is best[s] else ""
                verdict = {"helps": " ↑", "hurts": " ↓"}.get(c["verdict"], "")
                row.append(f"{mark}{c['mean']:.3f}{mark}{verdict}")
            print(f"| {name} | " + " | ".join(row) + " |")
        for s in shots:
            get = {c["strategy"]: c["mean"] for c in cells if c["shots"] == s}
            holds = get["lp-ft"] >= max(get["linear-probe"], get["full"])
            print(f"- {s} labels/class: best {best[s]['strategy']} ({best[s]['mean']:.3f}); "
                  f"LP-FT ≥ max(linear-probe, full): {'yes' if holds else 'no'} "
                  f"({get['lp-ft']:.3f} vs {get['linear-probe']:.3f} / {get['full']:.3f})")
    print("\n↑ / ↓: compare's verdict against scratch (95% CI of the paired difference above / below 0)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", default="1,5,10,50")
    parser.add_argument("--pairs", default="digits,usps")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--augment", default="affine", choices=["none", "shift", "affine"])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes of each comparison")
    parser.add_argument("--ab", action="store_true", help="the grid of issue 20's time vs today's, alternating")
    parser.add_argument("--after-jobs", type=int, default=2, help="--ab: today's side's worker processes")
    parser.add_argument("--repeats", type=int, default=1, help="--ab: rounds of each side")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "strategies"))
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    if args.ab:
        figures = ab(args, out)
        if args.json:
            print(json.dumps({k: v for k, v in figures.items() if k != "current"}))
            return
        print(f"strategies benchmark (pairs {args.pairs}, shots {args.shots}, {args.seeds} seeds, "
              f"{figures['cells']} cells): the grid of issue 20's time (1 process) vs today's "
              f"(--jobs {figures['after_jobs']}), alternating; 1-minute load {figures['load_1min']}\n")
        print("| side | wall (s) |\n|---|---:|")
        print(f"| issue 20's grid, --jobs 1 | {statistics.median(figures['earlier_wall_seconds']):.1f} |")
        print(f"| today, --jobs {figures['after_jobs']} | {statistics.median(figures['current_wall_seconds']):.1f} |")
        print(f"\nratio {figures['ratio']:.2f}× (goal ≥ 2); verdicts changed: {figures['changed_verdicts'] or 'none'}")
        return
    figures = run(args, out, args.jobs)
    if args.json:
        print(json.dumps(figures["pairs"]))
        return
    print_tables(args, figures)


if __name__ == "__main__":
    main()
