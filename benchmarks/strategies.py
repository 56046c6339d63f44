"""Benchmark: every registered strategy on two transfer pairs, as evidence for choosing one.

Pairs (a cnn pretrained on MNIST-5k, 40 epochs with `--augment affine`; every run of the comparison,
scratch included, also trains with `--augment affine` — `--augment none` reproduces the plain recipe):
- mnist5k → digits (UCI 8×8, framed 28×28: the demo pair);
- mnist5k → USPS (../shared/data/usps/usps.npz, 16×16 framed 28×28; 7,291 train / 2,007 test).
Each runs `compare` with every strategy at 1, 5, 10 and 50 labels per class over 3 seeds, then reports
the winner per budget, and whether LP-FT ≥ max(linear-probe, full) holds (the published pattern
under domain shift, Kumar et al. 2022).

    python benchmarks/strategies.py [--seeds 3] [--shots 1,5,10,50] [--pairs digits,usps]
                                    [--pretrain-epochs 40] [--augment affine] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USPS = ROOT.parent / "shared" / "data" / "usps" / "usps.npz"
STRATEGY_OPTIONS = {"partial": {"freeze": 2}, "add-layers": {"hidden": [128]}, "setfit": {"iterations": 10}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shots", default="1,5,10,50")
    parser.add_argument("--pairs", default="digits,usps")
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--augment", default="affine", choices=["none", "shift", "affine"])
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "strategies"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from transferlab.api import pretrain
    from transferlab.compare import CompareConfig, StrategySpec, run_comparison
    from transferlab.engine import TrainConfig
    from transferlab.strategies import list_strategies

    out = Path(args.out)
    source = pretrain("mnist5k", out=out / "pretrained", backbone="cnn", overwrite=True,
                      train=TrainConfig(epochs=args.pretrain_epochs, augment=args.augment))
    print(f"pretrained cnn on mnist5k: {args.pretrain_epochs} epochs, --augment {args.augment}, "
          f"source test accuracy {source.test_accuracy:.3f}, {source.train_seconds:.0f} s")
    targets = {"digits": "digits", "usps": str(USPS)}
    strategies = [StrategySpec(n, STRATEGY_OPTIONS.get(n, {})) for n in list_strategies()]
    report = {}
    for pair in args.pairs.split(","):
        if pair == "usps" and not USPS.is_file():
            print(f"skipped usps: {USPS} not found")
            continue
        config = CompareConfig(pretrained=str(out / "pretrained"), data=targets[pair], image_size=28, image_margin=4,
                               strategies=strategies, shots=args.shots, seeds=args.seeds, train={"augment": args.augment})
        start = time.perf_counter()
        result = run_comparison(config, out / pair, force=True)
        report[pair] = {"seconds": time.perf_counter() - start, "cells": result.summary["cells"],
                        "recommendation": result.summary["recommendation"]}
    if args.json:
        print(json.dumps(report))
        return
    for pair, r in report.items():
        cells = r["cells"]
        shots = sorted({c["shots"] for c in cells}, key=lambda s: (isinstance(s, str), s))
        names = [s.label for s in strategies]
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


if __name__ == "__main__":
    main()
