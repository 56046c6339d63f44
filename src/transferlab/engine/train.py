"""The training loop: preloaded tensors, batches gathered by index, early stopping on validation."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, TrainingDiverged
from ..models.head import FromBlock, TransferModel
from ..models.pinning import Pins
from ..strategies.base import Strategy, TrainingBatch, check_frozen_throughout
from .augment import AUGMENTS, augment_batch, check_augment
from .checkpoint import LoopState
from .device import DEVICES, PRECISIONS, check_precision, resolve_device
from .runner import Runner
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
    augment: Literal["none", "shift", "affine", "crop", "flip", "color", "photo"] = "none"  # random per-batch image transforms (engine/augment.py)
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
    trained_parameters: list[str] = field(default_factory=list)  # their names (model.named_parameters), sorted
    test_predictions: list[int] | None = None  # predicted class per test example (set by train_run)
    target_scale: dict[str, float] | None = None  # numeric targets: the mean and std they trained standardised by
    kept_switched_off: dict[str, list[int]] = field(default_factory=dict)  # pinned entries of trained parameters (models/pinning.py)

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
        # Not fused: torch's fused SGD fails once some parameters of a group have momentum buffers and
        # others (a block unfrozen mid-run by lp-ft or gradual unfreezing) do not yet (found by the
        # conformance suite); foreach handles the mix.
        return torch.optim.SGD(groups, weight_decay=cfg.weight_decay, momentum=cfg.momentum, foreach=True)
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


def _gather(x: torch.Tensor, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch's rows; image files held lazily (data/imagefiles.py LazyImages) are decoded here, per batch."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    return torch.from_numpy(np.ascontiguousarray(x[idx.cpu()], dtype=np.float32)).to(device)


class _UnlabeledStream:
    """The second stream: unlabeled rows drawn with replacement by a generator of its own (checkpointed)."""

    def __init__(self, x: torch.Tensor, cfg: TrainConfig) -> None:
        self.x, self.augment = x, cfg.augment
        self.order = torch.Generator().manual_seed(cfg.seed + 1_000_003)  # independent of the labelled order

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n rows: (inputs, their row numbers in the unlabeled inputs)."""
        rows = torch.randint(len(self.x), (n,), generator=self.order).to(self.x.device)
        batch = self.x[rows]
        return (batch if self.augment == "none" else augment_batch(batch, self.augment, self.order)), rows


