"""`dann`: domain-adversarial training with a gradient-reversal layer (Ganin et al. 2016).

Y. Ganin, E. Ustinova, H. Ajakan, P. Germain, H. Larochelle, F. Laviolette, M. Marchand,
V. Lempitsky, "Domain-Adversarial Training of Neural Networks", JMLR 17(59):1−35, 2016.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.head import TransferModel
from .base import register_strategy
from .domain import DomainAdaptation, progress, reverse_gradient, supervised_loss, unlabeled_part


@dataclass
class DANNConfig:
    domain_weight: float = field(default=1.0, metadata={"help": "final weight λ of the domain loss (reached by the schedule)"})
    gamma: float = field(default=10.0, metadata={"help": "schedule steepness: λ_p = λ·(2/(1+exp(−γp)) − 1), p = share of the run done"})
    discriminator_hidden: int = field(default=100, metadata={"help": "width of the domain classifier's hidden layer"})

    def __post_init__(self) -> None:
        if not (self.domain_weight >= 0 and math.isfinite(self.domain_weight)):
            raise ConfigError(f"--domain-weight must be a number ≥ 0; got {self.domain_weight}")
        if not (self.gamma > 0 and math.isfinite(self.gamma)):
            raise ConfigError(f"--gamma must be a positive number; got {self.gamma}")
        if int(self.discriminator_hidden) != self.discriminator_hidden or self.discriminator_hidden < 1:
            raise ConfigError(f"--discriminator-hidden must be a whole number ≥ 1; got {self.discriminator_hidden}")
        self.discriminator_hidden = int(self.discriminator_hidden)


@register_strategy("dann", order=121)
class DANN(DomainAdaptation):
    """DANN: the classifier learns the labelled source rows while a domain classifier, behind a
    gradient-reversal layer, learns to tell source features from target features; the reversed
    gradient trains the backbone to make the two indistinguishable.

    The reversal weight follows the paper's schedule λ_p = λ·(2/(1 + exp(−γ·p)) − 1), p the share
    of the run done (0 → λ), so the noisy early discriminator does not disturb the features. The
    domain classifier (features → hidden → 1, ReLU) trains at the head's rate and is not saved
    with the model. The labelled stream counts as the source domain, the unlabeled rows as target.
    """

    summary = "DANN: domain-adversarial training (gradient reversal + domain classifier); needs source data"
    Config = DANNConfig
    needs_source = True

    def prepare(self, model: TransferModel) -> None:
        super().prepare(model)
        width = self.config.discriminator_hidden
        model.auxiliary["domain"] = nn.Sequential(
            nn.Linear(model.backbone.feature_dim, width), nn.ReLU(), nn.Linear(width, 1)
        )

    def weight(self, batch: Any) -> float:
        """λ_p at this step."""
        return self.config.domain_weight * (2.0 / (1.0 + math.exp(-self.config.gamma * progress(batch))) - 1.0)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        task = supervised_loss(logits, targets, batch)
        known = targets != -1
        source, target = batch.features[known], unlabeled_part(batch.features, targets, batch.unlabeled_features)
        if len(source) == 0 or len(target) == 0:
            return task
        features = reverse_gradient(torch.cat([source, target]), self.weight(batch))  # (S + T, d)
        domain = batch.model.auxiliary["domain"](features).squeeze(1)  # (S + T,)
        truth = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(domain)
        return task + F.binary_cross_entropy_with_logits(domain, truth)
