"""Transferability scores, CKA, domain gap and the probe: checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferlab.analysis.domain_gap import normalized_frechet_distance
from transferlab.analysis.probe import probe_accuracy
from transferlab.analysis.similarity import linear_cka
from transferlab.analysis.transferability import hscore, leep, logme
from transferlab.errors import ConfigError


@pytest.fixture(autouse=True)
def one_blas_thread():
    """numpy's BLAS on one thread: two are up to 90× slower when the other core is busy (analysis/runtime.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _features(n: int, d: int, classes: int, seed: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    f = rng.normal(size=(n, d))
    f[:, 0] += signal * y
    return f, y


def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def _max_gaussian_evidence(f: np.ndarray, y: np.ndarray) -> float:
    """LogME by its definition: max over (α, β) of log N(y_k | 0, I/β + FFᵀ/α), per class, / N, averaged.

    The Gaussian log-density is written out (slogdet, solve) and maximised by scipy's Nelder–Mead from
    several starts — nothing from transferlab.
    """
    from scipy.optimize import minimize

    n = len(y)
    gram = f @ f.T
    values = []
    for c in np.unique(y):
        target = (y == c).astype(float)

        def negative(p, target=target):
            alpha, beta = np.exp(np.clip(p, -50, 50))
            cov = np.eye(n) / beta + gram / alpha
            _, logdet = np.linalg.slogdet(cov)
            return 0.5 * (n * math.log(2 * math.pi) + logdet + target @ np.linalg.solve(cov, target))

        starts = ([0.0, 0.0], [-3.0, 1.0], [0.0, 8.0])
        best = min((minimize(negative, s, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                                          "maxiter": 4000}) for s in starts),
                   key=lambda r: r.fun)
        values.append(-best.fun / n)
    return float(np.mean(values))


@pytest.mark.parametrize("n,d", [(30, 3), (40, 10), (12, 20), (25, 1)])
def test_logme_is_the_maximised_evidence_of_bayesian_linear_regression(n, d):
    f, y = _features(n, d, 3, seed=n + d)
    assert logme(f, y) == pytest.approx(_max_gaussian_evidence(f, y), abs=1e-6)


def test_logme_closed_form_when_the_feature_gram_is_a_multiple_of_identity():
    # FFᵀ = c·I makes the marginal covariance (1/β + c/α)·I = v·I, maximised at v = ‖y‖²/N:
    # per class, log N(y | 0, v·I) / N = −½·log(2π·n_k/N) − ½, with n_k examples of class k.
    y = np.array([0, 0, 0, 1, 1, 2])
    n_k = np.array([3, 2, 1])
    expected = float(np.mean(-0.5 * np.log(2 * math.pi * n_k / len(y)) - 0.5))
    for f in (2.5 * np.eye(6), np.hstack([np.eye(6), np.zeros((6, 4))]), np.zeros((6, 3))):
        assert logme(f, y) == pytest.approx(expected, abs=1e-9)


def test_logme_is_invariant_to_rotation_scaling_and_order_of_examples_and_classes():
    f, y = _features(80, 6, 4, seed=1)
    base = logme(f, y)
    assert logme(3.7 * f @ _orthogonal(6, 2), y) == pytest.approx(base, abs=1e-9)
    assert logme(1e-3 * f, y) == pytest.approx(base, abs=1e-9)
    order = np.random.default_rng(3).permutation(80)
    assert logme(f[order], y[order]) == pytest.approx(base, abs=1e-9)
    assert logme(f, (y + 1) % 4) == pytest.approx(base, abs=1e-9)  # renamed classes
    assert logme(f[:, ::-1], y) == pytest.approx(base, abs=1e-9)  # reordered features


def test_logme_sign_agrees_with_held_out_accuracy_on_an_easy_and_a_hard_task():
    from sklearn.linear_model import LogisticRegression

    scores, accuracies = {}, {}
    for name, signal in (("easy", 3.0), ("hard", 0.3)):
        f, y = _features(200, 5, 4, seed=7, signal=signal)
        f_test, y_test = _features(400, 5, 4, seed=8, signal=signal)
        scores[name] = logme(f, y)
        accuracies[name] = LogisticRegression(max_iter=500).fit(f, y).score(f_test, y_test)
    assert accuracies["easy"] > accuracies["hard"]
    assert scores["easy"] > scores["hard"]


def test_logme_refuses_bad_input_naming_what_it_got():
    with pytest.raises(ConfigError, match=r"shape \(10,\)"):
        logme(np.zeros(10), np.zeros(10))
    with pytest.raises(ConfigError, match=r"10 feature rows but labels of shape \(9,\)"):
        logme(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ConfigError, match=r"at least 2 classes; got classes \[1\]"):
        logme(np.ones((10, 2)), np.ones(10, dtype=int))
    with pytest.raises(ConfigError, match="finite features"):
        logme(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))


