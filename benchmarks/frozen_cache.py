"""Benchmark: the frozen-feature cache — linear-probe and partial on the cnn, cached vs uncached.

A cnn pretrained on MNIST-5k is adapted to the UCI digits (framed 28×28, all labels). For each
strategy, the same run (same seed, same epochs) trains once with the cache and once without,
alternating, for several rounds. Reported: per-epoch training time (median), the ratio
uncached / cached, the one-off cost of computing the cached features, and that both paths reach
the same test accuracy.

    python benchmarks/frozen_cache.py [--rounds 3] [--epochs 5] [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time

import torch

from transferlab.api import load, pretrain, train_run
from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig, cacheable_prefix, prefix_features
from transferlab.strategies import create_strategy

STRATEGIES = {"linear-probe": {}, "partial --freeze 2": {"freeze": 2}, "partial --freeze 1": {"freeze": 1}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        pretrain("mnist5k", out=f"{tmp}/src", backbone="cnn", train=TrainConfig(epochs=2))
        source = load(f"{tmp}/src")
    split = split_task(load_task("digits", image_size=28, image_margin=4), shots=None, seed=0)
    rows = []
    for label, options in STRATEGIES.items():
        name = label.split()[0]
        per_epoch: dict[bool, list[float]] = {True: [], False: []}
        accuracy: dict[bool, float] = {}
        for _ in range(args.rounds):
            for cached in (True, False):
                cfg = TrainConfig(epochs=args.epochs, seed=0, threads=1)
                _, run, metrics = train_run(copy.deepcopy(source.backbone), split, create_strategy(name, **options),
                                            cfg, cache=cached)
                per_epoch[cached].append(run.train_seconds / run.epochs)
                accuracy[cached] = metrics["accuracy"]
        k = cacheable_prefix(source.backbone, create_strategy(name, **options).frozen_blocks(source.backbone))
        start = time.perf_counter()
        prefix_features(source.backbone, k, split.task.x_pool)
        prefix_features(source.backbone, k, split.task.x_test)
        feature_seconds = time.perf_counter() - start
        cached, uncached = statistics.median(per_epoch[True]), statistics.median(per_epoch[False])
        rows.append({"strategy": label, "cached_blocks": k, "epoch_seconds_cached": cached,
                     "epoch_seconds_uncached": uncached, "ratio": uncached / cached,
                     "feature_seconds": feature_seconds, "accuracy_cached": accuracy[True],
                     "accuracy_uncached": accuracy[False]})
    if args.json:
        print(json.dumps({"rows": rows, "n_train": len(split.y_train), "epochs": args.epochs, "rounds": args.rounds}))
        return
    print(f"frozen-feature cache: cnn, digits 28×28, {len(split.y_train)} training examples, {args.epochs} epochs, "
          f"median of {args.rounds} alternating rounds, 1 thread\n")
    print("| strategy | cached blocks | epoch s (uncached) | epoch s (cached) | uncached / cached | features once (s) | test acc uncached / cached |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['strategy']} | {r['cached_blocks']} | {r['epoch_seconds_uncached']:.3f} | {r['epoch_seconds_cached']:.4f} | "
              f"{r['ratio']:.1f}× | {r['feature_seconds']:.2f} | {r['accuracy_uncached']:.4f} / {r['accuracy_cached']:.4f} |")


if __name__ == "__main__":
    main()
