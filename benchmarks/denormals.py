"""Benchmark: torch.set_flush_denormal(True) on MNIST-like sparse inputs (mostly exact zeros).

Denormal (subnormal) floats can make x86 arithmetic many times slower; flushing them to zero
avoids that at a tiny loss of precision near 0. This trains the seed MLP and the cnn on MNIST-5k
with the flag off and on, alternating, and reports samples/s and the ratio on/off, plus how many
denormal values the trained weights and activations actually hold.

    python benchmarks/denormals.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from transferlab.api import train_run
from transferlab.data import load_task, split_task
from transferlab.engine import TrainConfig
from transferlab.models import create_backbone
from transferlab.strategies import create_strategy

MODELS = {"mlp": {"hidden": [128], "dropout": 0.2}, "cnn": {}}


def _denormal_fraction(model: torch.nn.Module) -> float:
    tiny = torch.finfo(torch.float32).tiny
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float(((values != 0) & (values.abs() < tiny)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = split_task(load_task("mnist5k"), shots=None, seed=0)
    zeros = float((split.x_train == 0).mean())
    rows = []
    for name, config in MODELS.items():
        speed: dict[bool, list[float]] = {False: [], True: []}
        fraction = 0.0
        for _ in range(args.rounds):
            for flush in (False, True):
                torch.set_flush_denormal(flush)
                net = create_backbone(name, split.task.input_spec, **config)
                model, run, _ = train_run(net, split, create_strategy("scratch"), TrainConfig(epochs=2, seed=0, threads=1))
                speed[flush].append(run.samples_seen / run.train_seconds)
                if not flush:
                    fraction = _denormal_fraction(model)
        torch.set_flush_denormal(False)
        off, on = statistics.median(speed[False]), statistics.median(speed[True])
        rows.append({"backbone": name, "samples_per_s_off": off, "samples_per_s_on": on, "ratio_on_over_off": on / off,
                     "denormal_weight_fraction": fraction})
    if args.json:
        print(json.dumps({"rows": rows, "zero_pixel_fraction": zeros}))
        return
    print(f"flush-denormal on MNIST-5k ({zeros:.0%} of input pixels are exactly 0), median of {args.rounds} rounds, 1 thread\n")
    print("| backbone | off (samples/s) | on (samples/s) | on / off | denormal weights after training |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backbone']} | {r['samples_per_s_off']:,.0f} | {r['samples_per_s_on']:,.0f} | {r['ratio_on_over_off']:.3f} | "
              f"{r['denormal_weight_fraction']:.2e} |")


if __name__ == "__main__":
    main()
