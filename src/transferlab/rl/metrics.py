"""Transfer metrics for RL (Taylor & Stone 2009, "Transfer Learning for Reinforcement Learning Domains: A Survey").

Every metric is read off a **learning curve of evaluation returns**: the mean return of the greedy
policy over separate evaluation episodes on fixed seeds, measured at fixed steps of training (step 0
included), never the noisy returns of the exploring training episodes.

- `jumpstart`: the return at step 0, before any target training (the transferred policy as is);
- `asymptotic_return`: the mean return over the last `window` evaluation points;
- `auc` (total reward): the area under the curve divided by the steps it spans, i.e. the mean return
  over training, in return units (trapezoids between evaluation points);
- `time_to_threshold`: the first evaluation step whose return reaches `threshold` (None: never);
- `transfer_ratio`: (auc − auc_scratch) / |auc_scratch| — Taylor & Stone's ratio of areas; the
  absolute value keeps its sign meaningful for environments with negative returns (Acrobot).

Pure numpy; nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRIC_KEYS = ("jumpstart", "asymptotic_return", "auc", "time_to_threshold", "final_return")
METRICS = ("auc", "asymptotic_return", "jumpstart", "final_return")
"""Metrics a comparison can declare (higher is better for each)."""


def _arrays(curve: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    if not curve:
        raise ValueError("a learning curve needs at least one evaluation point; got none")
    steps = np.asarray([float(p["step"]) for p in curve])
    returns = np.asarray([float(p["return"]) for p in curve])
    if np.any(np.diff(steps) <= 0):
        raise ValueError(f"learning-curve steps must increase; got {steps.tolist()}")
    return steps, returns


def auc(curve: Sequence[Mapping[str, Any]]) -> float:
    """Area under the curve per step: the mean evaluation return over training (trapezoids)."""
    steps, returns = _arrays(curve)
    if steps.size == 1:
        return float(returns[0])
    return float(np.trapezoid(returns, steps) / (steps[-1] - steps[0]))


def time_to_threshold(curve: Sequence[Mapping[str, Any]], threshold: float) -> float | None:
    """The first evaluation step whose return is ≥ `threshold`; None if the run never gets there."""
    steps, returns = _arrays(curve)
    hits = np.nonzero(returns >= threshold)[0]
    return float(steps[hits[0]]) if hits.size else None


def transfer_ratio(auc_transfer: float, auc_scratch: float) -> float | None:
    """(auc − auc_scratch) / |auc_scratch|; None when scratch's area is 0."""
    if auc_scratch == 0 or not math.isfinite(auc_scratch):
        return None
    return (auc_transfer - auc_scratch) / abs(auc_scratch)


def curve_metrics(curve: Sequence[Mapping[str, Any]], *, threshold: float | None = None,
                  window: int | None = None) -> dict[str, Any]:
    """jumpstart, asymptotic_return (mean of the last `window` points, default a quarter), auc, final_return
    and, with a threshold, time_to_threshold.

    Example:
        >>> curve = [{"step": 0, "return": 10.0}, {"step": 100, "return": 30.0}, {"step": 200, "return": 50.0}]
        >>> m = curve_metrics(curve, threshold=30.0)
        >>> m["jumpstart"], m["auc"], m["time_to_threshold"]
        (10.0, 30.0, 100.0)
    """
    steps, returns = _arrays(curve)
    if steps[0] != 0:
        raise ValueError(f"a learning curve starts at step 0 (the jumpstart); this one starts at {steps[0]}")
    window = window or max(1, len(returns) // 4)
    out: dict[str, Any] = {
        "jumpstart": float(returns[0]),
        "asymptotic_return": float(returns[-window:].mean()),
        "auc": auc(curve),
        "final_return": float(returns[-1]),
        "time_to_threshold": None,
    }
    if threshold is not None:
        out["time_to_threshold"] = time_to_threshold(curve, threshold)
    return out


def label(spec: Mapping[str, Any]) -> str:
    """A strategy's name in results: `name(key=value,...)` with its options sorted, or just the name."""
    opts = ",".join(f"{k}={v}" for k, v in sorted(spec.get("options", {}).items()))
    return f"{spec['name']}({opts})" if opts else spec["name"]
