"""Benchmark: transferlab's `setfit` strategy against the SetFit library (PyPI `setfit`) on TREC-6.

Both start from the same all-MiniLM-L6-v2 folder and train on the same K examples per class (the
rows transferlab's `split_task` draws for each seed); both score the same 500-question test split.
Runs alternate (transferlab, library) per seed in one process, with the same torch thread count.
Both use the recipe's settings: 20 pair iterations per example, pair batch 16, one pair epoch,
learning rate 2e-5. transferlab's `setfit` defaults follow the library's recipe (its oversampling
pair sampler: 2 x 20 x examples pairs, AdamW with weight decay 0.01, 10% warm-up then linear decay,
gradient clipping at 1, a scikit-learn LogisticRegression head); `--max-pairs` caps its pairs.

    python benchmarks/setfit_library.py [--shots 8,16] [--seeds 0,1,2] [--threads 1] [--max-pairs N]
        [--only transferlab|library] [--json] [--merge LOG ... [--merge-only transferlab|library]] [--no-run]

Runs can be split over invocations (one implementation, some seeds each) and put together with
`--merge` (the logs of earlier invocations, also interrupted ones) and `--no-run`.

Needs `setfit` importable (install it into a separate environment: it pulls `datasets`) beside
the text extra, and ../shared/data/trec. Prints per-seed rows, means, the accuracy difference
and the time ratio (library / transferlab), a markdown table, and per labels/class the paired
per-seed differences (transferlab − library) with their mean and 95% t interval.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TREC = ROOT.parent / "shared" / "data" / "trec"


def run_transferlab(split, seed: int, max_pairs: int | None) -> tuple[float, float]:
    """Test accuracy and wall seconds (pairs, embeddings, head, test) of transferlab's setfit."""
    from transferlab.api import load
    from transferlab.engine import TrainConfig
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    start = time.perf_counter()
    backbone = load("minilm").backbone
    strategy = create_strategy("setfit", iterations=20, max_pairs=max_pairs)  # the rest: the library's recipe
    _, _, metrics = train_run(backbone, split, strategy, TrainConfig(seed=seed, threads=torch.get_num_threads()))
    return metrics["accuracy"], time.perf_counter() - start


