"""Benchmark: does keeping all-MiniLM-L6-v2's switched-off coordinate off cost full fine-tuning accuracy?

The text backbone pins its last LayerNorm's switched-off output coordinate (weight and bias ~1e-32;
models/pinning.py) so a fully fine-tuned model exports as a plain `BertForSequenceClassification`.
This runs `full` fine-tuning of MiniLM on TREC-6 (K labels per class, transferlab's seeded draw,
scored on the 500 test questions) twice per seed, on the same rows and seed: with the pin (today's
default) and without it (the backbone declares no pinned entries), alternating which goes first.
It prints test accuracy per run, the coordinate's largest |weight|, |bias| after training, whether
the pinned model exports as a plain BertForSequenceClassification (`--export`: the full export with
its 100-text parity check), the paired difference per seed with its mean, and a markdown table.

    nice -n 10 python benchmarks/switched_off.py [--shots 16] [--seeds 0,1,2] [--threads 1] [--export]

Training budget: as benchmarks/text_transfer.py's encoder runs (≥ 60 optimiser steps, ≥ 10 epochs,
validated every 5 epochs). Needs the text extra and ../shared/data/trec.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TREC = ROOT.parent / "shared" / "data" / "trec"


@contextlib.contextmanager
def unpinned():
    """The baseline: text backbones declare no pinned entries (training may turn the coordinate on)."""
    from transferlab.models.text import TextBackbone

    saved = TextBackbone.pinned_entries
    TextBackbone.pinned_entries = lambda self: {}
    try:
        yield
    finally:
        TextBackbone.pinned_entries = saved


def run(split, seed: int, pinned: bool, threads: int, export_dir: Path | None) -> dict:
    from transferlab.api import load
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    start = time.perf_counter()
    backbone = load("minilm").backbone
    off = backbone.switched_off_coordinates()
    cfg = TrainConfig(seed=seed, threads=threads, min_steps=60, eval_every=5)
    with contextlib.nullcontext() if pinned else unpinned():
        model, result, metrics = train_run(backbone, split, create_strategy("full"), cfg)
    norm = model.backbone.last_norm()
    size = max(float(norm.weight.detach()[off].abs().max()), float(norm.bias.detach()[off].abs().max()))
    row = {"seed": seed, "pinned": pinned, "accuracy": metrics["accuracy"], "coordinate": off, "max_abs": size,
           "kept": result.kept_switched_off, "seconds": time.perf_counter() - start}
    if export_dir is not None:
        row["export"] = export_plain(model, split, result, metrics, export_dir / f"seed{seed}")
    return row


def export_plain(model, split, result, metrics, folder: Path) -> str:
    """Save the model and export it with --format hf; which class transformers builds, and the parity."""
    import json

    from transferlab.api import load
    from transferlab.artifacts import save_model_folder
    from transferlab.engine.provenance import model_record
    from transferlab.export import export
    from transferlab.strategies import create_strategy

    info = model_record(split.task, split, result, metrics, threads=1, strategy=create_strategy("full"),
                        pretrained=load("minilm"))
    save_model_folder(folder / "model", backbone=model.backbone, head=model.head, head_spec=model.head_spec, info=info)
    got = export(folder / "model", folder / "hf", format="hf", progress=False)
    arch = json.loads((folder / "hf" / "config.json").read_text())["architectures"][0]
    return f"{arch}, parity {got.parity_max_abs_diff:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--export", action="store_true", help="export each pinned model with --format hf (parity check)")
    args = parser.parse_args()
    if not (TREC / "train.csv").is_file():
        print(f"skipped: {TREC} not found")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from transferlab.data import load_task, split_task

    task = load_task(str(TREC / "train.csv"), test_data=str(TREC / "test.csv"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
            split = split_task(task, shots=args.shots, seed=seed)
            for pinned in (True, False) if i % 2 == 0 else (False, True):  # alternate which arm goes first
                row = run(split, seed, pinned, args.threads, Path(scratch) if args.export and pinned else None)
                rows.append(row)
                print(f"seed {seed} {'pinned  ' if pinned else 'unpinned'} accuracy {row['accuracy']:.4f}  "
                      f"|coordinate {row['coordinate']}| ≤ {row['max_abs']:.2g}  {row['seconds']:.0f}s"
                      + (f"  export: {row['export']}" if "export" in row else ""), flush=True)
    seeds = sorted({r["seed"] for r in rows})
    acc = {(r["seed"], r["pinned"]): r for r in rows}
    diffs = [acc[(s, True)]["accuracy"] - acc[(s, False)]["accuracy"] for s in seeds]
    print(f"\nTREC-6, full fine-tuning of minilm, {args.shots} labels/class, {len(seeds)} seeds, test split (500)\n")
    print("| seed | pinned (default) | unpinned | pinned − unpinned | coordinate after training: pinned / unpinned |")
    print("|---|---|---|---|---|")
    for s, d in zip(seeds, diffs):
        p, u = acc[(s, True)], acc[(s, False)]
        print(f"| {s} | {p['accuracy']:.4f} | {u['accuracy']:.4f} | {d:+.4f} | {p['max_abs']:.1g} / {u['max_abs']:.2g} |")
    pa = np.mean([acc[(s, True)]["accuracy"] for s in seeds])
    ua = np.mean([acc[(s, False)]["accuracy"] for s in seeds])
    print(f"| **mean** | **{pa:.4f}** | **{ua:.4f}** | **{np.mean(diffs):+.4f}** | |")


if __name__ == "__main__":
    main()