def _same_shape(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Zero-pad every non-batch dimension to the largest, so batches can be concatenated.

    Texts are padded to the longest text of their own set (packed ids and mask (N, 2, L)): a labelled
    and an unlabeled batch may differ in L. Zeros are padding (id 0, mask 0), which the encoder ignores.
    """
    shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    padded = []
    for t in tensors:
        pad = [p for d in reversed(range(1, t.dim())) for p in (0, shape[d - 1] - t.shape[d])]
        padded.append(F.pad(t, pad) if any(pad) else t)
    return padded


class _Step:
    """One training step's batch and its loss through the strategy's hook (`loss(forward, rows)`).

    `rows` (None: all) is this process's share under data parallelism; `forward` the network (or its
    DDP wrapper). The labelled and unlabeled inputs go through one forward pass together.
    """

    def __init__(self, strategy: Strategy, model: TransferModel, cfg: TrainConfig, criterion: Callable,
                 x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, step: int, epoch: int, epochs: int,
                 unlabeled: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.strategy, self.model, self.cfg, self.criterion = strategy, model, cfg, criterion
        self.x, self.y, self.index = x, y, index
        self.unlabeled, self.unlabeled_index = unlabeled if unlabeled is not None else (None, None)
        self.step, self.epoch, self.epochs = step, epoch, epochs

    def loss(self, forward: Callable[..., Any], rows: torch.Tensor | None) -> torch.Tensor:
        take = (lambda t: t) if rows is None else (lambda t: t[rows])
        x, y, index = take(self.x), take(self.y), take(self.index)
        u = None if self.unlabeled is None else take(self.unlabeled)
        u_index = None if self.unlabeled_index is None else take(self.unlabeled_index)
        features = u_logits = u_features = None
        if u is None and not self.strategy.needs_features:
            logits = forward(x)  # (B, num_outputs): the plain path, exactly as without the hook
        else:
            features, logits = forward(x if u is None else torch.cat(_same_shape(x, u)), with_features=True)
            if u is not None:
                features, u_features = features[: len(x)], features[len(x) :]
                logits, u_logits = logits[: len(x)], logits[len(x) :]
        batch = TrainingBatch(x=x, y=y, index=index, model=self.model, criterion=self.criterion, step=self.step,
                              epoch=self.epoch, epochs=self.epochs, features=features, unlabeled=u,
                              unlabeled_logits=u_logits, unlabeled_features=u_features, unlabeled_index=u_index)
        return self.strategy.loss(logits, y, batch, self.cfg)


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
    x_unlabeled: torch.Tensor | None = None,
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
    its share of every global batch, and only rank 0 writes checkpoints. Those concerns are the
    runner's (engine/runner.py); this function and `_Loop` are the loop.

    A strategy with `needs_unlabeled` gets, every step, a batch of `x_unlabeled` rows (as many as
    the labelled batch, drawn with replacement from a generator of its own seeded by `cfg.seed`),
    passed through the network in the same forward pass as the labelled batch.
    """
    set_threads(cfg.threads)
    order = seed_everything(cfg.seed)
    _check_inputs(model, strategy, x_train, cfg, start_block, x_unlabeled)
    runner = Runner(cfg.device, cfg.precision, cfg.batch_size, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, checkpoint_interval=checkpoint_interval)
    try:
        loop = _Loop(model, strategy, cfg, runner, order, start_block, x_train, y_train, x_val, y_val, x_unlabeled)
        runner.restore(loop.state, resume)
        stop = False
        while loop.state.epoch <= loop.epochs and not stop:
            stop = loop.epoch(on_step, on_epoch_end)
            loop.state.epoch += 1
            runner.epoch_end(loop.state)
        return loop.result()
    finally:
        if getattr(model.backbone, "channels_last", False):
            model.to(memory_format=torch.contiguous_format)  # saved, exported and copied weights stay contiguous


def _check_inputs(model: TransferModel, strategy: Strategy, x_train: torch.Tensor, cfg: TrainConfig, start_block: int,
                  x_unlabeled: torch.Tensor | None) -> None:
    if len(x_train) == 0:
        raise ConfigError("the training split is empty; nothing to train on")
    check_augment(cfg.augment, model.backbone.input_spec.kind)
    if cfg.augment != "none" and start_block:
        raise ConfigError("--augment transforms the input images, so a frozen prefix can't be cached; run with cache off")
    if strategy.needs_unlabeled and (x_unlabeled is None or len(x_unlabeled) == 0):
        raise ConfigError(
            f"strategy {strategy.name!r} trains on unlabeled inputs too, and there are none: every row of the pool is "
            "a training or validation row — pass unlabeled inputs (train_run(..., unlabeled=...)) or use fewer shots"
        )


