"""Reference lines for a run's test metrics: the majority class for classes; the training mean and
ridge regression (scikit-learn) for numeric targets, on the same split. A model below them is warned about."""

from __future__ import annotations

from typing import Any

import numpy as np


def regression_references(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                          y_test: np.ndarray) -> dict[str, float]:
    """Test MSE and R² of predicting the training mean, and of ridge regression (alpha by leave-one-out CV)
    on the same (flattened) inputs.

    Example:
        >>> x = np.arange(20.0)[:, None]; y = 2 * x[:, 0] + 1
        >>> round(regression_references(x[:15], y[:15], x[15:], y[15:])["ridge_r2"], 3)
        1.0
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import mean_squared_error, r2_score

    xtr, xte = np.asarray(x_train, np.float64).reshape(len(x_train), -1), np.asarray(x_test, np.float64).reshape(len(x_test), -1)
    ytr, yte = np.asarray(y_train, np.float64), np.asarray(y_test, np.float64)
    mean = np.full(len(yte), ytr.mean())
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(xtr, ytr).predict(xte)
    two = len(yte) > 1
    return {"mean_predictor_mse": float(mean_squared_error(yte, mean)),
            "mean_predictor_r2": float(r2_score(yte, mean)) if two else float("nan"),
            "ridge_mse": float(mean_squared_error(yte, ridge)), "ridge_r2": float(r2_score(yte, ridge)) if two else float("nan")}


def metric_warnings(metrics: dict[str, Any], class_names: list[str] | None = None,
                    y_test: np.ndarray | None = None) -> list[str]:
    """A warning when a model is below its reference line: the majority class, or the mean predictor."""
    out = []
    acc, majority = metrics.get("accuracy"), metrics.get("majority_rate")
    if acc is not None and majority is not None and acc < majority:
        common = ""
        if class_names and y_test is not None and len(y_test):
            common = f" ('{class_names[int(np.bincount(np.asarray(y_test, np.int64)).argmax())]}')"
        balanced = metrics.get("balanced_accuracy")
        out.append(f"test accuracy {acc:.3f} is below the majority-class rate {majority:.3f}: always answering the most "
                   f"common class{common} scores higher" + (f"; balanced accuracy is {balanced:.3f}" if balanced is not None else ""))
    mse, mean_mse = metrics.get("mse"), metrics.get("mean_predictor_mse")
    if mse is not None and mean_mse is not None and mse > mean_mse:
        ridge = metrics.get("ridge_mse")
        out.append(f"test MSE {mse:.4g} is worse than predicting the training mean (MSE {mean_mse:.4g})"
                   + (f"; ridge regression reaches MSE {ridge:.4g}" if ridge is not None else ""))
    return out
