"""Benchmark: `--compile` (torch.compile) vs eager training, for the seed MLP and the cnn on MNIST-5k.

Per-epoch samples/s after the first epoch (which pays the compile), and the compile time itself.
The default stays eager unless compiled wins here.

    python benchmarks/compile.py [--epochs 3] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch

from transferlab.api import train_run
from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig
from transferlab.models import create_backbone
from transferlab.strategies import create_strategy

MODELS = {"mlp": {"hidden": [128], "dropout": 0.2}, "cnn": {}}


def _run(split, name: str, compiled: bool, epochs: int) -> tuple[float, float]:
    net = create_backbone(name, split.task.input_spec, **MODELS[name])
    cfg = TrainConfig(epochs=epochs, seed=0, threads=1, compile=compiled)
    _, run, _ = train_run(net, split, create_strategy("scratch"), cfg)
    times = [run.history[0]["elapsed_seconds"]] + [
        b["elapsed_seconds"] - a["elapsed_seconds"] for a, b in zip(run.history, run.history[1:])]
    steady = len(split.y_train) * (len(times) - 1) / sum(times[1:])
    return steady, times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = split_task(load_task("mnist5k"), shots=None, seed=0)
    rows = []
    for name in MODELS:
        eager, eager_first = _run(split, name, False, args.epochs)
        compiled, compiled_first = _run(split, name, True, args.epochs)
        rows.append({"backbone": name, "eager_samples_per_s": eager, "compiled_samples_per_s": compiled,
                     "ratio_compiled_over_eager": compiled / eager, "compile_seconds": compiled_first - eager_first})
    if args.json:
        print(json.dumps({"rows": rows}))
        return
    print(f"torch.compile vs eager, MNIST-5k, batch 32, 1 thread, steady-state epochs 2..{args.epochs}\n")
    print("| backbone | eager (samples/s) | compiled (samples/s) | compiled / eager | compile time (s) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backbone']} | {r['eager_samples_per_s']:,.0f} | {r['compiled_samples_per_s']:,.0f} | "
              f"{r['ratio_compiled_over_eager']:.2f} | {r['compile_seconds']:.1f} |")


if __name__ == "__main__":
    main()
