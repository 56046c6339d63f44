"""Transferability scores: how well a pretrained model's features suit a target task, without fine-tuning.

Three scores, each computed from features of the target's labelled examples (numpy, float64):

- **LogME** (You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
  Learning", ICML 2021): the log marginal likelihood (evidence) of a Bayesian linear model from the
  features to each one-hot label column, maximised over its prior and noise precisions, averaged over
  classes and divided by the number of examples. Higher is better.
- **LEEP** (Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate Transferability
  of Learned Representations", ICML 2020): the average log-likelihood of the target labels under the
  "expected empirical predictor" built from the source head's predicted source-label distributions.
  Needs the source head. Higher (closer to 0) is better.
- **H-score** (Bao, Li, Huang, Zheng & Zhang, "An Information-Theoretic Approach to Transferability
  in Task Transfer Learning", ICIP 2019): tr(cov(f)⁻¹ cov(E[f | y])), how much of the feature variance
  separates the classes. With few examples per feature the sample covariance is singular, so by
  default it is the regularised H-score of Ibrahim, Ponomareva & Mazumder ("Newer is not always
  better: rethinking transferability metrics", ICLR 2023): the Ledoit–Wolf shrinkage estimate of
  cov(f), with the between-class covariance scaled by (1 − shrinkage). Higher is better.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError


def _check(features: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if f.ndim != 2:
        raise ConfigError(f"{what} needs features of shape (examples, dims); got shape {f.shape}. Flatten them first")
    if y.ndim != 1 or len(y) != len(f):
        raise ConfigError(f"{what} needs one label per example: {len(f)} feature rows but labels of shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise ConfigError(f"{what} needs examples of at least 2 classes; got classes {np.unique(y).tolist()}")
    if not np.all(np.isfinite(f)):
        raise ConfigError(f"{what} needs finite features; got NaN or infinite values (the backbone diverged?)")
    return f, y


def _one_hot(y: np.ndarray) -> np.ndarray:
    classes, index = np.unique(y, return_inverse=True)
    out = np.zeros((len(y), len(classes)))
    out[np.arange(len(y)), index] = 1.0
    return out  # (N, K)


def logme(features: np.ndarray, labels: np.ndarray, *, tol: float = 1e-8, max_iter: int = 1000) -> float:
    """LogME of features (N, D) for class labels (N,): mean over classes of max log evidence / N.

    For one one-hot label column y, the model is y = F·w + ε with w ~ N(0, α⁻¹I) and ε ~ N(0, β⁻¹I),
    so y ~ N(0, β⁻¹I + α⁻¹FFᵀ). α and β are found by MacKay's fixed-point iteration (the paper's
    Algorithm 2), run in the basis of F's singular vectors so each step costs O(min(N, D)) after
    one eigendecomposition of the smaller Gram matrix. Unlike the
    reference code, which stops after at most 11 steps at 1% change, this runs to `tol`.

    Example:
        >>> f = np.random.default_rng(0).normal(size=(100, 5)); y = (f[:, 0] > 0).astype(int)
        >>> logme(f, y) > logme(np.random.default_rng(1).normal(size=(100, 5)), y)
        True
    """
    f, y = _check(features, labels, "LogME")
    n, d = f.shape
    targets = _one_hot(y)  # (N, K)
    # Eigen-decompose the smaller Gram matrix (3× faster than an SVD of F): σ = s², F = U·diag(s)·Vᵀ.
    if n <= d:
        sigma, u = np.linalg.eigh(f @ f.T)  # (N,), (N, N)
    else:
        sigma, v = np.linalg.eigh(f.T @ f)  # (D,), (D, D)
    keep = sigma > max(sigma.max(initial=0.0), 0.0) * max(n, d) * np.finfo(np.float64).eps
    sigma = sigma[keep]  # non-zero eigenvalues of FᵀF
    s = np.sqrt(sigma)
    r = len(s)
    # (r, K): label columns in the basis of F's column space (U = F·V / s when D < N)
    uy = u[:, keep].T @ targets if n <= d else (v[:, keep].T @ (f.T @ targets)) / s[:, None]
    outside = np.maximum((targets**2).sum(0) - (uy**2).sum(0), 0.0)  # (K,): residual no weight can fit
    # Iterate on λ = α/β: the posterior mean m = s·uy / (λ + σ) depends on λ only, and for a fixed λ the
    # best β is N / Q(λ) with Q = ‖y − F·m‖² + λ‖m‖², which gives the evidence in a form that stays
    # finite when the features can fit the labels exactly (N ≤ D: the optimum is the noise-free limit).
    # The evidence can have several local maxima in λ, and the fixed point finds the one nearest its
    # start (the reference code starts at α = β = 1, which depends on the features' scale). So start
    # each class at the best of a log-spaced grid relative to the largest eigenvalue, then iterate.
    lam_min, lam_max = (sigma.max() * 1e-12, sigma.max() * 1e12) if r else (1.0, 1.0)
    lam = _best_on_grid(sigma, uy, outside, n, lam_min, lam_max) if r else np.ones(targets.shape[1])  # (K,)
    for _ in range(max_iter if r else 0):
        m = s[:, None] * uy / (lam[None, :] + sigma[:, None])  # (r, K): posterior mean weights
        gamma = (sigma[:, None] / (lam[None, :] + sigma[:, None])).sum(0)  # (K,) effective number of parameters
        m2 = (m**2).sum(0)
        residual = ((uy - s[:, None] * m) ** 2).sum(0) + outside
        # MacKay's updates α = γ / ‖m‖², β = (N − γ) / ‖y − F·m‖², as their ratio
        with np.errstate(divide="ignore", invalid="ignore"):
            new = np.where(m2 > 0, gamma * residual / (m2 * (n - gamma)), lam_max)
        new = np.clip(np.where((n - gamma > 0) & (residual > 0), new, lam_min), lam_min, lam_max)
        done = np.all(np.abs(new - lam) <= tol * lam)
        lam = new
        if done:
            break
    m = s[:, None] * uy / (lam[None, :] + sigma[:, None])
    q = ((uy - s[:, None] * m) ** 2).sum(0) + outside + lam * (m**2).sum(0)  # (K,) yᵀ(I + FFᵀ/λ)⁻¹y
    # log N(y | 0, β⁻¹(I + FFᵀ/λ)) at β = N / q
    evidence = (n / 2 * np.log(n / q) - n / 2 - 0.5 * np.log1p(sigma[:, None] / lam[None, :]).sum(0)
                - n / 2 * math.log(2 * math.pi))
    return float(np.mean(evidence) / n)


def _profile_evidence(lam: np.ndarray, sigma: np.ndarray, uy: np.ndarray, outside: np.ndarray, n: int) -> np.ndarray:
    """Evidence maximised over β, up to a constant, at each λ (G,) for each class: (G, K)."""
    shrink = lam[:, None] / (lam[:, None] + sigma[None, :])  # (G, r)
    q = shrink @ (uy**2) + outside[None, :]  # (G, K): yᵀ(I + FFᵀ/λ)⁻¹y
    return n / 2 * np.log(n / q) - 0.5 * np.log1p(sigma[None, :] / lam[:, None]).sum(1)[:, None]


def _best_on_grid(sigma, uy, outside, n, lam_min, lam_max) -> np.ndarray:
    grid = np.geomspace(lam_min, lam_max, 97)  # 4 points per decade
    return grid[np.argmax(_profile_evidence(grid, sigma, uy, outside, n), axis=0)]


def leep(source_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """LEEP of target labels (N,) given the source head's predicted distributions θ(x) (N, Z).

    P̂(y, z) = (1/N) Σ_{i: yᵢ = y} θ(xᵢ)_z; P̂(y | z) = P̂(y, z) / P̂(z);
    LEEP = (1/N) Σᵢ log Σ_z P̂(yᵢ | z) θ(xᵢ)_z.

    Example:
        >>> theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]]); y = np.array([0, 0, 1])
        >>> round(leep(theta, y), 4)
        -0.2449
    """
    theta = np.asarray(source_probabilities, dtype=np.float64)
    theta, y = _check(theta, labels, "LEEP")
    if np.any(theta < 0) or not np.allclose(theta.sum(1), 1.0, atol=1e-4):
        raise ConfigError("LEEP needs source-label probabilities: non-negative rows that sum to 1 (softmax outputs)")
    onehot = _one_hot(y)  # (N, K)
    joint = onehot.T @ theta / len(y)  # (K, Z)
    p_z = joint.sum(0)  # (Z,)
    conditional = np.divide(joint, p_z[None, :], out=np.zeros_like(joint), where=p_z[None, :] > 0)  # P(y | z)
    eep = theta @ conditional.T  # (N, K): the expected empirical predictor
    return float(np.mean(np.log(np.maximum((eep * onehot).sum(1), np.finfo(np.float64).tiny))))


def hscore(features: np.ndarray, labels: np.ndarray, *, shrinkage: bool = True) -> float:
    """H-score of features (N, D) for labels (N,): tr(cov(f)⁻¹ · cov(E[f | y])), at most K − 1.

    `shrinkage=True` (the default) is the regularised H-score of Ibrahim, Ponomareva & Mazumder
    (ICLR 2023): tr(cov_α(f)⁻¹ · (1 − α) · cov(E[f | y])), where cov_α(f) = (1 − α)·cov(f) + α·μ·I is
    the Ledoit–Wolf estimate with shrinkage α. The (1 − α) factor scales the between-class
    covariance like the within-feature one, which keeps the score below K − 1 and comparable
    across models whose features need different shrinkage. `shrinkage=False` is the original score
    of Bao et al. with a pseudo-inverse. Covariances are population ones (divided by N).

    Example:
        >>> f = np.random.default_rng(0).normal(size=(200, 4)) * [1, 2, 3, 4]; y = (f[:, 0] > 0).astype(int)
        >>> hscore(f, y) > hscore(f[:, 1:], y)  # (isotropic features would shrink fully: α = 1, score 0)
        True
    """
    f, y = _check(features, labels, "H-score")
    f = f - f.mean(0)
    onehot = _one_hot(y)
    class_means = (onehot.T @ f) / onehot.sum(0)[:, None]  # (K, D)
    g = onehot @ class_means  # (N, D): each example replaced by its class mean
    cov_g = g.T @ g / len(f)
    if shrinkage:
        from sklearn.covariance import ledoit_wolf

        cov_f, alpha = ledoit_wolf(f, assume_centered=True)
        return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15, hermitian=True) @ ((1.0 - alpha) * cov_g)))
    cov_f = f.T @ f / len(f)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g))
