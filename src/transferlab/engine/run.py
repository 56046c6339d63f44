"""One run: a strategy's head on a backbone, trained on a split, scored once on the test split."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.imagefiles import LazyImages
from ..data.task import Task, TaskSplit
from ..models import Backbone, TransferModel
from ..models.head import FromBlock
from ..models.pinning import Pins
from ..strategies.base import Strategy
from .evaluate import classification_metrics, regression_metrics
from .augment import check_augment
from .feature_cache import FeatureCache, cacheable_prefix, prefix_features
from .progress import Progress, progress_steps, training_progress
from .runtime import seed_everything, set_threads
from .train import EpochCallback, RunResult, TrainConfig, fit


def _labels(y: np.ndarray) -> torch.Tensor:
    """Labels as int64, or float32 numeric targets (regression)."""
    return torch.from_numpy(y.astype(np.float32 if y.dtype.kind == "f" else np.int64))


def _metrics(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task, advance=None) -> dict[str, float]:
    """Metrics on the fixed test split: classification or regression, by the task."""
    if task.is_numeric:
        return regression_metrics(net, x, y, advance=advance)
    return classification_metrics(net, x, y, task.num_classes, advance=advance)


def _run_metrics(net: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task,
                 advance=None) -> tuple[dict[str, float], list[int] | None]:
    """Test metrics and, for classes on one process, the predicted class of every test example (for paired
    per-example statistics in a comparison)."""
    from .evaluate import _data_parallel, metrics_from_predictions, predict_logits

    if task.is_numeric or _data_parallel() or len(y) == 0:
        return _metrics(net, x, y, task, advance), None
    pred = predict_logits(net, x, advance=advance).argmax(1)  # (N,)
    return metrics_from_predictions(pred, y, task.num_classes), pred.tolist()


def _test_metrics(model: TransferModel, task: Task, progress: Progress = False) -> dict[str, float]:
    with progress_steps(f"evaluate {len(task.y_test)} test rows", total=len(task.y_test), progress=progress) as advance:
        x = task.x_test if isinstance(task.x_test, LazyImages) else model.backbone.prepare_inputs(task.x_test)
        return _metrics(model, x, _labels(task.y_test), task, advance)


def unlabeled_rows(split: TaskSplit) -> np.ndarray:
    """Inputs of the pool rows that are neither training nor validation rows (their labels unused).

    Examples:
        >>> from transferlab.data import load_task, split_task
        >>> split = split_task(load_task("digits"), shots=5, seed=0)
        >>> len(unlabeled_rows(split)) == len(split.task.x_pool) - len(split.x_train) - len(split.x_val)
        True
    """
    if split.train_index is None or split.val_index is None:
        return split.task.x_pool[:0]
    used = np.zeros(len(split.task.x_pool), dtype=bool)
    used[split.train_index] = True
    used[split.val_index] = True
    return split.task.x_pool[~used]


def _inputs(model: TransferModel, split: TaskSplit, strategy: Strategy, k: int, cache: FeatureCache | bool,
            cache_key: str, report: Progress = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train, validation and test inputs as the trained part takes them: outputs of the first k blocks, or raw."""
    shared = (isinstance(cache, FeatureCache) and not strategy.tunes_backbone_before_fit
              and split.train_index is not None and split.val_index is not None)
    kind = "embed texts" if model.backbone.input_spec.kind == "text" else "features"
    if k and shared:  # the whole pool and test split once, for every run with this prefix
        task = split.task
        todo = sum(len(a) for name, a in (("pool", task.x_pool), ("test", task.x_test))
                   if not cache.has(cache_key, k, f"{task.name}:{name}", model.backbone))
        with progress_steps(f"{kind} (cache)", total=todo, progress=report if todo else False) as advance:
            pool = cache.features(cache_key, model.backbone, k, f"{task.name}:pool", task.x_pool,
                                  advance if not cache.has(cache_key, k, f"{task.name}:pool", model.backbone) else None)
            x_te = cache.features(cache_key, model.backbone, k, f"{task.name}:test", task.x_test,
                                  advance if not cache.has(cache_key, k, f"{task.name}:test", model.backbone) else None)
        x_tr, x_va = pool[split.train_index], pool[split.val_index]
    elif k:  # this run's own rows only (its prefix may be tuned, or nothing is shared)
        arrays = (split.x_train, split.x_val, split.x_test)
        with progress_steps(kind, total=sum(len(a) for a in arrays), progress=report) as advance:
            x_tr, x_va, x_te = (prefix_features(model.backbone, k, a, advance) for a in arrays)
    else:
        def prepare(x):  # float32 tensors, or token ids for text; image files stay lazy (decoded per batch)
            return x if isinstance(x, LazyImages) else model.backbone.prepare_inputs(x)

        x_tr, x_va, x_te = prepare(split.x_train), prepare(split.x_val), prepare(split.x_test)
    return x_tr, x_va, x_te


def target_scale(y: torch.Tensor) -> tuple[float, float]:
    """(mean, std) of numeric training targets; a constant target keeps std 1."""
    mean, std = float(y.mean()), float(y.std(unbiased=False)) if len(y) > 1 else 0.0
    return mean, std if std > 1e-12 else 1.0


def _fold_target_scale(model: TransferModel, mean: float, std: float) -> None:
    """The head learned standardised targets; fold y = std·out + mean into its output layer, so the
    saved model (and predict, evaluate, export) gives values in the target's own units."""
    with torch.no_grad():
        out = model.head.out  # (1, width) Linear
        out.weight.mul_(std)
        out.bias.mul_(std).add_(mean)


