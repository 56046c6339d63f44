"""The training loop: preloaded tensors, batches gathered by index, early stopping on validation."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, TrainingDiverged
from ..models.head import FromBlock, TransferModel
from ..strategies.base import Strategy
from .augment import AUGMENTS, augment_batch, check_augment
from .checkpoint import LoopState, load_checkpoint, save_checkpoint
from .device import DEVICES, PRECISIONS, autocast, check_precision, resolve_device, to_device
from .distributed import DataParallel
from .evaluate import accuracy, mse
from .runtime import resolve_threads, seed_everything, set_threads

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "cosine", "onecycle")
LOSSES = ("cross-entropy", "mse")
MAX_EVALS = 25


@dataclass
class TrainConfig:
    """How one run trains.

    `epochs=None` picks enough epochs for ~`min_steps` optimiser steps (10–200 epochs).
    `eval_every=None` validates every epoch, or every k epochs when that would exceed
    `MAX_EVALS` passes (few-shot runs have 1-step epochs; validating each would dominate the run).
    """

    epochs: int | None = None
    batch_size: int = 32
    lr: float | None = None  # the head's; None: the backbone's default (1e-3; 1e-2 for text encoders)
    backbone_lr: float | None = None  # None: the backbone's default (--lr for mlp/cnn; 2e-5 for text encoders)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["none", "cosine", "onecycle"] = "none"
    loss: Literal["cross-entropy", "mse"] | None = None  # None: cross-entropy for classes, MSE for numbers
    patience: int | None = None
    min_steps: int = 300
    eval_every: int | None = None
    seed: int = 0
    threads: int | None = None
    compile: bool = False  # torch.compile the trained part; off by default (benchmarks/compile.py)
    restore_best: bool = True  # end with the weights of the best validation pass (False: the last epoch's)
    bn: Literal["train", "freeze"] = "train"  # freeze: every BatchNorm keeps its statistics and affine parameters
    augment: Literal["none", "shift", "affine"] = "none"  # random per-batch image transforms (engine/augment.py)
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda if a GPU is visible, else mps, else cpu
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast of the forward pass, CUDA only

    def __post_init__(self) -> None:
        checks = [
            (self.optimizer in OPTIMIZERS, f"--optimizer {self.optimizer!r} is not one of {list(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule {self.schedule!r} is not one of {list(SCHEDULES)}"),
            (self.loss is None or self.loss in LOSSES, f"--loss {self.loss!r} is not one of {list(LOSSES)}"),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be ≥ 1; got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be ≥ 1; got {self.batch_size}"),
            (self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), f"--lr must be a positive number; got {self.lr}"),
            (self.backbone_lr is None or (self.backbone_lr > 0 and math.isfinite(self.backbone_lr)),
             f"--backbone-lr must be a positive number; got {self.backbone_lr}"),
            (self.patience is None or self.patience >= 1, f"--patience must be ≥ 1; got {self.patience}"),
            (self.eval_every is None or self.eval_every >= 1, f"--eval-every must be ≥ 1; got {self.eval_every}"),
            (self.bn in ("train", "freeze"), f"--bn {self.bn!r} is not one of ['train', 'freeze']"),
            (self.augment in AUGMENTS, f"--augment {self.augment!r} is not one of {list(AUGMENTS)}"),
            (self.device in DEVICES, f"--device {self.device!r} is not one of {list(DEVICES)}"),
            (self.precision in PRECISIONS, f"--precision {self.precision!r} is not one of {list(PRECISIONS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        resolve_device(self.device)  # --device cuda on a machine without a GPU fails here, before any data loads
        check_precision(self.precision, self.device)
        self.threads = resolve_threads(self.threads)

    def learning_rates(self, backbone: Any) -> tuple[float, float]:
        """(head, backbone) learning rates: the given ones, else the backbone's defaults."""
        head = self.lr if self.lr is not None else backbone.default_lr
        if self.backbone_lr is not None:
            return head, self.backbone_lr
        return head, backbone.default_backbone_lr if backbone.default_backbone_lr is not None else head

    def resolved_epochs(self, n_train: int) -> int:
        if self.epochs is not None:
            return self.epochs
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        return max(10, min(200, math.ceil(self.min_steps / steps_per_epoch)))

    def resolved_eval_every(self, epochs: int) -> int:
        return self.eval_every if self.eval_every is not None else max(1, math.ceil(epochs / MAX_EVALS))


