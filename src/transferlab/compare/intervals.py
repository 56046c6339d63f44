"""Intervals that count both sources of noise, p-values, multiplicity control and the sequential design.

A cell's number is a mean over seeds of a metric measured on one shared, finite test split. Its
variance has two parts (a crossed seeds × test-examples design):

- between seeds (label draw and initialisation): s²/n, from the per-seed values (n − 1 degrees of freedom);
- the test split's sampling noise, shared by every seed: the variance of the seed-mean under a
  bootstrap over test examples (the same resampled examples for every seed and, in a paired delta,
  for both arms). With hundreds of test examples it has effectively infinite degrees of freedom.

The interval is estimate ± t_ν · √(s²/n + v_test) with ν from the Welch–Satterthwaite formula, so
it is a Student-t interval over seeds when seeds dominate and a normal one when the test split
does. It is then clipped to the metric's range (a mean in [0, 1], a delta in [−1, 1]). Counting
the seed-by-example interaction in both parts makes it slightly conservative.

`--seeds auto` is a group-sequential design (Jennison & Turnbull, *Group Sequential Methods with
Applications to Clinical Trials*, 2000) with a Bonferroni alpha-spending boundary: with K planned
looks, each look tests at level α/K, so by the union bound the chance of any false decision over
all looks is at most α, however the stopping depends on the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CORRECTIONS = ("holm", "bh", "none")
CORRECTION_NAMES = {"holm": "Holm (family-wise error rate)", "bh": "Benjamini–Hochberg (false discovery rate)",
                    "none": "none (each comparison at its own level)"}
FIRST_LOOK = 3
_SEEDS_NEEDED_CAP = 1000


@dataclass(frozen=True)
class Estimate:
    """A mean over n seeds with its two variance parts (per-seed s² and the test-split variance)."""

    value: float
    n: int
    seed_s2: float  # variance between seeds (ddof 1); nan with one seed
    test_var: float  # variance of the seed-mean from the finite test split (0 when unknown)

    def _var(self, n: int) -> float:
        return self.seed_s2 / n + self.test_var

    def _df(self, n: int) -> float:
        a = self.seed_s2 / n
        if a <= 0:
            return math.inf
        return (a + self.test_var) ** 2 / (a * a / (n - 1))

    @property
    def se(self) -> float:
        return math.nan if self.n < 2 else math.sqrt(self._var(self.n))

    def _half(self, confidence: float, n: int) -> float:
        from scipy import stats

        q = 0.5 + confidence / 2.0
        df = self._df(n)
        crit = float(stats.norm.ppf(q)) if math.isinf(df) else float(stats.t.ppf(q, df))
        return crit * math.sqrt(self._var(n))

    def interval(self, confidence: float, low: float, high: float) -> tuple[float | None, float | None]:
        """Two-sided interval clipped to [low, high]; (None, None) with one seed (no seed spread to see)."""
        if self.n < 2:
            return None, None
        half = self._half(confidence, self.n)
        return max(low, self.value - half), min(high, self.value + half)

    def p_value(self) -> float | None:
        """Two-sided p-value of 'the true value is 0' (for a delta); None with one seed."""
        from scipy import stats

        if self.n < 2:
            return None
        se = self.se
        if se == 0:
            return 1.0 if self.value == 0 else 0.0
        t = abs(self.value) / se
        df = self._df(self.n)
        return float(2 * (stats.norm.sf(t) if math.isinf(df) else stats.t.sf(t, df)))

    def seeds_needed(self, confidence: float, margin: float) -> int | None:
        """Fewest seeds whose interval (with today's spread) would exclude 0 or sit within ±margin.

        None when no number of seeds would: the test split's own noise is too large (a larger test
        split would help), or nothing is known about the seed spread (one seed).
        """
        if self.n < 2 or not math.isfinite(self.seed_s2):
            return None
        d = abs(self.value)

        def decides(n: int) -> bool:
            half = self._half(confidence, n)
            return half < d or d + half < margin

        if not decides(_SEEDS_NEEDED_CAP):
            return None
        lo, hi = self.n, _SEEDS_NEEDED_CAP  # the half-width shrinks with n: bisect
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if decides(mid) else (mid, hi)
        return hi


def estimate(per_seed: Sequence[float], replicates: np.ndarray | None) -> Estimate:
    """An Estimate from per-seed values (n,) and the seed-mean under example resampling (B,) or None."""
    x = np.asarray(per_seed, dtype=float)
    s2 = float(x.var(ddof=1)) if x.size > 1 else math.nan
    v = float(np.var(replicates, ddof=1)) if replicates is not None and len(replicates) > 1 else 0.0
    return Estimate(float(x.mean()), int(x.size), s2, v)


def adjust(p_values: Sequence[float | None], correction: str) -> list[float | None]:
    """Holm or Benjamini–Hochberg adjusted p-values (None stays None); 'none' returns them as given."""
    if correction not in CORRECTIONS:
        raise ValueError(f"--correction {correction!r} is not known; allowed: {', '.join(CORRECTIONS)}")
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = list(p_values)
    if correction == "none" or not idx:
        return out
    p = np.array([p_values[i] for i in idx], dtype=float)
    if correction == "bh":
        from scipy.stats import false_discovery_control

        adj = false_discovery_control(p, method="bh")
    else:  # Holm's step-down: the i-th smallest × (m − i), made monotone
        order = np.argsort(p)
        m = len(p)
        stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    for i, a in zip(idx, adj):
        out[i] = float(a)
    return out


def looks(max_seeds: int) -> list[int]:
    """Planned seed counts of `--seeds auto`: 3, 5, 10, 20, 40, ... up to and including max_seeds."""
    if max_seeds <= FIRST_LOOK:
        return [max_seeds]
    plan, n = [FIRST_LOOK, 5], 5
    while n * 2 < max_seeds:
        n *= 2
        plan.append(n)
    return sorted({p for p in plan if p < max_seeds} | {max_seeds})
