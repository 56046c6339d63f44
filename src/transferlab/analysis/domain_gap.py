"""Domain gap: how far apart source and target inputs lie in a backbone's representation.

The distance is the Fréchet distance between Gaussian fits of the two sets of representations
(Dowson & Landau 1982; the distance behind FID, Heusel et al. 2017),

    FD = ‖μₛ − μₜ‖² + tr Σₛ + tr Σₜ − 2 tr (Σₛ Σₜ)^½,

divided by its upper bound ‖μₛ − μₜ‖² + tr Σₛ + tr Σₜ, so it is free of the features' scale and lies in
[0, 1]: 0 for identical statistics, 1 for sets that share neither mean nor any direction of variance.
tr (Σₛ Σₜ)^½ is the nuclear norm of X̃ₛ X̃ₜᵀ / √(nₛ nₜ) (centred rows), computed in whichever of the
feature or example spaces is smaller.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def _sqrt_cross_trace(a: np.ndarray, b: np.ndarray) -> float:
    """tr (Σₐ Σ_b)^½ for centred rows a (n, d), b (m, d), with Σ = XᵀX / n."""
    n, m, d = len(a), len(b), a.shape[1]
    if d <= min(n, m):
        cov_a, cov_b = a.T @ a / n, b.T @ b / m
        w, v = np.linalg.eigh(cov_a)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # Σₐ^½
        return float(np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum())
    return float(np.linalg.svd(a @ b.T, compute_uv=False).sum() / np.sqrt(n * m))


def normalized_frechet_distance(source: np.ndarray, target: np.ndarray) -> float:
    """Fréchet distance of Gaussian fits of two sets of representations (n, d), (m, d), scaled to [0, 1].

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
        >>> normalized_frechet_distance(a, b) < 0.05 < normalized_frechet_distance(a, b + 3)
        True
    """
    a, b = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ConfigError(f"the domain gap needs two sets of same-width representations; got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"the domain gap needs at least 2 examples on each side; got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    a, b = a - mu_a, b - mu_b
    mean_term = float(((mu_a - mu_b) ** 2).sum())
    tr_a, tr_b = float((a**2).sum() / len(a)), float((b**2).sum() / len(b))
    bound = mean_term + tr_a + tr_b
    if bound <= 0:
        return 0.0  # both sets are one and the same point
    fd = bound - 2 * _sqrt_cross_trace(a, b)
    return float(min(max(fd / bound, 0.0), 1.0))
