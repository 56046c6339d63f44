"""Benchmark: the demo comparison end to end — wall time, where it goes, and peak memory.

Runs exactly what `transferlab demo` runs (pretrain cnn on MNIST-5k; compare 5 strategies × shots
1,5,10,all × 3 seeds on digits) in this process and splits the wall time into pretraining, training
steps, evaluation (validation passes and the final test pass), and everything else (data loading,
splits, frozen features, FLOP counting, saving models, the run store, the report). Peak RSS is the
process's maximum resident memory (issue goal: under 2 GiB).

    python benchmarks/compare_grid.py [--seeds 3] [--jobs 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time

from transferlab.demo import demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = demo(tmp, seeds=args.seeds, jobs=args.jobs, quiet=True)
        wall = time.perf_counter() - start
        pretrain = json.load(open(f"{tmp}/pretrained/config.json"))["training"]["train_seconds"]
    runs = result.runs
    steps = sum(r["train_seconds"] - r["eval_seconds"] for r in runs)
    evaluation = sum(r["eval_seconds"] for r in runs)
    cells = sum(r["cell_seconds"] for r in runs)
    test_and_cell_overhead = cells - sum(r["train_seconds"] for r in runs)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures = {
        "wall_seconds": wall, "runs": len(runs), "pretrain_seconds": pretrain, "training_step_seconds": steps,
        "validation_seconds": evaluation, "per_cell_other_seconds": test_and_cell_overhead,
        "outside_cells_seconds": wall - cells - pretrain, "peak_rss_mib": max(rss_self, rss_children),
        "jobs": args.jobs, "seeds": args.seeds,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"demo comparison: {len(runs)} runs, {args.seeds} seeds, jobs={args.jobs}\n")
    print("| part | seconds | share of wall |")
    print("|---|---:|---:|")
    for label, key in [("pretraining (cnn on mnist5k, 5 epochs)", "pretrain_seconds"),
                       ("training steps", "training_step_seconds"), ("validation passes", "validation_seconds"),
                       ("per cell: split, frozen features, test pass, FLOP count, saving", "per_cell_other_seconds"),
                       ("outside cells: data loading, run store, report, imports", "outside_cells_seconds")]:
        print(f"| {label} | {figures[key]:.1f} | {figures[key] / wall:.0%} |")
    print(f"| **wall time** | **{wall:.1f}** | 100% |")
    print(f"\npeak RSS: {figures['peak_rss_mib']:.0f} MiB (goal < 2048 MiB)")


if __name__ == "__main__":
    main()
