"""Benchmark: 1 vs 2 torch threads for transferlab's training, idle and with the other core busy.

The evidence for the default thread policy (engine/runtime.py: DEFAULT_THREADS). Settings
alternate within one process; "loaded" runs a busy-looping process beside the trainer, as on a
shared CI box. Reports samples/s and the ratio 2 threads / 1 thread for the seed MLP and the cnn.

    python benchmarks/threads.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics

import torch

from transferlab.api import train_run
from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig
from transferlab.models import create_backbone
from transferlab.strategies import create_strategy

MODELS = {"mlp": {"hidden": [128], "dropout": 0.2}, "cnn": {}}


def _busy(stop) -> None:
    x = 0
    while not stop.is_set():
        x += 1


def _speed(split, backbone: str, threads: int) -> float:
    net = create_backbone(backbone, split.task.input_spec, **MODELS[backbone])
    cfg = TrainConfig(epochs=2, batch_size=32, threads=threads)
    _, run, _ = train_run(net, split, create_strategy("scratch"), cfg)
    return run.samples_seen / run.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    split = split_task(load_task("mnist5k"), shots=None, seed=0)
    rows = []
    for load in ("idle", "loaded"):
        stop = mp.Event()
        busy = mp.Process(target=_busy, args=(stop,)) if load == "loaded" else None
        if busy:
            busy.start()
        try:
            for backbone in MODELS:
                speeds: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.rounds):
                    for threads in (1, 2):
                        speeds[threads].append(_speed(split, backbone, threads))
                one, two = statistics.median(speeds[1]), statistics.median(speeds[2])
                rows.append({"load": load, "backbone": backbone, "samples_per_s_1": one, "samples_per_s_2": two,
                             "ratio_2_over_1": two / one})
        finally:
            if busy:
                stop.set()
                busy.join()
    torch.set_num_threads(1)
    if args.json:
        print(json.dumps({"rows": rows}))
        return
    print(f"training throughput, median of {args.rounds} alternating rounds (MNIST-5k, batch 32)\n")
    print("| machine | backbone | 1 thread (samples/s) | 2 threads (samples/s) | 2 / 1 |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['load']} | {r['backbone']} | {r['samples_per_s_1']:,.0f} | {r['samples_per_s_2']:,.0f} | {r['ratio_2_over_1']:.2f} |")


if __name__ == "__main__":
    main()
