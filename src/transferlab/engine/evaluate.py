"""Evaluation in large batches under inference mode."""

from __future__ import annotations

import torch
from torch import nn

EVAL_BATCH = 1024


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """(N, *input) -> (N, num_outputs) logits on the CPU; batches go to the model's device; the model
    is left in the mode it was in."""
    from .device import module_device

    device = module_device(model)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def _reduced(model: nn.Module, x: torch.Tensor, y: torch.Tensor, metrics: dict, squeeze: bool = False) -> dict[str, float]:
    """Metrics of a data-parallel run: each process scores its shard, torchmetrics reduces across processes."""
    from .device import module_device
    from .distributed import sharded_metrics

    def predict(xs: torch.Tensor) -> torch.Tensor:
        out = predict_logits(model, xs)
        return out.squeeze(1) if squeeze else out

    return sharded_metrics(predict, x, y, metrics, module_device(model))


def _data_parallel() -> bool:
    from .distributed import process_share

    return process_share()[1] > 1


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    if _data_parallel():
        from torchmetrics.classification import MulticlassAccuracy

        classes = int(predict_logits(model, x[:1]).shape[1])
        return _reduced(model, x, y, {"a": MulticlassAccuracy(classes, average="micro")})["a"]
    return float((predict_logits(model, x).argmax(1) == y).float().mean())


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    if _data_parallel():
        from torchmetrics import MeanSquaredError

        return _reduced(model, x, y, {"mse": MeanSquaredError()}, squeeze=True)["mse"]
    return float(((predict_logits(model, x).squeeze(1) - y) ** 2).mean())


def regression_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """MSE, MAE and R² (torchmetrics) of numeric predictions on (x, y)."""
    from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

    if _data_parallel() and len(y) > 1:
        from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score

        m = _reduced(model, x, y, {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}, squeeze=True)
        return m | {"n": int(len(y))}
    pred = predict_logits(model, x).squeeze(1)  # (N,)
    return {
        "mse": float(mean_squared_error(pred, y)),
        "mae": float(mean_absolute_error(pred, y)),
        "r2": float(r2_score(pred, y)) if len(y) > 1 else float("nan"),
        "n": int(len(y)),
    }


def majority_rate(y: torch.Tensor) -> float:
    """Accuracy of always answering the most common class of the labels y (N,)."""
    return float(torch.bincount(y).max() / len(y)) if len(y) else float("nan")


def balanced_accuracy(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Mean recall over the classes present in y: accuracy that the majority class cannot inflate."""
    support = torch.bincount(y, minlength=num_classes).double()
    hits = torch.bincount(y[pred == y], minlength=num_classes).double()
    present = support > 0
    return float((hits[present] / support[present]).mean()) if bool(present.any()) else float("nan")


def metrics_from_predictions(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 (torchmetrics), balanced accuracy and the majority-class rate of predicted classes."""
    from torchmetrics.functional.classification import multiclass_f1_score

    return {
        "accuracy": float((pred == y).float().mean()),
        "macro_f1": float(multiclass_f1_score(pred, y, num_classes=num_classes, average="macro")),
        "balanced_accuracy": balanced_accuracy(pred, y, num_classes),
        "majority_rate": majority_rate(y),
        "n": int(len(y)),
    }


def classification_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1, balanced accuracy and the majority-class rate on (x, y)."""
    if _data_parallel() and len(y):
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        m = _reduced(model, x, y, {"accuracy": MulticlassAccuracy(num_classes, average="micro"),
                                   "macro_f1": MulticlassF1Score(num_classes, average="macro"),
                                   "balanced_accuracy": MulticlassAccuracy(num_classes, average="macro")})
        return m | {"majority_rate": majority_rate(y), "n": int(len(y))}
    return metrics_from_predictions(predict_logits(model, x).argmax(1), y, num_classes)
