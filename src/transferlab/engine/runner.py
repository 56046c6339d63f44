"""The runner: *how* a run executes — device, data parallelism, precision, checkpoints (after Lightning Fabric).

The training loop (`train.fit`) says what to compute; the runner moves the model and data to the
device, wraps the network for data parallelism, runs the forward pass under the chosen precision,
and saves or restores checkpoints. Nothing in it knows about strategies.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import ConfigError
from .checkpoint import LoopState, load_checkpoint, save_checkpoint
from .device import autocast, resolve_device, to_device
from .distributed import DataParallel


class Runner:
    """Device, data parallelism, precision and checkpoints of one `fit`.

    With `checkpoint` (a file path) the full training state is saved at the end of every epoch (at
    most every `checkpoint_interval` seconds) and, with `checkpoint_every=N`, every N steps; only
    rank 0 of a data-parallel run writes.
    """

    def __init__(self, device: str, precision: str, batch_size: int, *, checkpoint: Path | None = None,
                 checkpoint_every: int | None = None, checkpoint_interval: float = 0.0) -> None:
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ConfigError(f"--checkpoint-every must be a whole number of steps ≥ 1; got {checkpoint_every}")
        self.device = resolve_device(device)
        self.precision = precision
        self.ddp = DataParallel.current(batch_size, self.device)  # None in a single process
        self.writes = self.ddp is None or self.ddp.rank == 0  # only rank 0 writes checkpoints
        self.checkpoint, self.every, self.interval = checkpoint, checkpoint_every, checkpoint_interval
        self._saved: dict[str, Any] = {}
        self._last_save = time.perf_counter()
        self.net: nn.Module | None = None

    @property
    def processes(self) -> int:
        return 1 if self.ddp is None else self.ddp.world

    def setup(self, model: nn.Module, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
        """Move the model and the tensors to the run's device (data is copied there once)."""
        model.to(self.device)
        # Anything but a tensor (image files decoded per batch) stays where it is; its batches move.
        return [t if not isinstance(t, torch.Tensor) else to_device(t, self.device) for t in tensors]

    def wrap(self, net: nn.Module) -> None:
        """The network the steps run (rebuilt for data parallelism when what trains has changed)."""
        self.net = net
        if self.ddp is not None:
            self.ddp.wrap(net)

    def loss(self, step_loss: Callable[[Callable[..., Any], torch.Tensor | None], torch.Tensor], batch_len: int
             ) -> torch.Tensor:
        """The step's loss under the run's precision: `step_loss(forward, rows)` on this process's rows."""
        with autocast(self.device, self.precision):
            if self.ddp is None:
                return step_loss(self.net, None)
            return self.ddp.loss(step_loss, batch_len, self.device)

    def global_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The global batch's loss (every process sees the same value, a NaN included)."""
        return loss.detach() if self.ddp is None else self.ddp.global_loss(loss)

    def attach(self, **saved: Any) -> None:
        """What a checkpoint holds: config identity, model, optimizer, scheduler, generators."""
        self._saved = saved

    def restore(self, state: LoopState, resume: bool) -> None:
        if self.checkpoint is not None and resume and self.checkpoint.is_file():
            load_checkpoint(self.checkpoint, state=state, **self._saved)

    def step_checkpoint_due(self, steps: int, mid_epoch: bool) -> bool:
        return bool(self.every and self.checkpoint is not None and self.writes and mid_epoch and steps % self.every == 0)

    def save(self, state: LoopState) -> None:
        save_checkpoint(self.checkpoint, state=state, **self._saved)

    def epoch_end(self, state: LoopState) -> None:
        """Checkpoint at the end of an epoch, unless the previous one is younger than the interval."""
        if self.checkpoint is not None and self.writes and time.perf_counter() - self._last_save >= self.interval:
            self.save(state)
            self._last_save = time.perf_counter()

    def sync_buffers(self, model: nn.Module) -> None:
        if self.ddp is not None:
            self.ddp.sync_buffers(model)  # BatchNorm statistics of rank 0 everywhere: every process scores the same model

    def finish(self, model: nn.Module) -> None:
        if self.ddp is not None:
            self.ddp.check_replicas(model)
