"""Statistics over a comparison grid: seed CIs, paired deltas vs scratch, verdicts, speed-ups, labels saved.

Pure numpy/scipy; nothing here imports torch. Every comparison against the baseline is paired by
seed: for one (shots, seed) all strategies saw the same training examples and the same test split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..jsonable import to_jsonable  # noqa: F401  (its home; re-exported for older imports)

Verdict = Literal["helps", "hurts", "no-difference"]

CELL_KEYS = (
    "strategy",
    "shots",
    "n_seeds",
    "mean",
    "ci_low",
    "ci_high",
    "delta_vs_scratch",
    "delta_ci_low",
    "delta_ci_high",
    "verdict",
    "train_seconds_mean",
    "time_to_scratch_accuracy_speedup",
)
"""Keys every cell of `summarize` carries (a contract with the report and the CLI)."""

_REQUIRED_RUN_KEYS = ("strategy", "shots", "seed", "test_accuracy")
BASELINE_NAME = "scratch"
SOURCE_ONLY = "source-only"  # the pretrained model with its source head (compare's reference at every budget)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95); got {confidence!r}")


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval over seeds: (mean, low, high).

    One value gives (value, nan, nan): a single seed says nothing about the spread.
    """
    from scipy import stats

    _check_confidence(confidence)
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value (one per seed); got an empty sequence")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"mean_ci needs finite values; got {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    if np.all(x == x[0]):
        v = float(x[0])  # no spread: return the value itself, free of rounding in the mean
        return v, v, v
    se = float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=x.size - 1)) * se
    return mean, mean - half, mean + half