class _Loop:
    """The training loop of one `fit`: epochs of steps through the strategy's hooks, validation, early stopping."""

    def __init__(self, model: TransferModel, strategy: Strategy, cfg: TrainConfig, runner: Runner,
                 order: torch.Generator, start_block: int, x_train: torch.Tensor, y_train: torch.Tensor,
                 x_val: torch.Tensor, y_val: torch.Tensor, x_unlabeled: torch.Tensor | None) -> None:
        self.model, self.strategy, self.cfg, self.runner, self.order = model, strategy, cfg, runner, order
        self.start_block, self.n = start_block, len(x_train)
        self.epochs = cfg.resolved_epochs(self.n)
        self.steps_per_epoch = math.ceil(self.n / cfg.batch_size)
        self.head_lr, self.backbone_lr = cfg.learning_rates(model.backbone)
        self.x_train, self.y_train, self.x_val, x_unlabeled = runner.setup(model, x_train, y_train, x_val, x_unlabeled)
        if getattr(model.backbone, "channels_last", False):
            # conv weights channels-last like the activations (models/cnn.py ConvBlock): no per-step reorder of the
            # weights and their gradients; the values are the same, only the arithmetic's rounding may differ
            model.to(memory_format=torch.channels_last)
        self.y_val = y_val
        self.pins = Pins(model)  # entries kept at their values: a text encoder's switched-off coordinates
        self.unlabeled = _UnlabeledStream(x_unlabeled, cfg) if strategy.needs_unlabeled else None
        self.names = {id(p): name for name, p in model.named_parameters()}
        self.opt = _optimizer(cfg, strategy.param_groups(model, self.head_lr, self.backbone_lr))
        self.sched = _scheduler(cfg, self.opt, self.epochs * self.steps_per_epoch)
        self.numeric = self.y_train.is_floating_point()  # float targets are a regression task
        self.loss_fn = _loss_fn(cfg, model.head_spec.num_outputs, self.numeric)
        self.metric_name = "mse" if self.numeric else "accuracy"
        self.sign = -1.0 if self.numeric else 1.0  # compare scores so that higher is always better
        net = model if start_block == 0 else FromBlock(model, start_block)
        self.net = torch.compile(net) if cfg.compile else net  # compiled: shares parameters; the first steps pay
        self.eval_every = cfg.resolved_eval_every(self.epochs)
        self.state = LoopState()
        identity = asdict(cfg) | {"epochs": self.epochs, "n_train": self.n, "start_block": start_block,
                                  "strategy": strategy.describe()}
        runner.attach(config=identity, model=model, optimizer=self.opt, scheduler=self.sched, order=order,
                      unlabeled_order=self.unlabeled.order if self.unlabeled is not None else None)

    def _phase(self, when: str) -> None:
        """After a phase change: train/eval modes, BatchNorm policy, the cache check, what trains."""
        self.strategy.train_mode(self.model)
        if self.cfg.bn == "freeze":
            _freeze_batchnorm(self.model)
        check_frozen_throughout(self.strategy, self.model, self.start_block, when)

    def _record_trainable(self) -> None:
        st = self.state
        st.trained.update(self.names[id(p)] for g in self.opt.param_groups for p in g["params"] if p.requires_grad)

    def epoch(self, on_step: Callable[[int, int], None] | None, on_epoch_end: EpochCallback | None) -> bool:
        """One epoch (or the rest of a resumed one), then validation; True when early stopping says stop."""
        st, epoch, start = self.state, self.state.epoch, time.perf_counter()
        self.strategy.on_epoch_start(self.model, epoch, self.epochs)  # phase schedules (lp-ft, gradual unfreezing)
        if st.position == 0 and self.unlabeled is not None:  # a resumed epoch has its result in the checkpoint
            self.strategy.on_fresh_epoch(self.model, self.net, self.unlabeled.x, epoch)
        self._phase(f"at epoch {epoch}")
        if st.position == 0:  # a fresh epoch (a resumed one keeps its order and losses)
            self._record_trainable()
            st.perm, st.losses = torch.randperm(self.n, generator=self.order), []
        perm = st.perm.to(self.runner.device)  # drawn on the CPU (same on every device); batches gather on the device
        self.runner.wrap(self.net)
        for i in range(st.position, self.n, self.cfg.batch_size):
            step = st.steps + len(st.losses)
            if self.strategy.has_step_schedule and self.strategy.on_step_start(self.model, step):
                self._phase(f"at step {step}")  # a block was unfrozen mid-epoch: its BatchNorm/dropout now train
                self._record_trainable()
                self.runner.wrap(self.net)
            self._step(perm[i : i + self.cfg.batch_size], epoch, i)
            st.position = i + self.cfg.batch_size
            if on_step is not None:
                on_step(i // self.cfg.batch_size + 1, self.steps_per_epoch)
            if self.runner.step_checkpoint_due(st.steps + len(st.losses), st.position < self.n):
                now = time.perf_counter()
                st.train_seconds, start = st.train_seconds + now - start, now
                self.runner.save(st)
        st.position, st.steps = 0, st.steps + self.steps_per_epoch
        return self._validate(epoch, start, on_epoch_end)

    def _step(self, idx: torch.Tensor, epoch: int, i: int) -> None:
        st, cfg = self.state, self.cfg
        xb = _gather(self.x_train, idx, self.runner.device)
        xb = xb if cfg.augment == "none" else augment_batch(xb, cfg.augment, self.order)
        unlabeled = self.unlabeled.draw(len(idx)) if self.unlabeled is not None else None
        step = _Step(self.strategy, self.model, cfg, self.loss_fn, xb, self.y_train[idx], idx, st.steps + len(st.losses),
                     epoch, self.epochs, unlabeled)
        loss = self.runner.loss(step.loss, len(idx))
        if self.strategy.has_regularizer:
            loss = loss + self.strategy.regularizer(self.model)
        logged = self.runner.global_loss(loss)  # the global batch's loss
        if not torch.isfinite(logged):  # one host sync per step: never step (or save) on a NaN
            raise TrainingDiverged(
                f"training diverged: the loss is {float(logged)} at epoch {epoch}, step {i // cfg.batch_size + 1} "
                f"(training examples {idx[:5].tolist()}{'…' if len(idx) > 5 else ''}); nothing was saved from "
                "this step — lower --lr, check the inputs for extreme values, or resume from the last checkpoint"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.pins:
            self.pins.zero_grads()
        self.opt.step()
        if self.pins:
            self.pins.restore()
        if self.sched is not None:
            self.sched.step()
        st.losses.append(logged)  # summed once per epoch: no per-step arithmetic or host sync

    def _validate(self, epoch: int, start: float, on_epoch_end: EpochCallback | None) -> bool:
        st, has_val = self.state, len(self.x_val) > 0
        validate = epoch % self.eval_every == 0 or epoch == self.epochs
        if validate:
            self.runner.sync_buffers(self.model)
            eval_start = time.perf_counter()
            score = mse if self.numeric else accuracy
            val_value = score(self.net, self.x_val, self.y_val) if has_val else float("nan")
            st.eval_seconds += time.perf_counter() - eval_start
        st.train_seconds += time.perf_counter() - start  # bookkeeping below (history, best copy, checkpoint) excluded
        if not validate:
            return False
        record = {"epoch": epoch, "train_loss": _mean_loss(st.losses, self.n, self.cfg.batch_size),
                  f"val_{self.metric_name}": val_value, "elapsed_seconds": st.train_seconds}
        st.history.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record | {"epochs": self.epochs})
        if has_val and self.sign * val_value > st.best_score:
            st.best_score, st.best_value, st.best_epoch = self.sign * val_value, val_value, epoch
            st.best_state = copy.deepcopy(self.model.state_dict())
        return self.cfg.patience is not None and has_val and epoch - st.best_epoch >= self.cfg.patience * self.eval_every

    def result(self) -> RunResult:
        """Restore the best validation weights (with `restore_best`) and say what the run did."""
        st, model = self.state, self.model
        epoch, best_epoch = st.epoch - 1, st.best_epoch
        if st.best_state is not None and self.cfg.restore_best:
            model.load_state_dict(st.best_state)
        else:
            best_epoch = epoch
        model.eval()
        self.runner.finish(model)
        return RunResult(
            epochs=epoch, best_epoch=best_epoch, val_metric=self.metric_name, val_value=st.best_value,
            train_seconds=st.train_seconds, steps=st.steps, samples_seen=epoch * self.n, history=st.history,
            config=asdict(self.cfg) | {"epochs": self.epochs, "lr": self.head_lr, "backbone_lr": self.backbone_lr,
                                       "device": self.runner.device.type, "processes": self.runner.processes},
            cached_blocks=self.start_block, eval_seconds=st.eval_seconds,
            trainable_params=sum(p.numel() for name, p in model.named_parameters() if name in st.trained),
            trained_parameters=sorted(st.trained), kept_switched_off=self.pins.record(st.trained),
        )
