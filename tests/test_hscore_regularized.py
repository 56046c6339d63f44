"""The regularised H-score follows Ibrahim et al. (ICLR 2023), held against an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.covariance import LedoitWolf

from transferlab.analysis.transferability import hscore


@pytest.fixture(autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def reference_regularized_hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """Written from the paper's definition, as in Transfer-Learning-Library's `regularized_h_score`:
    tr(pinv(Σ_α) · (1 − α) · cov(g)), Σ_α the Ledoit–Wolf estimate, g the class-conditional means.
    Both covariances here are population ones (÷N); the library's np.cov(g) divides by N − 1."""
    f = features.astype(np.float64)
    f = f - f.mean(axis=0, keepdims=True)
    est = LedoitWolf(assume_centered=False).fit(f)
    g = np.zeros_like(f)
    for c in np.unique(labels):
        g[labels == c] = f[labels == c].mean(axis=0)
    cov_g = np.cov(g, rowvar=False) * (len(f) - 1) / len(f)
    return float(np.trace(np.linalg.pinv(est.covariance_, rcond=1e-15) @ ((1 - est.shrinkage_) * cov_g)))


def graded(n: int, d: int, classes: int, quality: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features whose class signal grows with `quality`, spread over a few directions, in noise of varied scale."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, d)) * (rng.random(d) < 0.25)  # the signal lives in about a quarter of the dims
    scales = rng.uniform(0.5, 3.0, size=d)
    return quality * centres[y] + rng.normal(size=(n, d)) * scales, y


@pytest.mark.parametrize("n, d", [(50, 64), (30, 100), (400, 16)])
def test_matches_the_independent_implementation(n, d):
    f, y = graded(n, d, 5, 1.0, seed=n + d)
    assert hscore(f, y) == pytest.approx(reference_regularized_hscore(f, y), rel=1e-7)


def test_near_constant_features_stay_finite_and_match():
    f, y = graded(50, 64, 5, 1.0, seed=3)
    f[:, :10] = 7.0 + 1e-9 * np.random.default_rng(0).normal(size=(50, 10))  # ten features almost constant
    h = hscore(f, y)
    assert np.isfinite(h) and h == pytest.approx(reference_regularized_hscore(f, y), rel=1e-6)


def test_bounded_by_classes_minus_one_even_when_examples_are_fewer_than_dims():
    for seed in range(5):
        f, y = graded(50, 64, 5, 3.0, seed=seed)  # strong signal: the unscaled score would exceed K − 1 = 4
        assert 0 < hscore(f, y) <= 4 + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_ranks_four_graded_models_in_order_with_few_examples_per_class(seed):
    qualities = [0.25, 0.5, 1.0, 2.0]
    scores, reference = [], []
    for q in qualities:
        f, y = graded(50, 64, 5, q, seed=100 * seed + 1)  # the same noise, more signal: a better model
        scores.append(hscore(f, y))
        reference.append(reference_regularized_hscore(f, y))
    assert spearmanr(scores, qualities).statistic == pytest.approx(1.0)
    assert np.argsort(scores).tolist() == np.argsort(reference).tolist()