def paired_delta(
    strategy_values: Sequence[float], scratch_values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of per-seed differences (strategy - scratch) and its t CI; inputs must be aligned by seed."""
    if len(strategy_values) != len(scratch_values):
        raise ValueError(
            f"paired_delta needs one strategy value per scratch value, aligned by seed; got "
            f"{len(strategy_values)} strategy values and {len(scratch_values)} scratch values"
        )
    diffs = np.asarray(strategy_values, dtype=float) - np.asarray(scratch_values, dtype=float)
    return mean_ci(diffs, confidence)


def verdict(ci_low: float | None, ci_high: float | None) -> Verdict:
    """'helps' if the whole CI of the delta is above 0, 'hurts' if below, else 'no-difference'."""
    # NaN/None (a single paired seed) compares False both ways, so it falls through to no-difference.
    if ci_low is not None and ci_low > 0:
        return "helps"
    if ci_high is not None and ci_high < 0:
        return "hurts"
    return "no-difference"


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


def _check_runs(runs: Sequence[Mapping[str, Any]]) -> None:
    if not runs:
        raise ValueError("summarize needs a non-empty list of finished runs; got none")
    for i, run in enumerate(runs):
        missing = [k for k in _REQUIRED_RUN_KEYS if k not in run]
        if missing:
            raise ValueError(f"run {i} lacks {missing}; every run needs {list(_REQUIRED_RUN_KEYS)}")
        shots = run["shots"]
        ok_int = isinstance(shots, int) and not isinstance(shots, bool) and shots >= 0
        if not (ok_int or shots == "all"):
            raise ValueError(f"run {i} has shots={shots!r}; allowed: an int ≥ 0 (labels per class) or 'all'")


def _vs_baseline(
    runs: list[Mapping[str, Any]], scratch: list[Mapping[str, Any]], confidence: float
) -> dict[str, Any]:
    """Delta, verdict and speed-up of one non-baseline cell, paired by seed with the baseline."""
    mine, base = _by_seed(runs, "strategy"), _by_seed(scratch, "scratch")
    seeds = sorted(mine.keys() & base.keys())
    d = d_lo = d_hi = None
    if seeds:
        ours, theirs = [mine[s]["test_accuracy"] for s in seeds], [base[s]["test_accuracy"] for s in seeds]
        d, d_lo, d_hi = paired_delta(ours, theirs, confidence)
    speed = scratch_accuracy_speedup(runs, scratch)
    return {
        "delta_vs_scratch": d, "delta_ci_low": d_lo, "delta_ci_high": d_hi, "verdict": verdict(d_lo, d_hi),
        "speedup": speed.speedup, "reach_fraction": speed.reach_fraction, "n_paired_seeds": len(seeds),
    }


def _vs_source_only(runs: list[Mapping[str, Any]], source_only: list[Mapping[str, Any]],
                    confidence: float) -> dict[str, Any]:
    """Delta and verdict against the source-only baseline (the pretrained model's own head), paired by seed."""
    mine, base = _by_seed(runs, "strategy"), _by_seed(source_only, SOURCE_ONLY)
    seeds = sorted(mine.keys() & base.keys())
    if not seeds:
        return {"delta_vs_source_only": None, "verdict_vs_source_only": None}
    d, lo, hi = paired_delta([mine[s]["test_accuracy"] for s in seeds], [base[s]["test_accuracy"] for s in seeds],
                             confidence)
    return {"delta_vs_source_only": d, "verdict_vs_source_only": verdict(lo, hi)}


def _cell(
    strategy: str, shots: int | str, runs: list[Mapping[str, Any]], scratch: list[Mapping[str, Any]],
    scratch_curve: dict[int, float], is_baseline: bool, confidence: float,
    source_only: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    mean, lo, hi = mean_ci([r["test_accuracy"] for r in runs], confidence)
    f1 = [r.get("macro_f1") for r in runs]
    f1_mean, f1_lo, f1_hi = (None, None, None) if any(v is None for v in f1) else mean_ci(f1, confidence)
    extra = _vs_source_only(runs, source_only, confidence) if source_only and strategy != SOURCE_ONLY else \
        {"delta_vs_source_only": None, "verdict_vs_source_only": None}
    if is_baseline:
        vs = {"delta_vs_scratch": 0.0, "delta_ci_low": None, "delta_ci_high": None, "verdict": "baseline",
              "speedup": 1.0, "reach_fraction": 1.0, "n_paired_seeds": len(runs)}
        needed = float(shots) if isinstance(shots, int) else None
    elif not scratch and shots == 0:  # no scratch without labels: the verdict is against source-only
        d_lo = d_hi = None
        if extra["delta_vs_source_only"] is not None:
            _, d_lo, d_hi = paired_delta(*_paired(runs, source_only or []), confidence)
        vs = {"delta_vs_scratch": None, "delta_ci_low": d_lo, "delta_ci_high": d_hi,
              "verdict": "baseline" if strategy == SOURCE_ONLY else (extra["verdict_vs_source_only"] or "no-difference"),
              "speedup": None, "reach_fraction": None, "n_paired_seeds": len(runs)}
        needed = labels_saved(scratch_curve, mean)
    else:
        vs = _vs_baseline(runs, scratch, confidence)
        needed = labels_saved(scratch_curve, mean) if isinstance(shots, int) else None
    verdict_baseline = SOURCE_ONLY if (shots == 0 and not scratch) else BASELINE_NAME
    cell = {
        "strategy": strategy, "shots": shots, "n_seeds": len(runs), "mean": mean, "ci_low": lo, "ci_high": hi,
        "delta_vs_scratch": vs["delta_vs_scratch"], "delta_ci_low": vs["delta_ci_low"],
        "delta_ci_high": vs["delta_ci_high"], "verdict": vs["verdict"],
        "train_seconds_mean": _mean_of(runs, "train_seconds"), "time_to_scratch_accuracy_speedup": vs["speedup"],
        "macro_f1_mean": f1_mean, "macro_f1_ci_low": f1_lo, "macro_f1_ci_high": f1_hi,
        "trainable_params": runs[0].get("trainable_params"), "total_params": runs[0].get("total_params"),
        "train_flops_mean": _mean_of(runs, "train_flops"), "reach_fraction": vs["reach_fraction"],
        "n_paired_seeds": vs["n_paired_seeds"], "scratch_labels_needed": needed,
        "labels_saved_per_class": None if needed is None or not isinstance(shots, int) else needed - shots,
        "verdict_baseline": verdict_baseline, **extra,
    }
    return {k: _num(v) if isinstance(v, float) else v for k, v in cell.items()}


def _paired(runs: Sequence[Mapping[str, Any]], base: Sequence[Mapping[str, Any]]) -> tuple[list[float], list[float]]:
    mine, theirs = _by_seed(runs, "strategy"), _by_seed(base, "baseline")
    seeds = sorted(mine.keys() & theirs.keys())
    return [mine[s]["test_accuracy"] for s in seeds], [theirs[s]["test_accuracy"] for s in seeds]


def _recommend(cells: list[dict[str, Any]], confidence: float) -> dict[str, Any]:
    best = max(cells, key=lambda c: c["mean"])  # ties: the first in cell order (baseline first)
    lo, hi = best["ci_low"], best["ci_high"]
    if lo is None or hi is None:
        pool = [best]
    else:
        pool = [c for c in cells if lo <= c["mean"] <= hi]

    def cost(c: dict[str, Any]) -> tuple[float, float]:
        flops, secs = c["train_flops_mean"], c["train_seconds_mean"]
        return (math.inf if flops is None else flops, math.inf if secs is None else secs)

    cheap = min(pool, key=cost)
    head = f"'{best['strategy']}' has the highest mean test accuracy ({best['mean']:.3f})"
    if lo is None:
        reason = f"{head}; with one seed it has no CI, so only it qualifies."
    elif cheap is best:
        reason = f"{head}; no cheaper strategy's mean lies within its {confidence:.0%} CI [{lo:.3f}, {hi:.3f}]."
    else:
        reason = (
            f"{head}; '{cheap['strategy']}' is the cheapest to train with a mean within its "
            f"{confidence:.0%} CI [{lo:.3f}, {hi:.3f}]."
        )
    best_name, cheap_name = best["strategy"], cheap["strategy"]
    return {"best": best_name, "best_mean": best["mean"], "cheapest_within_ci": cheap_name, "reason": reason}


def summarize(
    runs: Sequence[Mapping[str, Any]], *, baseline: str = "scratch", confidence: float = 0.95
) -> dict[str, Any]:
    """Turn finished runs of a comparison grid into cells (one per strategy × shots) and a recommendation.

    Cells are ordered by shots (ints ascending, then "all"), then by strategy (baseline first, the
    rest in order of first appearance). Deltas vs the baseline pair runs by seed: only seeds present
    for both the strategy and the baseline at that shots count. Undefined numbers (a CI from one
    seed, a speed-up never reached) are None, so the result is JSON-safe. `labels_saved_per_class`
    is scratch's interpolated labels needed minus this cell's shots (negative: the strategy costs
    labels); it is None for "all" cells.

    Example:
        >>> runs = [{"strategy": s, "shots": 5, "seed": k, "test_accuracy": a + 0.01 * k}
        ...         for s, a in [("scratch", 0.6), ("linear_probe", 0.8)] for k in range(3)]
        >>> out = summarize(runs)
        >>> [(c["strategy"], c["verdict"]) for c in out["cells"]]
        [('scratch', 'baseline'), ('linear_probe', 'helps')]
        >>> out["recommendation"]["5"]["best"]
        'linear_probe'
    """
    _check_confidence(confidence)
    _check_runs(runs)
    strategies = list(dict.fromkeys(r["strategy"] for r in runs))
    labelled = any(r["shots"] != 0 for r in runs)  # 0 labels: no scratch; the baseline there is source-only
    if baseline not in strategies and not labelled:
        strategies = [SOURCE_ONLY] + [s for s in strategies if s != SOURCE_ONLY] if SOURCE_ONLY in strategies else strategies
    elif baseline not in strategies:
        raise ValueError(
            f"no runs of the baseline strategy {baseline!r} among strategies {strategies}; {baseline} runs are "
            f"required to compare against — add {baseline!r} to the grid"
        )
    if baseline in strategies:
        strategies = [baseline] + [s for s in strategies if s != baseline]
    shots_seen = set(r["shots"] for r in runs)
    shots_order: list[int | str] = sorted(s for s in shots_seen if s != "all")
    shots_order += ["all"] if "all" in shots_seen else []

    groups: dict[tuple[str, int | str], list[Mapping[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["strategy"], r["shots"]), []).append(r)
    for (strategy, shots), group in groups.items():
        _by_seed(group, "strategy" if strategy != baseline else "scratch")  # reject duplicate seeds up front

    scratch_curve = {
        s: float(np.mean([r["test_accuracy"] for r in groups[(baseline, s)]]))
        for s in shots_order if isinstance(s, int) and (baseline, s) in groups
    }
    cells: list[dict[str, Any]] = []
    recommendation: dict[str, Any] = {}
    for shots in shots_order:
        scratch = groups.get((baseline, shots), [])
        source_only = groups.get((SOURCE_ONLY, shots), [])
        row = [
            _cell(s, shots, groups[(s, shots)], scratch, scratch_curve, s == baseline, confidence, source_only)
            for s in strategies if (s, shots) in groups
        ]
        cells.extend(row)
        recommendation[str(shots)] = _recommend(row, confidence)
    return to_jsonable({"cells": cells, "recommendation": recommendation})