def train_run(
    backbone: Backbone,
    split: TaskSplit,
    strategy: Strategy,
    cfg: TrainConfig,
    *,
    progress: str | None = None,
    cache: FeatureCache | bool = True,
    cache_key: str = "run",
    checkpoint: Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    checkpoint_interval: float = 0.0,
    on_epoch_end: EpochCallback | None = None,
    unlabeled: np.ndarray | None = None,
    initial_head: dict[str, torch.Tensor] | None = None,
    progress_to: Progress = True,
) -> tuple[TransferModel, RunResult, dict[str, float]]:
    """One run: put the strategy's head on `backbone` (modified in place), train, evaluate on the test split.

    The test split is read only here, after training, for the returned metrics; training and
    early stopping see only the train and validation splits. When the strategy freezes a prefix of
    the backbone, its outputs are computed once (`cache=True`: for this run; a FeatureCache: shared
    by every run whose prefix weights `cache_key` names) and only the rest trains; `cache=False`
    runs the whole network every step (the same result, slower). `on_epoch_end(record)` sees every
    validation pass (a tracker's per-epoch metrics), beside the progress bar. With a `progress`
    description, each step (a strategy's first phase, computing cached features, training, the test
    split) reports to `progress_to` (a bar, or a callable taking ProgressEvents).

    The run uses its own copy of `strategy` (`strategy.for_run()`): the instance passed in is never
    changed, so it can be passed to many runs. A strategy that needs unlabeled inputs gets `unlabeled`
    (inputs in the task's format), or by default the pool rows that are neither training nor
    validation rows (`unlabeled_rows`); never the test split. `initial_head` (a head state dict) starts the
    head from given weights instead of a fresh initialisation (engine/adaptation.py: the source head).
    """
    # long: the run's phases in order (prepare, first phase, inputs, fit, finalize, test) with their docs
    report: Progress = progress_to if progress is not None else False
    check_augment(cfg.augment, backbone.input_spec.kind)  # before any phase trains (setfit's pairs come first)
    strategy = strategy.for_run()  # per-run state lives in this copy only
    set_threads(cfg.threads)
    seed_everything(cfg.seed)  # the new head and any re-initialisation depend on the seed only
    strategy.configure_backbone(backbone)  # e.g. which blocks' pooled outputs are the features
    model = TransferModel(backbone, strategy.head_spec(split.task.num_outputs))
    if initial_head is not None:  # the head starts from given weights (domain adaptation: the source head, classes matched)
        model.head.load_state_dict(initial_head)
    strategy.prepare(model)
    y_tr, y_va, y_te = _labels(split.y_train), _labels(split.y_val), _labels(split.y_test)
    scale = target_scale(y_tr) if split.task.is_numeric else None
    if scale is not None:  # numeric targets train standardised: a network starts near 0, not near the targets
        y_tr, y_va = (y_tr - scale[0]) / scale[1], (y_va - scale[0]) / scale[1]
    phase_seconds = 0.0
    if strategy.tunes_backbone_before_fit:
        start = time.perf_counter()
        strategy.before_fit(model, model.backbone.prepare_inputs(split.x_train), y_tr, cfg.seed, progress=report)
        phase_seconds = time.perf_counter() - start
    k = 0
    if cache is not False and cfg.augment == "none":  # augmented images change every step
        k = cacheable_prefix(model.backbone, strategy.frozen_throughout(model.backbone))
    x_tr, x_va, x_te = _inputs(model, split, strategy, k, cache, cache_key, report)
    x_un = None
    if strategy.needs_unlabeled:
        rows = unlabeled if unlabeled is not None else unlabeled_rows(split)
        if len(rows):  # none: fit refuses the run, saying so
            x_un = prefix_features(model.backbone, k, rows) if k else model.backbone.prepare_inputs(rows)
    with training_progress(progress or "", enabled=report if progress is not None else None) as hooks:
        callbacks = [c for c in (hooks.on_epoch_end, on_epoch_end) if c is not None]
        result = fit(model, strategy, x_tr, y_tr, x_va, y_va, cfg, on_step=hooks.on_step,
                     on_epoch_end=(lambda record: [c(record) for c in callbacks]) if callbacks else None,
                     start_block=k, checkpoint=checkpoint,
                     checkpoint_every=checkpoint_every, resume=resume, checkpoint_interval=checkpoint_interval,
                     x_unlabeled=x_un)
    if phase_seconds:  # the first phase is training time too (time-to-accuracy stays honest)
        result.train_seconds += phase_seconds
        result.trainable_params += sum(p.numel() for p in model.backbone.parameters())
        result.trained_parameters = sorted(set(result.trained_parameters)
                                           | {f"backbone.{n}" for n, _ in model.backbone.named_parameters()})
        result.kept_switched_off = Pins(model).record()  # the first phase trained the whole backbone
        for record in result.history:
            record["elapsed_seconds"] += phase_seconds
    strategy.finalize(model)  # e.g. merge LoRA adapters: the model is a plain backbone + head again
    if scale is not None:
        _fold_target_scale(model, *scale)
        result.target_scale = {"mean": scale[0], "std": scale[1]}
        result.val_value *= scale[1] ** 2  # validation MSE back in the target's units
        for record in result.history:
            if "val_mse" in record:
                record["val_mse"] *= scale[1] ** 2
    net = model if k == 0 else FromBlock(model, k)
    with progress_steps("evaluate test split", total=len(y_te), progress=report if k == 0 else False) as advance:
        metrics, result.test_predictions = _run_metrics(net, x_te, y_te, split.task, advance)
    return model, result, metrics
