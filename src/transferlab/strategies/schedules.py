"""Strategies whose trainable set changes during training: LP-FT and gradual unfreezing.

Both keep every parameter in an optimiser group from the start (the base class does) and only flip
`requires_grad` at epoch boundaries, so the optimiser layout never changes mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import TransferModel
from .base import Strategy, register_strategy


def _set_trainable(backbone: Backbone, trainable: set[str]) -> None:
    for name, block in backbone.blocks.items():
        for p in block.parameters():
            p.requires_grad_(name in trainable)


@dataclass
class LPFTConfig:
    probe_fraction: float = field(default=0.5, metadata={"help": "share of the epochs spent linear-probing first"})

    def __post_init__(self) -> None:
        if not 0.0 < self.probe_fraction < 1.0:
            raise ConfigError(f"--probe-fraction must be between 0 and 1 (exclusive); got {self.probe_fraction}")


@register_strategy("lp-ft", order=90)
class LPFT(Strategy):
    """Linear probe, then full fine-tuning from the probed head (Kumar et al., ICLR 2022).

    Fine-tuning with a random head distorts good pretrained features while the head is still
    wrong; probing first gives the head a good start, so the features move less. Helps most under
    distribution shift. Source: "Fine-Tuning can Distort Pretrained Features and Underperform
    Out-of-Distribution", arXiv:2202.10054.
    """

    summary = "linear probe first, then full fine-tuning from the probed head (--probe-fraction 0.5)"
    Config = LPFTConfig
    caches_frozen_prefix = False  # the backbone trains in phase 2

    def __init__(self, config: LPFTConfig | None = None) -> None:
        super().__init__(config)
        self._probing = True

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return backbone.block_names if self._probing else []

    def prepare(self, model: TransferModel) -> None:
        self._probing = True
        super().prepare(model)

    def on_epoch_start(self, model: TransferModel, epoch: int, epochs: int) -> None:
        probe_epochs = max(1, round(epochs * self.config.probe_fraction))
        self._probing = epoch <= probe_epochs
        _set_trainable(model.backbone, set() if self._probing else set(model.backbone.block_names))


@dataclass
class GradualConfig:
    every: int = field(default=1, metadata={"help": "epochs between unfreezing one more block"})
    every_steps: int | None = field(default=None, metadata={"help": "unfreeze per N optimiser steps instead"})

    def __post_init__(self) -> None:
        if int(self.every) != self.every or self.every < 1:
            raise ConfigError(f"--every must be a whole number ≥ 1; got {self.every}")
        if self.every_steps is not None and (int(self.every_steps) != self.every_steps or self.every_steps < 1):
            raise ConfigError(f"--every-steps must be a whole number ≥ 1; got {self.every_steps}")


@register_strategy("gradual-unfreeze", order=100)
class GradualUnfreeze(Strategy):
    """Gradual unfreezing (Howard & Ruder, ULMFiT, ACL 2018): the head first, then one more block every N epochs, top down.

    Unfreezing from the output side keeps the general, input-side features intact while the
    task-specific top adapts, which reduces catastrophic forgetting on small target sets.
    Source: "Universal Language Model Fine-tuning for Text Classification", arXiv:1801.06146.
    """

    summary = "head first, then one more block every N epochs (--every) or N steps (--every-steps), top down"
    Config = GradualConfig
    caches_frozen_prefix = False

    @property
    def has_step_schedule(self) -> bool:  # type: ignore[override]
        return self.config.every_steps is not None

    def on_step_start(self, model: TransferModel, step: int) -> bool:
        names = model.backbone.block_names
        trainable = min(len(names), step // self.config.every_steps)
        if trainable == self._trainable:
            return False
        self._trainable = trainable
        _set_trainable(model.backbone, set(names[len(names) - trainable :]))
        return True

    def __init__(self, config: GradualConfig | None = None) -> None:
        super().__init__(config)
        self._trainable = 0

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        names = backbone.block_names
        return names[: len(names) - self._trainable]

    def prepare(self, model: TransferModel) -> None:
        self._trainable = 0
        super().prepare(model)

    def on_epoch_start(self, model: TransferModel, epoch: int, epochs: int) -> None:
        if self.config.every_steps is not None:
            return  # the step schedule decides (on_step_start runs before every step)
        names = model.backbone.block_names
        self._trainable = min(len(names), (epoch - 1) // self.config.every)
        _set_trainable(model.backbone, set(names[len(names) - self._trainable :]))
