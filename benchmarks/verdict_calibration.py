"""Calibration of compare's verdicts: false helps/hurts under the null, power at a known effect.

Real runs first (cheap, CPU): an MLP pretrained on USPS (8×8), then on the UCI digits test split
(the same for every run) at 1 and 5 labels per class, for each of N seeds (the same labelled
examples for every arm of a seed):

- `scratch` (initialised with the seed) and `scratch-b` (the same labelled examples, another
  initialisation): a strategy compared with itself, so the true Δ is 0;
- `linear-probe`: a large, known gain over scratch.

Each run's predicted class per test example is kept. Then a simulated world built from those real
predictions: a repetition draws n seeds (with replacement) from the N real ones and a test split of
the same size (with replacement) from the real test examples, and compares two arms paired by seed
and test example. Under the null, each drawn seed's arms are swapped with probability ½, so the
world's true Δ is exactly 0; for the effect pair the truth is the world's mean Δ over every real
seed and test example. For each repetition we record the verdict of

- the old method: a Student-t interval over the seeds' accuracies, helps/hurts when it excludes 0
  (with `auto`: the same test re-applied at 3, 5, 10, 20 seeds, stopping at the first decision);
- the new method (compare/verdicts.py): seed + test-split noise, inconclusive/no-difference with
  a ±0.02 margin, and `--seeds auto` as a group-sequential design with Bonferroni alpha spending.

    python benchmarks/verdict_calibration.py [--seeds-pool 40] [--repetitions 500] [--cache DIR]

Prints a markdown table: false helps/hurts rate under the null (nominal ≤ 5%), power at the known
effect (the rate of the verdict with the effect's sign), and the mean number of seeds used.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from pathlib import Path

import numpy as np

USPS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "usps" / "usps.npz"
SHOTS = (1, 5)
ARMS = ("scratch", "scratch-b", "linear-probe")
FIXED = (3, 5, 10)
MAX_SEEDS = 20


def collect(cache: Path, n_seeds: int) -> dict[str, np.ndarray]:
    """Run (or load) the real runs: predictions[arm][shots] of shape (seeds, test examples)."""
    path = cache / f"calibration_runs_{n_seeds}.npz"
    if path.is_file():
        return dict(np.load(path))
    import torch

    from transferlab import TrainConfig, pretrain
    from transferlab.api import load
    from transferlab.data import load_task, split_task
    from transferlab.engine import FeatureCache
    from transferlab.engine.run import train_run
    from transferlab.strategies import create_strategy

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        pretrain(str(USPS.resolve()), backbone="mlp", backbone_config={"hidden": [128, 64]}, image_size=8,
                 out=Path(tmp) / "src", train=TrainConfig(epochs=15, threads=1))
        source = load(Path(tmp) / "src")
    task = load_task("digits", image_size=8)
    cache_features = FeatureCache()
    out: dict[str, np.ndarray] = {"labels": np.asarray(task.y_test, dtype=np.int64)}
    start = time.perf_counter()
    for shots in SHOTS:
        preds: dict[str, list[list[int]]] = {a: [] for a in ARMS}
        for seed in range(n_seeds):
            split = split_task(task, shots=shots, seed=seed)
            for arm in ARMS:
                name = "scratch" if arm.startswith("scratch") else arm
                init = seed + 100_000 if arm == "scratch-b" else seed  # same labels, another initialisation
                cfg = TrainConfig(lr=1e-2, seed=init, threads=1)
                _, run, _ = train_run(copy.deepcopy(source.backbone), split, create_strategy(name), cfg,
                                      cache=cache_features, cache_key=source.config["weights"]["sha256"])
                preds[arm].append(run.test_predictions)
            print(f"  {shots} shots, seed {seed + 1}/{n_seeds} ({time.perf_counter() - start:.0f} s)", flush=True)
        for arm in ARMS:
            out[f"{arm}@{shots}"] = np.asarray(preds[arm], dtype=np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def old_verdict(diffs: np.ndarray) -> str:
    from transferlab.compare.statistics import mean_ci

    _, lo, hi = mean_ci(diffs)
    return "helps" if lo > 0 else "hurts" if hi < 0 else "no-difference"


def new_verdicts(a: np.ndarray, b: np.ndarray, y: np.ndarray, k: int, max_seeds: int | None, rep: int) -> tuple[str, int]:
    """The verdict compare would give (arm a vs arm b) and the seeds it used: the code path of summarize."""
    from transferlab.compare.metrics import example_weights
    from transferlab.compare.verdicts import REPLICATES, Analysis, Comparison, _Arm, _TestSplit, decide

    split = _TestSplit(y, k, example_weights(len(y), REPLICATES, seed=rep))
    runs = [{"seed": s} for s in range(len(a))]
    arm_a = _Arm(runs, (a == y).mean(1), a)
    arm_b = _Arm(runs, (b == y).mean(1), b)
    comp = Comparison(arm_a, arm_b, list(range(len(a))), "accuracy", split)
    decide([comp], Analysis(correction="holm", max_seeds=max_seeds))
    return comp.verdict, comp.n


def simulate(data: dict[str, np.ndarray], shots: int, pair: tuple[str, str], reps: int, rng: np.random.Generator,
             null: bool) -> dict[str, dict[str, float]]:
    y_all = data["labels"]
    a_all, b_all = data[f"{pair[0]}@{shots}"], data[f"{pair[1]}@{shots}"]
    n_pool, m = a_all.shape
    k = int(max(y_all.max(), a_all.max(), b_all.max()) + 1)
    counts: dict[str, dict[str, float]] = {}

    def tally(method: str, verdict: str, seeds: int) -> None:
        c = counts.setdefault(method, {"helps": 0, "hurts": 0, "no-difference": 0, "inconclusive": 0, "seeds": 0})
        c[verdict] += 1
        c["seeds"] += seeds

    for rep in range(reps):
        seeds = rng.integers(0, n_pool, MAX_SEEDS)
        examples = rng.integers(0, m, m)
        a, b = a_all[seeds][:, examples], b_all[seeds][:, examples]
        if null:  # exchangeable arms: swap each seed's pair with probability ½, so the true Δ is exactly 0
            swap = rng.random(MAX_SEEDS) < 0.5
            a, b = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)
        y = y_all[examples]
        diffs = (a == y).mean(1) - (b == y).mean(1)
        for n in FIXED:
            tally(f"old, {n} seeds", old_verdict(diffs[:n]), n)
            tally(f"new, {n} seeds", *new_verdicts(a[:n], b[:n], y, k, None, rep))
        for n in (3, 5, 10, 20):  # the old test re-applied as seeds are added: optional stopping
            v = old_verdict(diffs[:n])
            if v != "no-difference" or n == 20:
                tally("old, auto (re-tested at 3/5/10/20)", v, n)
                break
        tally("new, auto (max 20)", *new_verdicts(a, b, y, k, MAX_SEEDS, rep))
    return {method: {key: value / reps for key, value in c.items()} for method, c in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds-pool", type=int, default=40, help="real seeds run per arm and budget")
    parser.add_argument("--repetitions", type=int, default=500)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "transferlab-calibration")
    args = parser.parse_args()
    start = time.perf_counter()
    data = collect(args.cache, args.seeds_pool)
    print(f"real runs ready ({time.perf_counter() - start:.0f} s); test split of {len(data['labels'])} examples\n")
    rng = np.random.default_rng(0)
    rows = []
    for shots in SHOTS:
        acc = {arm: float((data[f"{arm}@{shots}"] == data["labels"]).mean()) for arm in ARMS}
        effect = acc["linear-probe"] - acc["scratch"]
        null = simulate(data, shots, ("scratch", "scratch-b"), args.repetitions, rng, null=True)
        power = simulate(data, shots, ("linear-probe", "scratch"), args.repetitions, rng, null=False)
        right = "helps" if effect > 0 else "hurts"  # the verdict that names the known effect correctly
        for method in null:
            rows.append((shots, effect, method, null[method], power[method] | {"power": power[method][right]}))
        print(f"{shots} shots done: world accuracy scratch {acc['scratch']:.3f}, scratch-b {acc['scratch-b']:.3f}, "
              f"linear-probe {acc['linear-probe']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    se = math.sqrt(0.05 * 0.95 / args.repetitions)
    print(f"\n{args.repetitions} repetitions per cell (a 5% rate is measured ± {1.96 * se:.1%}); "
          f"real seeds in the pool: {args.seeds_pool}\n")
    print("| shots | true Δ (probe − scratch) | method | null: false helps | null: false hurts | null: false total | "
          "null: no-difference | null: mean seeds | effect: power (right sign) | effect: wrong sign | effect: mean seeds |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shots, effect, method, n, p in rows:
        print(f"| {shots} | {effect:+.3f} | {method} | {n['helps']:.1%} | {n['hurts']:.1%} | "
              f"{n['helps'] + n['hurts']:.1%} | {n['no-difference']:.1%} | {n['seeds']:.1f} | {p['power']:.1%} | "
              f"{p['helps'] + p['hurts'] - p['power']:.1%} | {p['seeds']:.1f} |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
