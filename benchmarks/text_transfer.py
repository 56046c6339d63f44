"""Benchmark: transfer from all-MiniLM-L6-v2 on TREC-6 question classification (5,452 train / 500 test).

Runs `transferlab compare` with scratch (same encoder architecture, random init), linear-probe,
full fine-tuning, LoRA and SetFit — plus the TF-IDF + logistic-regression reference line compare adds
for text — at 8, 16 and 64 labels per class over 5 seeds, and reports the summary table, the embedding
throughput of the frozen encoder (sentences/s, length-sorted batches), the wall time, and the time the
issue's grid (scratch, linear-probe, full, setfit × 8/16/64 × 3 seeds) took inside it: the sum of those
cells' own wall times (`cell_seconds`: split, features, training, test), since cells run one at a time.

    python benchmarks/text_transfer.py [--seeds 5] [--shots 8,16,64] [--strategies ...] [--out bench-out/trec]
                                       [--jobs 1] [--force] [--json]

The issue's 30-minute grid on its own, timed on 2 cores:

    python benchmarks/text_transfer.py --seeds 3 --strategies scratch,linear-probe,full,setfit \
        --jobs 2 --out bench-out/trec-timed --force

The comparison takes hours on 2 busy cores; like any `compare`, a rerun with the same settings continues
where the last one stopped (finished runs are kept in OUT/runs.sqlite; `--force` starts anew), so the
wall time printed is that of the last invocation — the grid time from `cell_seconds` covers every run.

Needs the text extra and ../shared/data/trec (CSV files with text,label columns).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TREC = ROOT.parent / "shared" / "data" / "trec"

# Runs that train the encoder get ≥ 60 steps and ≥ 10 epochs, validated every 5 epochs (a MiniLM step
# costs ~0.5 s on one core); the probe and SetFit's head train on cached embeddings with the default budget.
ENCODER_BUDGET = {"min_steps": 60, "eval_every": 5}
STRATEGIES = [
    {"name": "scratch", "train": ENCODER_BUDGET},
    {"name": "linear-probe"},
    {"name": "full", "train": ENCODER_BUDGET},
    {"name": "lora", "train": ENCODER_BUDGET},
    {"name": "setfit", "options": {"iterations": 20, "max_pairs": 1280}},
]
TIMED_GRID = {"strategies": ("scratch", "linear-probe", "full", "setfit", "tfidf-logreg"), "seeds": 3}  # the grid (+ the reference line compare adds)


def embedding_throughput(texts: np.ndarray, threads: int) -> float:
    """Sentences/s of the frozen encoder over `texts` (length-sorted batches), with `threads` torch threads."""
    from transferlab.data.task import InputSpec
    from transferlab.engine import prefix_features
    from transferlab.models import create_backbone

    torch.set_num_threads(threads)
    backbone = create_backbone("minilm", InputSpec("text", ()))
    start = time.perf_counter()
    prefix_features(backbone, len(backbone.block_names), texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", default="8,16,64")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "trec"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--strategies", default=",".join(s["name"] for s in STRATEGIES),
                        help="a subset, e.g. scratch,linear-probe,full,setfit (the issue's timed grid)")
    parser.add_argument("--jobs", type=int, default=1, help="cells in parallel processes (one thread each)")
    parser.add_argument("--force", action="store_true", help="discard the runs in --out and start anew")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (TREC / "train.csv").is_file():
        print(f"skipped: {TREC} not found")
        return
    from transferlab.compare import CompareConfig, run_comparison
    from transferlab.data import load_task

    task = load_task(str(TREC / "train.csv"), test_data=str(TREC / "test.csv"))
    sample = task.x_pool[:2000]
    throughput = {t: embedding_throughput(sample, t) for t in (1, 2)}
    torch.set_num_threads(args.threads or 1)
    config = CompareConfig(pretrained="minilm", data=str(TREC / "train.csv"), test_data=str(TREC / "test.csv"),
                           strategies=[s for s in STRATEGIES if s["name"] in args.strategies.split(",")],
                           shots=args.shots, seeds=args.seeds)
    start = time.perf_counter()
    result = run_comparison(config, args.out, threads=args.threads, force=args.force, jobs=args.jobs)
    wall = time.perf_counter() - start
    cells = result.summary["cells"]
    timed = [r for r in result.runs if r["strategy"] in TIMED_GRID["strategies"] and r["seed"] < TIMED_GRID["seeds"]]
    grid_seconds = sum(r.get("cell_seconds") or 0.0 for r in timed)
    figures = {"wall_seconds": wall, "timed_grid_seconds": grid_seconds, "timed_grid_runs": len(timed), "embedding_sentences_per_s_1_thread": throughput[1],
               "embedding_sentences_per_s_2_threads": throughput[2], "seeds": args.seeds,
               "threads": args.threads or 1, "cells": cells, "failed": result.failed}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"TREC-6, all-MiniLM-L6-v2, {args.seeds} seeds, {args.threads or 1} thread(s); wall {wall / 60:.1f} min; "
          f"embedding {throughput[1]:.0f} sentences/s on 1 thread, {throughput[2]:.0f} on 2; the issue's grid "
          f"({', '.join(TIMED_GRID['strategies'])} × {args.shots} × {TIMED_GRID['seeds']} seeds, {len(timed)} runs) "
          f"took {grid_seconds / 60:.1f} min of it\n")
    print("| labels/class | strategy | test accuracy [95% CI] | sd over seeds | Δ vs scratch [95% CI] | verdict | train s |")
    print("|---:|---|---:|---:|---:|---|---:|")
    runs = result.runs
    for c in cells:
        accs = [r["test_accuracy"] for r in runs if r["strategy"] == c["strategy"] and str(r["shots"]) == str(c["shots"])]
        sd = float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0
        ci = "" if c["ci_low"] is None else f" [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"
        delta = "—" if c["verdict"] == "baseline" else (
            f"{c['delta_vs_scratch']:+.3f}" + ("" if c["delta_ci_low"] is None else f" [{c['delta_ci_low']:+.3f}, {c['delta_ci_high']:+.3f}]"))
        print(f"| {c['shots']} | {c['strategy']} | {c['mean']:.3f}{ci} | {sd:.3f} | {delta} | {c['verdict']} | "
              f"{c['train_seconds_mean']:.1f} |")


if __name__ == "__main__":
    main()
