"""Benchmark: cold start of `transferlab evaluate` / `predict` on a small image model (a cnn, 100 images).

A fresh interpreter runs each command; alternating with it, the baseline runs the unavoidable part in a
fresh interpreter too: importing torch, reading the safetensors weights and running the same network on
the same images. The overhead is command − baseline (median over rounds): what transferlab adds beyond
the model's compute. `python -X importtime` of `evaluate` lists which heavy optional libraries it imports
(none should be: torchmetrics, scipy, scikit-learn, matplotlib, transformers are imported only where used).

    nice -n 10 python benchmarks/cold_start.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torchmetrics", "scipy", "sklearn", "matplotlib", "transformers", "sentence_transformers", "PIL", "mlxtend")

BASELINE = """
import sys, numpy as np, torch
from safetensors.torch import load_file
torch.set_num_threads(1)
tensors = load_file(sys.argv[1] + "/model.safetensors")
x = torch.from_numpy(np.load(sys.argv[2])["x"]).float().unsqueeze(1) / 255
net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                          torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                          torch.nn.Flatten(), torch.nn.LazyLinear(64), torch.nn.ReLU(), torch.nn.LazyLinear(4))
with torch.inference_mode():
    net(x).argmax(1)
print(len(tensors))
"""


def _make_model(folder: Path) -> tuple[Path, Path]:
    import numpy as np

    from transferlab import api
    from transferlab.engine import TrainConfig

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    x = rng.integers(0, 60, (200, 16, 16)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, c * 4 : (c + 1) * 4] = 220
    np.savez(folder / "data.npz", x=x, y=y)
    np.savez(folder / "new.npz", x=x[:100])
    api.pretrain(str(folder / "data.npz"), backbone="cnn", out=folder / "src", train=TrainConfig(epochs=1), progress=False)
    api.finetune(folder / "src", str(folder / "data.npz"), out=folder / "tgt", train=TrainConfig(epochs=1), progress=False)
    return folder / "tgt", folder / "new.npz"


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tl-cold-"))
    env = dict(os.environ, TRANSFERLAB_HOME=str(folder / "store"), PYTHONPATH=str(ROOT / "src"))
    model, new = _make_model(folder)
    commands = {
        "baseline (torch + weights + forward)": [sys.executable, "-c", BASELINE, str(model), str(new)],
        "transferlab evaluate": [sys.executable, "-m", "transferlab", "evaluate", str(model), "--quiet"],
        "transferlab predict": [sys.executable, "-m", "transferlab", "predict", str(model), str(new), "--quiet"],
    }
    seconds: dict[str, list[float]] = {k: [] for k in commands}
    for r in range(args.rounds):
        for name in (list(commands) if r % 2 == 0 else list(reversed(commands))):
            seconds[name].append(_timed(commands[name], env))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in seconds.items()), flush=True)
    trace = subprocess.run([sys.executable, "-X", "importtime", "-m", "transferlab", "evaluate", str(model), "--quiet"],
                           env=env, capture_output=True, text=True, check=True).stderr
    imported = sorted({line.split("|")[-1].strip().split(".")[0] for line in trace.splitlines() if "|" in line})
    heavy = [m for m in HEAVY if m in imported]
    base = statistics.median(seconds["baseline (torch + weights + forward)"])
    table = ["| command | wall s (median) | beyond the baseline |", "|---|---|---|"]
    for name, secs in seconds.items():
        extra = "—" if name.startswith("baseline") else f"{statistics.median(secs) - base:+.2f} s"
        table.append(f"| {name} | {statistics.median(secs):.2f} | {extra} |")
    print("\n".join(table))
    print(f"heavy optional libraries imported by evaluate: {heavy or 'none'}")
    if args.json:
        print(json.dumps({"seconds": seconds, "heavy_imports": heavy}))


if __name__ == "__main__":
    main()
