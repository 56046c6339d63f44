"""Speed-ups to scratch's accuracy and labels saved, per cell of a comparison grid (paired by seed).

Pure numpy; below statistics.py and grid_summary.py, which both use them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def time_to_accuracy(history: Sequence[Mapping[str, Any]], target: float) -> float | None:
    """Elapsed seconds at the first validation epoch with val_accuracy >= target; None if never."""
    for entry in history:
        if entry["val_accuracy"] >= target:
            return float(entry["elapsed_seconds"])
    return None


@dataclass(frozen=True)
class ScratchAccuracySpeedup:
    """How much sooner a strategy reaches scratch's best val accuracy, over paired seeds.

    speedup: geometric mean of scratch_time / strategy_time over the seeds where the strategy
        reached the target (None if it reached it in none).
    reach_fraction: fraction of the compared seeds where the strategy reached it (None if no seed
        could be compared).
    n_seeds: seeds compared (present in both, with scratch reaching its own target in its history).
    """

    speedup: float | None
    reach_fraction: float | None
    n_seeds: int


def _by_seed(runs: Iterable[Mapping[str, Any]], who: str) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for run in runs:
        seed = run["seed"]
        if seed in out:
            raise ValueError(
                f"two {who} runs share seed {seed!r} (strategy {run.get('strategy')!r}, shots {run.get('shots')!r}); "
                "each (strategy, shots, seed) must appear once — drop the duplicate"
            )
        out[seed] = run
    return out


def scratch_accuracy_speedup(
    strategy_runs: Iterable[Mapping[str, Any]], scratch_runs: Iterable[Mapping[str, Any]]
) -> ScratchAccuracySpeedup:
    """Speed-up to scratch's best val accuracy and the fraction of seeds that got there, paired by seed.

    Per seed the target is the scratch run's best `val_accuracy`; scratch's time is when its own
    history first reaches it. Seeds without a scratch time are not compared; a reached seed whose
    times are not both positive counts towards reach_fraction but not the geometric mean.
    """
    strat = _by_seed(strategy_runs, "strategy")
    scratch = _by_seed(scratch_runs, "scratch")
    ratios: list[float] = []
    compared = reached = 0
    for seed in strat.keys() & scratch.keys():
        target = scratch[seed].get("val_accuracy")
        t_scratch = None if target is None else time_to_accuracy(scratch[seed].get("history") or [], target)
        if t_scratch is None:
            continue
        compared += 1
        t_strat = time_to_accuracy(strat[seed].get("history") or [], target)
        if t_strat is None:
            continue
        reached += 1
        if t_strat > 0 and t_scratch > 0:
            ratios.append(t_scratch / t_strat)
    speedup = float(np.exp(np.mean(np.log(ratios)))) if ratios else None
    return ScratchAccuracySpeedup(speedup, reached / compared if compared else None, compared)


def time_to_scratch_accuracy_speedup(
    strategy_runs: Iterable[Mapping[str, Any]], scratch_runs: Iterable[Mapping[str, Any]]
) -> float | None:
    """Geometric-mean speed-up to scratch's best val accuracy (see `scratch_accuracy_speedup`)."""
    return scratch_accuracy_speedup(strategy_runs, scratch_runs).speedup


def labels_saved(scratch_curve: Mapping[int | str, float], strategy_accuracy: float) -> float | None:
    """Labels per class scratch needs to reach `strategy_accuracy`, interpolated in log(shots).

    The curve is made monotone with a running max; "all" (any non-int key) is ignored. Returns the
    smallest measured shots if scratch already reaches the accuracy there, None if it never does.
    """
    points = sorted((k, float(v)) for k, v in scratch_curve.items() if isinstance(k, int) and not isinstance(k, bool))
    if any(k <= 0 for k, _ in points):
        raise ValueError(f"scratch_curve shots must be positive labels per class; got {[k for k, _ in points]}")
    if not points:
        return None
    shots = np.array([k for k, _ in points], dtype=float)
    acc = np.maximum.accumulate(np.array([v for _, v in points]))
    if strategy_accuracy <= acc[0]:
        return float(shots[0])
    if strategy_accuracy > acc[-1]:
        return None
    i = int(np.argmax(acc >= strategy_accuracy))  # first point reaching it; acc[i-1] < target <= acc[i]
    frac = (strategy_accuracy - acc[i - 1]) / (acc[i] - acc[i - 1])
    return float(np.exp(np.log(shots[i - 1]) + frac * (np.log(shots[i]) - np.log(shots[i - 1]))))


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mean_of(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    vals = [r.get(key) for r in runs]
    return None if any(v is None for v in vals) else float(np.mean(vals))