@dataclass
class RunResult:
    """What one training produced: the best-on-validation weights are loaded back into the model.

    `val_metric` is "accuracy" for classes (higher is better) or "mse" for numeric targets (lower is
    better); `val_value` is its value at `best_epoch`.
    """

    epochs: int
    best_epoch: int
    val_metric: str
    val_value: float
    train_seconds: float
    steps: int
    samples_seen: int
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    cached_blocks: int = 0  # leading frozen blocks whose outputs were computed once, not per step
    eval_seconds: float = 0.0  # the part of train_seconds spent in validation passes
    trainable_params: int = 0  # parameters the optimiser updated (adapters included, before any merge)
    test_predictions: list[int] | None = None  # predicted class per test example (set by train_run)
    target_scale: dict[str, float] | None = None  # numeric targets: the mean and std they trained standardised by

    @property
    def val_accuracy(self) -> float:
        return self.val_value if self.val_metric == "accuracy" else float("nan")


EpochCallback = Callable[[dict[str, float]], None]


def _optimizer(cfg: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The fastest correct step available: fused kernels (CPU and CUDA in torch ≥ 2.4), else foreach.

    Measured on the 2-core CPU box for the seed MLP: fused Adam 48.7k samples/s, the default
    per-parameter loop 39.3k, foreach 37.9k (benchmarks/seed_mlp.py records the end-to-end ratio).
    """
    if cfg.optimizer == "sgd":
        cls, kwargs = torch.optim.SGD, {"momentum": cfg.momentum}
    else:
        cls, kwargs = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW), {}
    try:
        return cls(groups, weight_decay=cfg.weight_decay, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
        return cls(groups, weight_decay=cfg.weight_decay, foreach=True, **kwargs)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total_steps: int):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    if cfg.schedule == "onecycle":
        max_lrs = [g["lr"] for g in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lrs, total_steps=max(1, total_steps))
    return None


def _loss_fn(cfg: TrainConfig, num_outputs: int, numeric: bool) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if numeric:
        if cfg.loss == "cross-entropy":
            raise ConfigError("--loss cross-entropy needs class labels; numeric targets train with --loss mse")
        return lambda out, y: F.mse_loss(out.squeeze(1), y)  # (B, 1) -> (B,)
    if cfg.loss in (None, "cross-entropy"):
        return F.cross_entropy
    # MSE (seed §2.1.4) between class probabilities and one-hot targets, as the seed's Keras example would.
    return lambda logits, y: F.mse_loss(logits.softmax(1), F.one_hot(y, num_outputs).to(logits.dtype))


def _freeze_batchnorm(model: nn.Module) -> None:
    """--bn freeze: statistics and affine parameters fixed, module in eval mode (after Lightning's BaseFinetuning)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)


def _mean_loss(losses: list[torch.Tensor], n: int, batch_size: int) -> float:
    """Per-example mean of per-batch mean losses (the last batch may be smaller).

    Summed in Python from one host copy per epoch: a float32 dot product's summation order may
    depend on memory alignment, and a resumed run must report the very same number.
    """
    values = torch.stack(losses).tolist()
    sizes = [batch_size] * (len(values) - 1) + [n - batch_size * (len(values) - 1)]
    return sum(v * w for v, w in zip(values, sizes)) / n


def fit(
    model: TransferModel,
    strategy: Strategy,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    cfg: TrainConfig,
    *,
    on_epoch_end: EpochCallback | None = None,
    on_step: Callable[[int, int], None] | None = None,
    start_block: int = 0,
    checkpoint: Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    checkpoint_interval: float = 0.0,
) -> RunResult:
    """Train `model` with `strategy` on (x_train, y_train); keep the weights of the best validation epoch.

    The strategy must already have prepared the model (`strategy.prepare(model)`), under the same
    seed, so that a new head and any re-initialisation are repeatable. `on_step(step, steps_per_epoch)`
    and `on_epoch_end(record)` feed progress bars; they see no tensors. With `start_block=k`, the
    inputs are the outputs of the first k (frozen) backbone blocks, and only the rest runs.

    With `checkpoint` (a file path) the full training state is saved at the end of every epoch and,
    with `checkpoint_every=N`, every N steps; `resume=True` continues from it, bit-identically to a
    run that was never interrupted (same seed and threads). `checkpoint_interval` (seconds) skips
    epoch-end checkpoints written sooner than that after the previous one (short runs in a grid).

    The run trains on `cfg.device` (data copied there once). Inside a torch.distributed process
    group of several processes it trains data-parallel (engine/distributed.py): each process takes
    its share of every global batch, and only rank 0 writes checkpoints.
    """
    set_threads(cfg.threads)
    order = seed_everything(cfg.seed)
    n = len(x_train)
    if n == 0:
        raise ConfigError("the training split is empty; nothing to train on")
    check_augment(cfg.augment, model.backbone.input_spec.kind)
    if cfg.augment != "none" and start_block:
        raise ConfigError("--augment transforms the input images, so a frozen prefix can't be cached; run with cache off")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ConfigError(f"--checkpoint-every must be a whole number of steps ≥ 1; got {checkpoint_every}")
    epochs = cfg.resolved_epochs(n)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    head_lr, backbone_lr = cfg.learning_rates(model.backbone)
    device = resolve_device(cfg.device)
    ddp = DataParallel.current(cfg.batch_size, device)  # None in a single process
    writes = ddp is None or ddp.rank == 0  # only rank 0 writes checkpoints
    model.to(device)
    x_train, y_train, x_val = (to_device(t, device) for t in (x_train, y_train, x_val))
    regularizer = strategy.regularizer if strategy.has_regularizer else None
    names = {id(p): name for name, p in model.named_parameters()}
    opt = _optimizer(cfg, strategy.param_groups(model, head_lr, backbone_lr))
    sched = _scheduler(cfg, opt, epochs * steps_per_epoch)
    numeric = y_train.is_floating_point()  # float targets are a regression task
    loss_fn = _loss_fn(cfg, model.head_spec.num_outputs, numeric)
    metric_name = "mse" if numeric else "accuracy"
    sign = -1.0 if numeric else 1.0  # compare scores so that higher is always better
    net = model if start_block == 0 else FromBlock(model, start_block)
    if cfg.compile:
        net = torch.compile(net)  # shares parameters with `net`; the first steps pay the compile time
    has_val = len(x_val) > 0
    eval_every = cfg.resolved_eval_every(epochs)

    st = LoopState()
    identity = asdict(cfg) | {"epochs": epochs, "n_train": n, "start_block": start_block, "strategy": strategy.describe()}
    saved = {"config": identity, "model": model, "optimizer": opt, "scheduler": sched, "order": order}
    if checkpoint is not None and resume and checkpoint.is_file():
        load_checkpoint(checkpoint, state=st, **saved)
    stop, last_save = False, time.perf_counter()
    while st.epoch <= epochs and not stop:
        epoch, start = st.epoch, time.perf_counter()
        strategy.on_epoch_start(model, epoch, epochs)  # phase schedules (lp-ft, gradual unfreezing)
        strategy.train_mode(model)
        if cfg.bn == "freeze":
            _freeze_batchnorm(model)
        if st.position == 0:  # a fresh epoch (a resumed one keeps its order and losses)
            st.trained.update(names[id(p)] for g in opt.param_groups for p in g["params"] if p.requires_grad)
            st.perm, st.losses = torch.randperm(n, generator=order), []
        perm = st.perm.to(device)  # the order is drawn on the CPU (same on every device); batches gather on the device
        if ddp is not None:
            ddp.wrap(net)
        for i in range(st.position, n, cfg.batch_size):
            if strategy.has_step_schedule and strategy.on_step_start(model, st.steps + len(st.losses)):
                strategy.train_mode(model)  # a block was unfrozen mid-epoch: its BatchNorm/dropout now train
                if cfg.bn == "freeze":
                    _freeze_batchnorm(model)
                st.trained.update(names[id(p)] for g in opt.param_groups for p in g["params"] if p.requires_grad)
                if ddp is not None:
                    ddp.wrap(net)
            idx = perm[i : i + cfg.batch_size]
            xb = x_train[idx] if cfg.augment == "none" else augment_batch(x_train[idx], cfg.augment, order)
            with autocast(device, cfg.precision):
                loss = loss_fn(net(xb), y_train[idx]) if ddp is None else ddp.loss(loss_fn, xb, y_train[idx])
            if regularizer is not None:
                loss = loss + regularizer(model)
            logged = loss.detach() if ddp is None else ddp.global_loss(loss)  # the global batch's loss
            if not torch.isfinite(logged):  # one host sync per step: never step (or save) on a NaN
                raise TrainingDiverged(
                    f"training diverged: the loss is {float(logged)} at epoch {epoch}, step {i // cfg.batch_size + 1} "
                    f"(training examples {idx[:5].tolist()}{'…' if len(idx) > 5 else ''}); nothing was saved from "
                    "this step — lower --lr, check the inputs for extreme values, or resume from the last checkpoint"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            st.losses.append(logged)  # summed once per epoch: no per-step arithmetic or host sync
            st.position = i + cfg.batch_size
            if on_step is not None:
                on_step(i // cfg.batch_size + 1, steps_per_epoch)
            if checkpoint_every and checkpoint is not None and writes and st.position < n \
                    and (st.steps + len(st.losses)) % checkpoint_every == 0:
                now = time.perf_counter()
                st.train_seconds, start = st.train_seconds + now - start, now
                save_checkpoint(checkpoint, state=st, **saved)
        st.position, st.steps = 0, st.steps + steps_per_epoch
        validate = epoch % eval_every == 0 or epoch == epochs
        if validate:
            if ddp is not None:
                ddp.sync_buffers(model)  # BatchNorm statistics of rank 0 everywhere: every process scores the same model
            eval_start = time.perf_counter()
            val_value = (mse(net, x_val, y_val) if numeric else accuracy(net, x_val, y_val)) if has_val else float("nan")
            st.eval_seconds += time.perf_counter() - eval_start
        st.train_seconds += time.perf_counter() - start  # bookkeeping below (history, best copy, checkpoint) excluded
        if validate:
            record = {"epoch": epoch, "train_loss": _mean_loss(st.losses, n, cfg.batch_size),
                      f"val_{metric_name}": val_value, "elapsed_seconds": st.train_seconds}
            st.history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record | {"epochs": epochs})
            if has_val and sign * val_value > st.best_score:
                st.best_score, st.best_value, st.best_epoch = sign * val_value, val_value, epoch
                st.best_state = copy.deepcopy(model.state_dict())
            stop = cfg.patience is not None and has_val and epoch - st.best_epoch >= cfg.patience * eval_every
        st.epoch += 1
        if checkpoint is not None and writes and time.perf_counter() - last_save >= checkpoint_interval:
            save_checkpoint(checkpoint, state=st, **saved)
            last_save = time.perf_counter()
    epoch = st.epoch - 1
    best_epoch = st.best_epoch
    if st.best_state is not None and cfg.restore_best:
        model.load_state_dict(st.best_state)
    else:
        best_epoch = epoch
    model.eval()
    if ddp is not None:
        ddp.check_replicas(model)
    return RunResult(
        epochs=epoch,
        best_epoch=best_epoch,
        val_metric=metric_name,
        val_value=st.best_value,
        train_seconds=st.train_seconds,
        steps=st.steps,
        samples_seen=epoch * n,
        history=st.history,
        config=asdict(cfg) | {"epochs": epochs, "lr": head_lr, "backbone_lr": backbone_lr, "device": device.type,
                              "processes": 1 if ddp is None else ddp.world},
        cached_blocks=start_block,
        eval_seconds=st.eval_seconds,
        trainable_params=sum(p.numel() for name, p in model.named_parameters() if name in st.trained),
    )
