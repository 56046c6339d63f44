"""Evaluation in large batches under inference mode."""

from __future__ import annotations

import torch
from torch import nn

EVAL_BATCH = 1024


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """(N, *input) -> (N, num_outputs) logits; the model is left in the mode it was in."""
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    return float(((predict_logits(model, x).squeeze(1) - y) ** 2).mean())


def regression_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """MSE, MAE and R² (torchmetrics) of numeric predictions on (x, y)."""
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

    pred = predict_logits(model, x).squeeze(1)  # (N,)
    return {
        "mse": float(mean_squared_error(pred, y)),
        "mae": float(mean_absolute_error(pred, y)),
        "r2": float(r2_score(pred, y)) if len(y) > 1 else float("nan"),
        "n": int(len(y)),
    }


def classification_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (torchmetrics) on (x, y)."""
    from torchmetrics.functional.classification import multiclass_f1_score

    pred = predict_logits(model, x).argmax(1)
    return {
        "accuracy": float((pred == y).float().mean()),
        "macro_f1": float(multiclass_f1_score(pred, y, num_classes=num_classes, average="macro")),
        "n": int(len(y)),
    }
