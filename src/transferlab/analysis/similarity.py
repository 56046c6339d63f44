"""Layer-wise representation similarity: linear CKA (Kornblith, Norouzi, Lee & Hinton, ICML 2019).

    CKA(X, Y) = ‖Yᵀ X‖²_F / (‖Xᵀ X‖_F · ‖Yᵀ Y‖_F),   X (n, p), Y (n, q) with centred columns,

the linear-kernel HSIC of two representations of the same n examples, normalised. It is 1 for
identical representations (NaN, undefined, when one side is constant), invariant to orthogonal transforms and isotropic scaling of either side
(not to arbitrary invertible linear maps), and comparable across layers of different widths.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between two representations (n, p) and (n, q) of the same examples, in [0, 1].

    Computed from feature-space cross products when the widths are small, else from n×n Gram
    matrices (the same number).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> round(linear_cka(x, 3 * x), 6)
        1.0
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ConfigError(f"CKA compares two representations of the same examples: (n, p) and (n, q); got {a.shape} "
                          f"and {b.shape}")
    if len(a) < 2:
        raise ConfigError(f"CKA needs at least 2 examples; got {len(a)}")
    a, b = a - a.mean(0), b - b.mean(0)
    if a.shape[1] * b.shape[1] <= len(a) ** 2:
        cross = np.linalg.norm(b.T @ a) ** 2
        norm_a, norm_b = np.linalg.norm(a.T @ a), np.linalg.norm(b.T @ b)
    else:  # ⟨K, L⟩ with K = AAᵀ, L = BBᵀ: ‖BᵀA‖²_F = tr(KL), ‖AᵀA‖_F = ‖K‖_F
        k, l_ = a @ a.T, b @ b.T
        cross, norm_a, norm_b = float((k * l_).sum()), np.linalg.norm(k), np.linalg.norm(l_)
    if norm_a == 0 or norm_b == 0:
        return float("nan")  # undefined: one side maps every example to the same point (e.g. dead units)
    return float(cross / (norm_a * norm_b))
