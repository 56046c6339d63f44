"""Benchmark: achieved GFLOP/s of a large-batch MLP training step against the machine's fp32 matmul peak.

A roofline-style ratio: how much of what this CPU can do in a dense matmul does one transferlab
training step (forward, backward, fused Adam) of a wide MLP actually get? FLOPs are counted by
torch's FlopCounterMode over the whole step; the peak is the best of several large square matmuls.

    python benchmarks/flops.py [--threads 1] [--batch 2048] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from transferlab.engine import TrainConfig, fit
from transferlab.models import HeadSpec, TransferModel, create_backbone
from transferlab.strategies import create_strategy


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backbone = create_backbone("mlp", (784,), hidden=[2048, 2048], dropout=0.0)
    model = TransferModel(backbone, HeadSpec(num_outputs=10))
    x = torch.rand(args.batch * args.steps, 784)
    y = torch.randint(0, 10, (len(x),))
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x[: args.batch]), y[: args.batch]).backward()
    step_flops = counter.get_total_flops()
    model.zero_grad()
    cfg = TrainConfig(epochs=2, batch_size=args.batch, threads=args.threads)
    empty = torch.zeros(0, 784)
    run = fit(model, create_strategy("full"), x, y, empty, torch.zeros(0, dtype=torch.long), cfg)
    second_epoch = run.history[1]["elapsed_seconds"] - run.history[0]["elapsed_seconds"]
    achieved = step_flops * args.steps / second_epoch / 1e9
    peak = matmul_peak()
    figures = {"step_gflop": step_flops / 1e9, "achieved_gflops": achieved, "matmul_peak_gflops": peak,
               "ratio": achieved / peak, "threads": args.threads, "batch": args.batch}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"MLP 784-2048-2048-10, batch {args.batch}, {args.threads} thread(s), {step_flops / 1e9:.1f} GFLOP per step\n")
    print("| measure | GFLOP/s |")
    print("|---|---:|")
    print(f"| transferlab training step (forward + backward + Adam) | {achieved:.1f} |")
    print(f"| fp32 matmul peak (2048², best of 5) | {peak:.1f} |")
    print(f"\nratio achieved / peak: {achieved / peak:.2f}")


if __name__ == "__main__":
    main()
