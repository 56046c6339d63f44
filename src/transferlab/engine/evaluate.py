"""Evaluation in large batches under inference mode."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

EVAL_BATCH = 1024
TEXT_BATCH = 32  # sorted by length: small batches keep padding (and wasted attention) low (sentence-transformers: 32)


def length_order(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """Row order shortest first when `x` is tokenized text (packed ids and mask, (N, 2, L) int64), else None.

    Text runs in batches of similar length, so each batch is padded only to its own longest text.
    """
    backbone = getattr(model, "backbone", model)
    lengths = getattr(backbone, "input_lengths", None)
    if lengths is None or x.dtype != torch.long or x.dim() != 3 or x.shape[1] != 2 or len(x) == 0:
        return None
    return torch.argsort(lengths(x), stable=True)


def eval_batch(model: nn.Module, batch_size: int = EVAL_BATCH) -> int:
    """`batch_size`, or less where the backbone says how many examples fit its activations' memory (`eval_batch`:
    an ImageNet network at 224 px holds ~5 MB per image in one activation; 1024 of them would be 5 GB)."""
    backbone = getattr(model, "backbone", model)
    cap = getattr(backbone, "eval_batch", None)
    return min(batch_size, int(cap)) if cap else batch_size


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = EVAL_BATCH, advance=None) -> torch.Tensor:
    """(N, *input) -> (N, num_outputs) logits on the CPU; batches go to the model's device; the model
    is left in the mode it was in. Tokenized text runs shortest first in batches of at most TEXT_BATCH
    (rows come back in their order); `advance(n)` reports progress after each batch."""
    from .device import module_device

    device = module_device(model)
    batch_size = eval_batch(model, batch_size)
    order = length_order(model, x)
    if order is not None:
        x, batch_size = x[order], min(batch_size, TEXT_BATCH)
    was_training = model.training
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            outs.append(model(_rows(x, i, i + batch_size).to(device)).cpu())
            if advance is not None:
                advance(len(outs[-1]))
    model.train(was_training)
    out = torch.cat(outs) if outs else _empty_output(model, x, device)
    return out[torch.argsort(order)] if order is not None else out


def _rows(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Rows start:stop as a tensor; image files held as LazyImages are decoded here, a batch at a time."""
    rows = x[start:stop]
    return rows if isinstance(rows, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))


def _empty_output(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The (0, outputs) result for no rows (the model run on nothing, as before batching)."""
    with torch.inference_mode():
        return model(_rows(x, 0, 0).to(device)).cpu()


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


def macro_f1(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """Macro-averaged F1 as torchmetrics' `multiclass_f1_score(average="macro")` computes it: the mean over
    classes that occur in `y` or `pred` (a class with neither is left out), 0 where precision+recall is 0.

    Computed from a confusion count in torch: importing torchmetrics costs seconds of a short `evaluate`.
    """
    tp = torch.bincount(y[pred == y], minlength=num_classes).double()
    predicted = torch.bincount(pred, minlength=num_classes).double()
    actual = torch.bincount(y, minlength=num_classes).double()
    denom = predicted + actual  # 2·tp + fp + fn
    seen = denom > 0
    if not bool(seen.any()):
        return 0.0
    return float((2 * tp[seen] / denom[seen]).mean())


def regression_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, advance=None) -> dict[str, float]:
    """MSE, MAE and R² of numeric predictions on (x, y) (R² as torchmetrics' r2_score: 1 − SSres/SStot)."""
    if _data_parallel() and len(y) > 1:
        from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score

        m = _reduced(model, x, y, {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}, squeeze=True)
        return m | {"n": int(len(y))}
    pred = predict_logits(model, x, advance=advance).squeeze(1).double()  # (N,)
    target = y.double()
    residual = ((pred - target) ** 2).sum()
    total = ((target - target.mean()) ** 2).sum()
    return {
        "mse": float(residual / len(y)) if len(y) else float("nan"),
        "mae": float((pred - target).abs().mean()) if len(y) else float("nan"),
        "r2": float(1 - residual / total) if len(y) > 1 else float("nan"),
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
    """Accuracy, macro-F1, balanced accuracy and the majority-class rate of predicted classes."""
    return {
        "accuracy": float((pred == y).float().mean()),
        "macro_f1": macro_f1(pred, y, num_classes),
        "balanced_accuracy": balanced_accuracy(pred, y, num_classes),
        "majority_rate": majority_rate(y),
        "n": int(len(y)),
    }


def classification_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                           advance=None) -> dict[str, float]:
    """Accuracy, macro-F1, balanced accuracy and the majority-class rate on (x, y); `advance(n)` reports progress."""
    if _data_parallel() and len(y):
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        m = _reduced(model, x, y, {"accuracy": MulticlassAccuracy(num_classes, average="micro"),
                                   "macro_f1": MulticlassF1Score(num_classes, average="macro"),
                                   "balanced_accuracy": MulticlassAccuracy(num_classes, average="macro")})
        return m | {"majority_rate": majority_rate(y), "n": int(len(y))}
    return metrics_from_predictions(predict_logits(model, x, advance=advance).argmax(1), y, num_classes)