def run_library(split, seed: int) -> tuple[float, float]:
    """Test accuracy and wall seconds of setfit.Trainer on the same rows (LogisticRegression head)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transferlab.models.text import minilm_path

    task = split.task
    start = time.perf_counter()
    model = SetFitModel.from_pretrained(str(minilm_path()), local_files_only=True)
    train = Dataset.from_dict({"text": [str(t) for t in split.x_train], "label": split.y_train.tolist()})
    args = TrainingArguments(batch_size=16, num_epochs=1, num_iterations=20, body_learning_rate=2e-5, seed=seed,
                             report_to="none", show_progress_bar=False, save_strategy="no", logging_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=train)
    trainer.train()
    pred = np.asarray(model.predict([str(t) for t in task.x_test], batch_size=64, show_progress_bar=False))
    return float((pred == task.y_test).mean()), time.perf_counter() - start


def earlier_rows(path: Path) -> list[dict]:
    """The per-run rows of an earlier invocation: its --json line, or else its per-run lines (an interrupted run)."""
    lines = path.read_text().splitlines()
    for line in reversed(lines):
        if line.startswith("{") and '"rows"' in line:
            return json.loads(line)["rows"]
    pattern = re.compile(r"^shots +(\d+) seed (\d+) +(transferlab|setfit library) +accuracy ([\d.]+) +([\d.]+)s$")
    rows = [{"shots": int(m[1]), "seed": int(m[2]), "who": m[3], "accuracy": float(m[4]), "seconds": float(m[5])}
            for m in map(pattern.match, lines) if m]
    if not rows:
        raise SystemExit(f"{path}: no rows of this benchmark in it")
    return rows


def paired_differences(rows: list[dict]) -> list[dict]:
    """Per labels/class: transferlab − library accuracy on each seed both ran (same training rows), the
    mean difference and its 95% Student-t interval over seeds."""
    from scipy import stats

    out = []
    for shots in sorted({r["shots"] for r in rows}):
        acc = {(r["who"], r["seed"]): r["accuracy"] for r in rows if r["shots"] == shots}
        seeds = sorted(s for who, s in acc if who == "transferlab" and ("setfit library", s) in acc)
        diffs = [acc[("transferlab", s)] - acc[("setfit library", s)] for s in seeds]
        if len(diffs) < 2:
            continue
        mean, sem = statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs))
        half = stats.t.ppf(0.975, len(diffs) - 1) * sem
        out.append({"shots": shots, "seeds": len(diffs), "per_seed": diffs, "mean": mean,
                    "ci_low": mean - half, "ci_high": mean + half})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", default="8,16")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-pairs", type=int, default=None,
                        help="cap transferlab's pairs (default: none, 2 x 20 x examples like the library)")
    parser.add_argument("--only", choices=("transferlab", "library"), default=None,
                        help="run one implementation (the other's runs can come from an earlier invocation: same rows, same seeds)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--merge", nargs="*", default=[], metavar="LOG",
                        help="also read the rows of earlier runs (logs or files holding this benchmark's --json line)")
    parser.add_argument("--merge-only", choices=("transferlab", "library"), default=None,
                        help="take only this implementation's rows from --merge (e.g. the library's from an earlier session)")
    parser.add_argument("--no-run", action="store_true", help="run nothing: tables of the --merge rows only")
    args = parser.parse_args()
    if not (TREC / "train.csv").is_file():
        print(f"skipped: {TREC} not found")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    from transferlab.data import load_task, split_task

    task = load_task(str(TREC / "train.csv"), test_data=str(TREC / "test.csv"))
    keep = {None: ("transferlab", "setfit library"), "transferlab": ("transferlab",), "library": ("setfit library",)}
    rows = [row for path in args.merge for row in earlier_rows(Path(path)) if row["who"] in keep[args.merge_only]]
    for shots in [] if args.no_run else [int(s) for s in args.shots.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            split = split_task(task, shots=shots, seed=seed)
            arms = (("transferlab", lambda: run_transferlab(split, seed, args.max_pairs)),
                    ("setfit library", lambda: run_library(split, seed)))
            for who, fn in arms:
                if args.only is not None and who != {"transferlab": "transferlab", "library": "setfit library"}[args.only]:
                    continue
                acc, seconds = fn()
                rows.append({"shots": shots, "seed": seed, "who": who, "accuracy": acc, "seconds": seconds})
                print(f"shots {shots:3d} seed {seed}  {who:15s} accuracy {acc:.4f}  {seconds:7.1f}s", flush=True)
    table = ["| labels/class | implementation | test accuracy (mean ± sd) | seconds per run (mean) | time vs transferlab |",
             "|---|---|---|---|---|"]
    summary = []
    for shots in sorted({r["shots"] for r in rows}):
        ours = [r for r in rows if r["shots"] == shots and r["who"] == "transferlab"]
        base_s = statistics.mean(r["seconds"] for r in ours) if ours else math.nan
        for who in ("transferlab", "setfit library"):
            sel = [r for r in rows if r["shots"] == shots and r["who"] == who]
            if not sel:
                continue
            accs = [r["accuracy"] for r in sel]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            secs = statistics.mean(r["seconds"] for r in sel)
            summary.append({"shots": shots, "who": who, "accuracy_mean": statistics.mean(accs), "accuracy_sd": sd,
                            "seconds_mean": secs, "time_ratio": secs / base_s, "seeds": len(sel)})
            table.append(f"| {shots} | {who} | {statistics.mean(accs):.4f} ± {sd:.4f} | {secs:.1f} | {secs / base_s:.2f}× |")
    print("\n".join(table))
    paired = paired_differences(rows)
    for p in paired:
        print(f"{p['shots']} labels/class: transferlab − library over {p['seeds']} paired seeds: {p['mean']:+.4f} "
              f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] (95% t interval; per seed {', '.join(f'{d:+.3f}' for d in p['per_seed'])})")
    summary.extend({"paired": p} for p in paired)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}))


if __name__ == "__main__":
    main()
