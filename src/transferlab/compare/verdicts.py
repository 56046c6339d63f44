"""A grid's verdicts: every strategy × label budget against scratch, decided or honestly not.

Each non-baseline cell gets a paired delta (by seed and by test example) with an interval that
counts seed and test-split noise (`intervals.py`), a p-value adjusted for the grid's many
comparisons (Holm or Benjamini–Hochberg) and, under `--seeds auto`, for the sequential looks. Its
verdict is one of:

- ``helps`` / ``hurts``: the adjusted p-value is at most α = 1 − confidence (the interval excludes 0);
- ``no-difference``: the interval lies within ±margin — any effect is smaller than the margin;
- ``inconclusive``: neither; ``seeds_needed`` estimates how many seeds would decide it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import intervals, metrics
from .intervals import Estimate

DEFAULT_MARGIN = 0.02
REPLICATES = 400  # bootstrap resamples of the test examples: enough for a variance (not for percentiles)


@dataclass(frozen=True)
class Analysis:
    """How verdicts are made: metric (None: by class balance), confidence, correction, margin, sequential looks."""

    metric: str | None = None
    confidence: float = 0.95
    correction: str = "holm"
    margin: float = DEFAULT_MARGIN
    max_seeds: int | None = None  # set: `--seeds auto` with these planned looks

    def __post_init__(self) -> None:
        metrics.check_metric(self.metric)
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95); got {self.confidence!r}")
        if self.correction not in intervals.CORRECTIONS:
            raise ValueError(f"--correction {self.correction!r} is not known; allowed: {', '.join(intervals.CORRECTIONS)}")
        if not (isinstance(self.margin, (int, float)) and 0.0 < self.margin < 1.0):
            raise ValueError(f"--margin is the largest difference called 'no-difference', between 0 and 1 (e.g. 0.02); "
                             f"got {self.margin!r}")
        if self.max_seeds is not None and (not isinstance(self.max_seeds, int) or self.max_seeds < 2):
            raise ValueError(f"--max-seeds must be a whole number ≥ 2; got {self.max_seeds!r}")

    @property
    def looks(self) -> list[int] | None:
        return intervals.looks(self.max_seeds) if self.max_seeds is not None else None

    @property
    def look_confidence(self) -> float:
        """Confidence of each look's interval: 1 − α/K under K planned looks (Bonferroni alpha spending)."""
        k = len(self.looks) if self.looks else 1
        return 1.0 - (1.0 - self.confidence) / k

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "confidence": self.confidence, "correction": self.correction,
                "margin": self.margin, "max_seeds": self.max_seeds}


@dataclass
class _Arm:
    """One cell's runs in seed order, with each run's metric and (when kept) its test predictions."""

    runs: list[Mapping[str, Any]]
    values: np.ndarray
    predictions: np.ndarray | None  # (seeds, examples)


@dataclass
class _TestSplit:
    labels: np.ndarray | None
    num_classes: int
    weights: np.ndarray | None  # (replicates, examples) bootstrap counts
    notes: list[str] = field(default_factory=list)


def _test_split(runs: Sequence[Mapping[str, Any]]) -> _TestSplit:
    """The shared test labels when every run kept its per-example predictions on the same test split."""
    labels = [r.get("test_labels") for r in runs]
    preds = [r.get("test_predictions") for r in runs]
    if any(x is None for x in labels + preds):
        return _TestSplit(None, 0, None, ["runs lack per-example test predictions (recorded by an older version), so "
                                          "intervals count seed noise only"])
    first = labels[0]
    if any(lab != first for lab in labels) or any(len(p) != len(first) for p in preds):
        return _TestSplit(None, 0, None, ["runs were tested on different test splits, so intervals count seed noise only"])
    y = np.asarray(first, dtype=np.int64)
    k = int(max(y.max(initial=0), max(max(p, default=0) for p in preds)) + 1)
    return _TestSplit(y, k, metrics.example_weights(len(y), REPLICATES))


def _value(run: Mapping[str, Any], metric: str, split: _TestSplit) -> float:
    if split.labels is not None:
        return metrics.run_metrics(run["test_predictions"], split.labels, split.num_classes)[metric.replace("-", "_")]
    value = run.get(metrics.RUN_KEYS[metric])
    if value is None:
        raise ValueError(f"--metric {metric}: run {run.get('strategy')!r} seed {run.get('seed')} has no "
                         f"{metrics.RUN_KEYS[metric]!r} (recorded by an older version); use --metric accuracy")
    return float(value)


def _arm(runs: list[Mapping[str, Any]], metric: str, split: _TestSplit) -> _Arm:
    runs = sorted(runs, key=lambda r: r["seed"])
    preds = None if split.labels is None else np.asarray([r["test_predictions"] for r in runs], dtype=np.int64)
    return _Arm(runs, np.array([_value(r, metric, split) for r in runs]), preds)


def _replicates(arm: _Arm, rows: Sequence[int], metric: str, split: _TestSplit) -> np.ndarray | None:
    if arm.predictions is None or split.weights is None or split.labels is None:
        return None
    return metrics.seed_mean_replicates(metric, arm.predictions[list(rows)], split.labels, split.weights,
                                        split.num_classes)


def mean_estimate(arm: _Arm, metric: str, split: _TestSplit) -> Estimate:
    return intervals.estimate(arm.values, _replicates(arm, range(len(arm.runs)), metric, split))


