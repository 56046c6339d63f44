"""A k-fold linear-probe accuracy: the plain reference line beside the transferability scores.

A multinomial logistic regression (scikit-learn, L2, C=1) on standardised frozen features, scored by
stratified k-fold cross-validation on the target's labelled examples only. It is what a linear probe
would reach without touching validation or test data, at the cost of k small fits.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError


def probe_folds(labels: np.ndarray, folds: int) -> int:
    """Folds usable for stratified k-fold: at most `folds`, at most the smallest class count (0: none)."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    k = int(min(folds, counts.min())) if len(counts) else 0
    return k if k >= 2 else 0


def probe_accuracy(features: np.ndarray, labels: np.ndarray, *, folds: int = 5, seed: int = 0,
                   max_iter: int = 100) -> float | None:
    """Mean held-out-fold accuracy of a linear classifier on `features` (N, D); None with < 2 examples per class.

    Example:
        >>> f = np.random.default_rng(0).normal(size=(60, 3)); y = (f[:, 0] > 0).astype(int)
        >>> probe_accuracy(f, y) > 0.8
        True
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2 (k-fold cross-validation); got {folds}")
    f, y = np.asarray(features, dtype=np.float64), np.asarray(labels)
    k = probe_folds(y, folds)
    if k == 0:
        return None
    correct = 0
    for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(f, y):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=max_iter))
        with warnings.catch_warnings():
            # an unconverged fit after max_iter steps is still a fair, cheap reference point
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(f[train], y[train])
        correct += int((clf.predict(f[test]) == y[test]).sum())
    return correct / len(y)
