"""`mmd`: multi-kernel MMD between source and target features (DAN, Long et al. 2015).

M. Long, Y. Cao, J. Wang, M. I. Jordan, "Learning Transferable Features with Deep Adaptation
Networks", ICML 2015 (arXiv:1502.02791).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from .base import register_strategy
from .domain import DomainAdaptation, mk_mmd, supervised_loss, unlabeled_part


@dataclass
class MMDConfig:
    mmd_weight: float = field(default=1.0, metadata={"help": "weight λ of the multi-kernel MMD² term"})
    kernels: int = field(default=5, metadata={"help": "Gaussian kernels, bandwidths base × 2^k for k centred on 0"})
    on_logits: bool = field(default=True, metadata={"help": "also match the output layer's distributions (DAN adapts the last layers)"})

    def __post_init__(self) -> None:
        if not (self.mmd_weight >= 0 and math.isfinite(self.mmd_weight)):
            raise ConfigError(f"--mmd-weight must be a number ≥ 0; got {self.mmd_weight}")
        if int(self.kernels) != self.kernels or self.kernels < 1:
            raise ConfigError(f"--kernels must be a whole number ≥ 1; got {self.kernels}")
        self.kernels = int(self.kernels)

    def multipliers(self) -> list[float]:
        return [2.0 ** (k - (self.kernels - 1) / 2) for k in range(self.kernels)]


@register_strategy("mmd", order=123)
class MMD(DomainAdaptation):
    """DAN: the classification loss on labelled source rows plus λ × MK-MMD² between source and
    target features (and, with `on_logits`, between their outputs), a family of Gaussian kernels
    whose base bandwidth is the batch's mean squared distance, as DAN's code sets it. The whole
    network trains; the labelled stream is the source, the unlabeled rows the target.
    """

    summary = "DAN: multi-kernel MMD between source and target features; needs source data"
    Config = MMDConfig
    needs_source = True

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        task = supervised_loss(logits, targets, batch)
        known = targets != -1
        source = batch.features[known]
        target = unlabeled_part(batch.features, targets, batch.unlabeled_features)
        if len(source) < 2 or len(target) < 2:
            return task
        multipliers = self.config.multipliers()
        term = mk_mmd(source, target, multipliers)
        if self.config.on_logits:
            term = term + mk_mmd(logits[known].softmax(1),
                                 unlabeled_part(logits, targets, batch.unlabeled_logits).softmax(1), multipliers)
        return task + self.config.mmd_weight * term
