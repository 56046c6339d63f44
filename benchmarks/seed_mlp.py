"""Benchmark: the seed's MLP trained by transferlab vs a plain hand-written PyTorch loop.

The seed's network (784-128 relu, dropout 0.2, 10 outputs; Adam 1e-3; batch 32; 5 epochs) on one
fixed MNIST-5k split. Both trainers run in this process, alternating, for several rounds, with the
same thread count; we report the median samples/s of each and their ratio. transferlab's time
includes its per-epoch validation pass; the hand loop's does not (a conservative comparison).

    python benchmarks/seed_mlp.py [--rounds 3] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

from transferlab.api import train_run
from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig
from transferlab.models import create_backbone
from transferlab.strategies import create_strategy

EPOCHS, BATCH, LR = 5, 32, 1e-3


def hand_written(x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, seed: int) -> tuple[float, float]:
    """The loop a PyTorch user would write by hand. Returns (samples/s, test accuracy)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    n = len(x)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        acc = float((model(x_test).argmax(1) == y_test).float().mean())
    return EPOCHS * n / seconds, acc


def with_transferlab(split, seed: int, threads: int) -> tuple[float, float]:
    backbone = create_backbone("mlp", split.task.input_spec, hidden=[128], activation="relu", dropout=0.2)
    cfg = TrainConfig(epochs=EPOCHS, batch_size=BATCH, lr=LR, optimizer="adam", seed=seed, threads=threads)
    _, run, metrics = train_run(backbone, split, create_strategy("scratch"), cfg)
    return run.samples_seen / run.train_seconds, metrics["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    task = load_task("mnist5k")
    split = split_task(task, shots=None, seed=0)
    x = torch.from_numpy(split.x_train).float()
    y = torch.from_numpy(split.y_train).long()
    x_test = torch.from_numpy(task.x_test).float()
    y_test = torch.from_numpy(task.y_test).long()

    ours, theirs = [], []
    for r in range(args.rounds):  # alternate so drift in machine load hits both alike
        ours.append(with_transferlab(split, seed=r, threads=args.threads))
        theirs.append(hand_written(x, y, x_test, y_test, seed=r))
    result = {
        "transferlab_samples_per_s": statistics.median(s for s, _ in ours),
        "torch_samples_per_s": statistics.median(s for s, _ in theirs),
        "transferlab_accuracy": statistics.fmean(a for _, a in ours),
        "torch_accuracy": statistics.fmean(a for _, a in theirs),
        "rounds": args.rounds,
        "threads": args.threads,
        "n_train": len(y),
    }
    result["ratio"] = result["transferlab_samples_per_s"] / result["torch_samples_per_s"]
    if args.json:
        print(json.dumps(result))
        return
    print(f"seed MLP, MNIST-5k ({len(y)} train, {len(y_test)} test), {args.rounds} alternating rounds, {args.threads} thread(s)\n")
    print("| trainer | samples/s (median) | test accuracy (mean) |")
    print("|---|---:|---:|")
    print(f"| transferlab | {result['transferlab_samples_per_s']:,.0f} | {result['transferlab_accuracy']:.4f} |")
    print(f"| hand-written torch loop | {result['torch_samples_per_s']:,.0f} | {result['torch_accuracy']:.4f} |")
    print(f"\nratio transferlab / torch: {result['ratio']:.3f} (goal ≥ 1.0)")


if __name__ == "__main__":
    main()
