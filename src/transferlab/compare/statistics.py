"""Statistics over a comparison grid: seed CIs, paired deltas vs scratch, verdicts, speed-ups, labels saved.

Pure numpy/scipy; nothing here imports torch. Every comparison against the baseline is paired by
seed: for one (shots, seed) all strategies saw the same training examples and the same test split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ..jsonable import to_jsonable  # noqa: F401  (its home; re-exported for older imports)
from .speedups import (  # noqa: F401  (their home; re-exported: summarize's cells are built from them)
    ScratchAccuracySpeedup,
    _by_seed,
    _mean_of,
    _num,
    labels_saved,
    scratch_accuracy_speedup,
    time_to_accuracy,
    time_to_scratch_accuracy_speedup,
)

Verdict = Literal["helps", "hurts", "no-difference", "inconclusive"]

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
    "metric",
    "decided",
    "seeds_needed",
    "majority_rate",
    "balanced_accuracy",
    "accuracy_mean",
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


def verdict(ci_low: float | None, ci_high: float | None, margin: float = 0.02) -> Verdict:
    """'helps' if the whole CI of the delta is above 0, 'hurts' if below, 'no-difference' if it lies
    within ±margin, else 'inconclusive' (also without a CI: a single paired seed)."""
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    if ci_low > 0:
        return "helps"
    if ci_high < 0:
        return "hurts"
    if -margin < ci_low and ci_high < margin:
        return "no-difference"
    return "inconclusive"


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


def summarize(
    runs: Sequence[Mapping[str, Any]], *, baseline: str = "scratch", confidence: float = 0.95,
    metric: str | None = None, correction: str = "holm", margin: float = 0.02, max_seeds: int | None = None,
) -> dict[str, Any]:
    """Turn finished runs of a comparison grid into cells (one per strategy × shots) and a recommendation.

    Cells are ordered by shots (ints ascending, then "all"), then by strategy (baseline first, the
    rest in order of first appearance). Deltas vs the baseline pair runs by seed (only seeds present
    for both) and, when runs kept their per-example test predictions, by test example. `mean`,
    `ci_low`, `ci_high` and the deltas are in `metric` (None: balanced accuracy when the test split's
    largest class is over 1.5× its smallest, else accuracy). Verdicts are `helps`, `hurts`,
    `no-difference` (the interval lies within ±`margin`) or `inconclusive` (with `seeds_needed`);
    `correction` ("holm", "bh", "none") adjusts for the grid's many comparisons; `max_seeds` turns on
    the sequential design of `--seeds auto` (see compare/verdicts.py). Undefined numbers are None,
    so the result is JSON-safe. `labels_saved_per_class` is scratch's interpolated labels needed
    minus this cell's shots (negative: the strategy costs labels); it is None for "all" cells.

    Example:
        >>> runs = [{"strategy": s, "shots": 5, "seed": k, "test_accuracy": a + 0.01 * k}
        ...         for s, a in [("scratch", 0.6), ("linear_probe", 0.8)] for k in range(3)]
        >>> out = summarize(runs)
        >>> [(c["strategy"], c["verdict"]) for c in out["cells"]]
        [('scratch', 'baseline'), ('linear_probe', 'helps')]
        >>> out["recommendation"]["5"]["best"]
        'linear_probe'
    """
    from .grid_summary import summarize_grid
    from .verdicts import Analysis

    _check_confidence(confidence)
    _check_runs(runs)
    analysis = Analysis(metric=metric, confidence=confidence, correction=correction, margin=margin, max_seeds=max_seeds)
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
    return to_jsonable(summarize_grid(runs, groups, strategies, shots_order, baseline, analysis))
