"""`coral`: align second-order feature statistics of source and target (Deep CORAL, Sun & Saenko 2016).

B. Sun, K. Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV 2016
workshops (TASK-CV), arXiv:1607.01719.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .base import register_strategy
from .domain import DomainAdaptation, coral_loss, supervised_loss, unlabeled_part


@dataclass
class CORALConfig:
    coral_weight: float = field(default=1.0, metadata={"help": "weight λ of the CORAL loss ‖C_s − C_t‖²_F/(4d²)"})

    def __post_init__(self) -> None:
        if not (self.coral_weight >= 0 and math.isfinite(self.coral_weight)):
            raise ConfigError(f"--coral-weight must be a number ≥ 0; got {self.coral_weight}")


@register_strategy("coral", order=122)
class CORAL(DomainAdaptation):
    """Deep CORAL: the classification loss on labelled source rows plus λ × the distance between
    the covariance matrices of source and target backbone features, computed on every step's
    batches; the whole network trains. The labelled stream is the source, the unlabeled rows the target.
    """

    summary = "Deep CORAL: align source/target feature covariances; needs source data"
    Config = CORALConfig
    needs_source = True

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        task = supervised_loss(logits, targets, batch)
        source = batch.features[targets != -1]
        target = unlabeled_part(batch.features, targets, batch.unlabeled_features)
        if len(source) < 2 or len(target) < 2:
            return task
        return task + self.config.coral_weight * coral_loss(source, target)
