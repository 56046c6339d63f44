"""Classification metrics of a run from its per-example test predictions, and their test-split noise.

A comparison keeps every run's predicted class per test example (`test_predictions`, beside the
true `test_labels`), so a metric can be recomputed for any weighting of the test examples: that is
how the finite test split's sampling noise is measured (a bootstrap over test examples, the same
resampled examples for every seed and both arms of a paired delta). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Metric = Literal["accuracy", "balanced-accuracy", "macro-f1"]
METRICS: tuple[str, ...] = ("accuracy", "balanced-accuracy", "macro-f1")
IMBALANCE_RATIO = 1.5
"""Largest class over smallest class (test split) above which verdicts use balanced accuracy by default."""

RUN_KEYS = {"accuracy": "test_accuracy", "balanced-accuracy": "balanced_accuracy", "macro-f1": "macro_f1"}
"""The run-record key that holds each metric's value."""


def check_metric(metric: str | None) -> None:
    if metric is not None and metric not in METRICS:
        raise ValueError(f"--metric {metric!r} is not a metric verdicts can use; allowed: {', '.join(METRICS)} "
                         "(or leave it out for the default)")


def default_metric(labels: Sequence[int] | np.ndarray | None) -> tuple[str, str]:
    """(metric, why): balanced accuracy when the largest class is more than 1.5× the smallest, else accuracy."""
    if labels is None or len(labels) == 0:
        return "accuracy", "accuracy (the runs kept no per-example test labels to check class balance)"
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    counts = counts[counts > 0]
    ratio = float(counts.max() / counts.min())
    if ratio > IMBALANCE_RATIO:
        return "balanced-accuracy", (f"balanced accuracy: the test split is imbalanced (largest class {ratio:.2g}× the "
                                     f"smallest, above {IMBALANCE_RATIO}×)")
    return "accuracy", f"accuracy: the test split is balanced (largest class {ratio:.2g}× the smallest, at most {IMBALANCE_RATIO}×)"


def majority_rate(labels: Sequence[int] | np.ndarray) -> float:
    """Accuracy of always answering the most common class of `labels`."""
    y = np.asarray(labels, dtype=np.int64)
    return float(np.bincount(y).max() / len(y)) if len(y) else float("nan")


def _one_hot(a: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((*a.shape, k))
    np.put_along_axis(out, a[..., None], 1.0, axis=-1)
    return out


def _from_counts(metric: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Metric over the last axis (classes) of weighted true-positive, false-positive, false-negative counts."""
    support = tp + fn
    if metric == "accuracy":
        total = support.sum(-1)
        return np.divide(tp.sum(-1), total, out=np.full(total.shape, np.nan), where=total > 0)
    if metric == "balanced-accuracy":  # mean recall over the classes present in the test split
        present = support > 0
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
        return recall.sum(-1) / np.maximum(present.sum(-1), 1)
    denom = 2 * tp + fp + fn  # macro-F1 over every class; a class never seen nor predicted scores 0
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.mean(-1)


def run_metrics(predictions: Sequence[int], labels: Sequence[int], num_classes: int | None = None) -> dict[str, float]:
    """accuracy, balanced_accuracy, macro_f1 and majority_rate of one run's test predictions.

    Example:
        >>> run_metrics([0, 0, 0, 0], [0, 0, 0, 1])["balanced_accuracy"]
        0.5
    """
    p, y = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    k = int(num_classes or max(p.max(initial=0), y.max(initial=0)) + 1)
    yh, ph = _one_hot(y, k), _one_hot(p, k)
    tp, fp, fn = (yh * ph).sum(0), ((1 - yh) * ph).sum(0), (yh * (1 - ph)).sum(0)
    return {"accuracy": float(_from_counts("accuracy", tp, fp, fn)),
            "balanced_accuracy": float(_from_counts("balanced-accuracy", tp, fp, fn)),
            "macro_f1": float(_from_counts("macro-f1", tp, fp, fn)), "majority_rate": majority_rate(y)}


def example_weights(n_examples: int, replicates: int, seed: int = 0) -> np.ndarray:
    """(replicates, n_examples) bootstrap counts: each row resamples the test examples with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_examples, size=(replicates, n_examples)) + np.arange(replicates)[:, None] * n_examples
    return np.bincount(draws.ravel(), minlength=replicates * n_examples).reshape(replicates, n_examples).astype(np.float32)


def seed_mean_replicates(metric: str, predictions: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                         num_classes: int) -> np.ndarray:
    """The metric averaged over seeds, recomputed under each row of example `weights`: (replicates,).

    predictions: (seeds, examples) predicted classes; labels: (examples,); weights: (replicates, examples).
    """
    n, m = predictions.shape
    k = num_classes
    w = weights.astype(np.float32, copy=False)
    correct = (predictions == labels[None, :]).astype(np.float32)  # (n, m)
    if metric == "accuracy":
        return ((w @ correct.T) / w.sum(1, keepdims=True)).mean(1).astype(float)  # (B,)
    yh = _one_hot(labels, k).astype(np.float32)  # (m, K)
    hit = (correct.T[:, :, None] * yh[:, None, :]).reshape(m, n * k)  # (m, n·K): correct and of class c
    tp = (w @ hit).reshape(-1, n, k).astype(float)  # (B, n, K)
    support = (w @ yh).astype(float)[:, None, :]  # (B, 1, K)
    if metric == "balanced-accuracy":
        return _from_counts(metric, tp, np.zeros_like(tp), support - tp).mean(1)
    said = _one_hot(predictions, k).astype(np.float32).transpose(1, 0, 2).reshape(m, n * k)  # (m, n·K): predicted c
    predicted = (w @ said).reshape(-1, n, k).astype(float)
    return _from_counts(metric, tp, predicted - tp, support - tp).mean(1)  # (B,)
