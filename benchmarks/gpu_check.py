"""GPU check: the end-to-end path (pretrain → finetune → evaluate → predict) on CUDA and on the CPU, same settings.

Pretrains the cnn on MNIST-5k, fine-tunes it on the UCI digits framed like MNIST, evaluates and
predicts, once per device (and once more in bf16 on CUDA), in a temporary folder that is removed
afterwards. Prints training samples/s per device and the ratio against the CPU run, and the test
accuracies (which should agree closely). Run it through benchmarks/gpu_check.sh, which stops with a
clear message on a machine without a GPU.

    python benchmarks/gpu_check.py [--epochs 5] [--batch-size 256] [--cpu-threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import transferlab
from transferlab import TrainConfig


def _path(device: str, precision: str, folder: Path, args: argparse.Namespace) -> dict:
    threads = args.cpu_threads if device == "cpu" else 1
    src, tgt = folder / f"src-{device}-{precision}", folder / f"tgt-{device}-{precision}"
    cfg = dict(batch_size=args.batch_size, seed=0, threads=threads, device=device, precision=precision)
    pre = transferlab.pretrain("mnist5k", backbone="cnn", out=src, train=TrainConfig(epochs=args.epochs, **cfg))
    pre_n = json.loads((src / "config.json").read_text())["source_task"]["n_train"] * pre.epochs
    ft = transferlab.finetune(src, "digits", strategy="full", image_size=28, image_margin=4, out=tgt,
                              train=TrainConfig(epochs=args.epochs, **cfg))
    ev = transferlab.evaluate(tgt)
    x = np.random.default_rng(0).uniform(size=(64, 8, 8)).astype(np.float32)
    start = time.perf_counter()
    rows = transferlab.predict(tgt, x)
    predict_s = time.perf_counter() - start
    recorded = json.loads((tgt / "config.json").read_text())["training"]["train"]["device"]
    return {"device": device, "precision": precision, "threads": threads, "recorded_device": recorded,
            "pretrain_samples_per_s": pre_n / pre.train_seconds, "finetune_samples_per_s": ft.samples_seen / ft.train_seconds,
            "source_test_accuracy": pre.test_accuracy, "target_test_accuracy": ft.test_accuracy,
            "evaluate_accuracy": ev.test_accuracy, "predictions": len(rows), "predict_seconds": predict_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cpu-threads", type=int, default=os.cpu_count() or 1, help="threads of the CPU run (default: all cores)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU is visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); "
              "run this on a machine with an NVIDIA GPU and a CUDA build of torch", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="transferlab-gpu-check-") as tmp:
        runs = [_path(d, p, Path(tmp), args) for d, p in (("cpu", "fp32"), ("cuda", "fp32"), ("cuda", "bf16"))]
    cpu = runs[0]
    for run in runs:
        run["pretrain_ratio_vs_cpu"] = run["pretrain_samples_per_s"] / cpu["pretrain_samples_per_s"]
        run["finetune_ratio_vs_cpu"] = run["finetune_samples_per_s"] / cpu["finetune_samples_per_s"]
    if args.json:
        print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "runs": runs}))
        return 0
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; cnn, mnist5k → digits, "
          f"{args.epochs} epochs each, batch {args.batch_size}\n")
    print("| device | precision | threads | pretrain samples/s | × CPU | finetune samples/s | × CPU "
          "| source test acc | target test acc |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(f"| {r['recorded_device']} | {r['precision']} | {r['threads']} | {r['pretrain_samples_per_s']:,.0f} "
              f"| {r['pretrain_ratio_vs_cpu']:.2f} | {r['finetune_samples_per_s']:,.0f} | {r['finetune_ratio_vs_cpu']:.2f} "
              f"| {r['source_test_accuracy']:.4f} | {r['target_test_accuracy']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