def test_leep_by_hand():
    theta = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9]])
    y = np.array([0, 0, 1])
    # joint P(y, z) = [[1.7, 0.3], [0.1, 0.9]] / 3; P(z) = [0.6, 0.4]; P(y | z) = joint / P(z)
    p_y_given_z = np.array([[1.7 / 1.8, 0.3 / 1.2], [0.1 / 1.8, 0.9 / 1.2]])
    by_hand = np.mean([math.log(theta[0] @ p_y_given_z[0]), math.log(theta[1] @ p_y_given_z[0]),
                       math.log(theta[2] @ p_y_given_z[1])])
    assert leep(theta, y) == pytest.approx(by_hand, abs=1e-12)


def test_leep_is_zero_for_a_source_head_that_already_predicts_the_target_labels():
    y = np.array([0, 1, 2, 1, 0])
    assert leep(np.eye(3)[y], y) == pytest.approx(0.0, abs=1e-12)
    assert leep(np.full((5, 3), 1 / 3), y) < leep(np.eye(3)[y] * 0.9 + 0.1 / 3, y) < 0


def test_leep_refuses_scores_that_are_not_probabilities():
    with pytest.raises(ConfigError, match="non-negative rows that sum to 1"):
        leep(np.array([[2.0, -1.0], [0.5, 0.5]]), np.array([0, 1]))


def test_hscore_without_shrinkage_is_invariant_to_invertible_maps_and_bounded_by_classes_minus_one():
    f, y = _features(300, 4, 3, seed=4, signal=2.0)
    a = np.random.default_rng(5).normal(size=(4, 4)) + 3 * np.eye(4)
    h = hscore(f, y, shrinkage=False)
    assert hscore(f @ a, y, shrinkage=False) == pytest.approx(h, rel=1e-8)
    assert 0 < h <= 2 + 1e-9
    assert hscore(f, y) > hscore(f[:, 1:], y)  # the class signal lives in feature 0


def test_cka_is_one_for_identical_and_invariant_to_rotation_and_isotropic_scaling():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    y = np.tanh(x @ rng.normal(size=(8, 5)))
    base = linear_cka(x, y)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x @ _orthogonal(8, 1) * 4.2, y) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 0.01 * y @ _orthogonal(5, 2)) == pytest.approx(base, abs=1e-10)
    squash = np.diag([10.0, 1, 1, 1, 1, 1, 1, 0.1])  # invertible but not orthogonal: CKA changes
    assert abs(linear_cka(x @ squash, y) - base) > 1e-3


def test_cka_matches_the_hsic_formula_in_both_of_its_code_paths():
    rng = np.random.default_rng(1)
    for n, p, q in ((50, 4, 6), (10, 40, 30)):  # feature-space products, then n×n Gram matrices
        x, y = rng.normal(size=(n, p)), rng.normal(size=(n, q))
        h = np.eye(n) - 1 / n
        k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
        hsic = np.trace(k @ l_) / math.sqrt(np.trace(k @ k) * np.trace(l_ @ l_))
        assert linear_cka(x, y) == pytest.approx(hsic, abs=1e-12)
        assert linear_cka(x, y) == pytest.approx(linear_cka(y, x), abs=1e-12)


def test_cka_of_a_constant_representation_is_undefined_and_shapes_are_checked():
    x = np.random.default_rng(0).normal(size=(10, 3))
    assert math.isnan(linear_cka(x, np.ones((10, 2))))
    with pytest.raises(ConfigError, match=r"\(10, 3\) and \(9, 3\)"):
        linear_cka(x, x[:9])


def test_domain_gap_is_zero_for_one_set_grows_with_a_shift_and_ignores_scale():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 6)), rng.normal(size=(400, 6))
    assert normalized_frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    same, shifted = normalized_frechet_distance(a, b), normalized_frechet_distance(a, b + 2.0)
    assert 0 <= same < 0.05 < shifted <= 1
    assert normalized_frechet_distance(5 * a, 5 * (b + 2.0)) == pytest.approx(shifted, abs=1e-9)
    # orthogonal supports, same mean: the maximum distance
    c = np.hstack([rng.normal(size=(400, 3)), np.zeros((400, 3))])
    d = np.hstack([np.zeros((400, 3)), rng.normal(size=(400, 3))])
    c, d = c - c.mean(0), d - d.mean(0)
    assert normalized_frechet_distance(c, d) == pytest.approx(1.0, abs=1e-9)


def test_domain_gap_feature_and_example_space_paths_agree():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 20)), rng.normal(size=(25, 20)) * 1.5 + 0.3
    wide = normalized_frechet_distance(np.hstack([a, np.zeros((30, 20))]), np.hstack([b, np.zeros((25, 20))]))
    assert wide == pytest.approx(normalized_frechet_distance(a, b), abs=1e-9)
    with pytest.raises(ConfigError, match=r"\(30, 20\) and \(25, 19\)"):
        normalized_frechet_distance(a, b[:, :19])


def test_probe_accuracy_is_none_below_two_examples_per_class_and_high_when_separable():
    f, y = _features(60, 3, 2, seed=0, signal=6.0)
    assert probe_accuracy(f, y) > 0.9
    assert probe_accuracy(f[:4], np.array([0, 1, 2, 3])) is None
    with pytest.raises(ConfigError, match="--folds must be at least 2.*got 1"):
        probe_accuracy(f, y, folds=1)