@dataclass
class Comparison:
    """One strategy cell against the baseline at the same label budget, paired by seed and test example."""

    mine: _Arm
    base: _Arm
    seeds: list[int]  # paired seeds, ascending
    metric: str
    split: _TestSplit
    n: int = 0
    estimate: Estimate | None = None
    p: float | None = None
    p_adjusted: float | None = None
    verdict: str = "inconclusive"
    frozen: bool = False
    family: int = 1  # comparisons the correction counted this one among (times the planned looks)

    def at(self, n: int) -> None:
        """Measure the delta on the first n paired seeds."""
        seeds = self.seeds[:n]
        if not seeds:  # no seed in common with the baseline: nothing to compare yet
            self.n, self.estimate, self.p = 0, None, None
            return
        i_mine = [next(i for i, r in enumerate(self.mine.runs) if r["seed"] == s) for s in seeds]
        i_base = [next(i for i, r in enumerate(self.base.runs) if r["seed"] == s) for s in seeds]
        diffs = self.mine.values[i_mine] - self.base.values[i_base]
        a, b = _replicates(self.mine, i_mine, self.metric, self.split), _replicates(self.base, i_base, self.metric, self.split)
        self.n = n
        self.estimate = intervals.estimate(diffs, None if a is None or b is None else a - b)
        self.p = self.estimate.p_value()


def _classify(c: Comparison, alpha: float, confidence: float, margin: float) -> str:
    if c.estimate is None or c.n < 2:
        return "inconclusive"
    if c.p_adjusted is not None and c.p_adjusted <= alpha and c.estimate.value != 0:
        return "helps" if c.estimate.value > 0 else "hurts"
    lo, hi = c.estimate.interval(confidence, -1.0, 1.0)
    if lo is not None and hi is not None and -margin < lo and hi < margin:
        return "no-difference"
    return "inconclusive"


def _adjust(comparisons: list[Comparison], correction: str, k_looks: int) -> None:
    raw = [None if c.p is None else min(1.0, c.p * k_looks) for c in comparisons]
    tested = sum(p is not None for p in raw)
    for c, a in zip(comparisons, intervals.adjust(raw, correction)):
        c.p_adjusted = a
        c.family = max(1, tested if correction != "none" else 1) * k_looks


def decision_confidence(c: Comparison, confidence: float) -> float:
    """The confidence an interval needs to decide `c` once the grid's correction is counted.

    An interval at `confidence` that excludes 0 decides a comparison only when its adjusted p-value
    does too: with a correction over m comparisons this one's own multiplier is p_adjusted / p (Holm:
    m − rank; when the adjusted value is capped at 1, the Bonferroni bound m, which is never less strict).
    """
    if c.p and c.p_adjusted is not None and c.p_adjusted < 1.0:
        multiplier = c.p_adjusted / c.p
    else:
        multiplier = float(c.family)
    return 1.0 - (1.0 - confidence) / max(1.0, multiplier)


def decide(comparisons: list[Comparison], analysis: Analysis) -> None:
    """Set every comparison's verdict: at its paired seeds, or (sequential) at the first planned look that decides it."""
    alpha = 1.0 - analysis.confidence
    looks = analysis.looks
    if looks is None:  # a fixed number of seeds: one look at every paired seed
        for c in comparisons:
            c.at(len(c.seeds))
        _adjust(comparisons, analysis.correction, 1)
        for c in comparisons:
            c.verdict = _classify(c, alpha, analysis.confidence, analysis.margin)
        return
    conf = analysis.look_confidence
    for c in comparisons:  # before the first look: measured, but no decision allowed yet
        c.at(min(len(c.seeds), looks[0]))
    for n_look in looks:
        reached = [c for c in comparisons if not c.frozen and len(c.seeds) >= n_look]
        for c in reached:
            c.at(n_look)
        _adjust(comparisons, analysis.correction, len(looks))
        for c in reached:
            c.verdict = _classify(c, alpha, conf, analysis.margin)
            c.frozen = c.verdict != "inconclusive" or n_look == looks[-1]
    for c in comparisons:
        if c.n < looks[0]:
            c.verdict = "inconclusive"


def prepare(runs: Sequence[Mapping[str, Any]], analysis: Analysis) -> tuple[str, str, _TestSplit]:
    """The test split shared by the runs and the metric verdicts use (with the reason it was chosen)."""
    split = _test_split(runs)
    if analysis.metric is not None:
        return analysis.metric, f"{analysis.metric} (chosen with --metric)", split
    metric, why = metrics.default_metric(split.labels)
    return metric, why, split


def interval_method(split: _TestSplit, analysis: Analysis) -> str:
    noise = ("seed noise and the test split's sampling noise (a bootstrap over test examples), combined in a "
             "Welch–Satterthwaite t interval" if split.labels is not None else "seed noise only (Student t over seeds)")
    seq = ""
    if analysis.looks:
        k = len(analysis.looks)
        seq = (f"; --seeds auto: group-sequential design with Bonferroni alpha spending over {k} planned looks at "
               f"{', '.join(map(str, analysis.looks))} seeds, each at level α/{k} "
               f"({analysis.look_confidence:.2%} intervals)")
    return f"{noise}, clipped to the metric's range{seq}"
