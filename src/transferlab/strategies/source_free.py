"""`source-free`: adapt with the pretrained model and unlabeled target data only (SHOT, Liang et al. 2020).

J. Liang, D. Hu, J. Feng, "Do We Really Need to Access the Source Data? Source Hypothesis
Transfer for Unsupervised Domain Adaptation", ICML 2020 (arXiv:2002.08546).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.head import TransferModel
from .base import register_strategy
from .domain import DomainAdaptation, entropy, supervised_loss, unlabeled_part


@dataclass
class SourceFreeConfig:
    diversity_weight: float = field(default=1.0, metadata={"help": "weight of the diversity term −H(mean prediction)"})
    pseudo_weight: float = field(default=0.0, metadata={"help": "weight β of the cross-entropy on clustering pseudo-labels (0: SHOT-IM)"})

    def __post_init__(self) -> None:
        for name in ("diversity_weight", "pseudo_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"--{name.replace('_', '-')} must be a number ≥ 0; got {value}")


def cluster_labels(features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """SHOT's self-supervised pseudo-labels: nearest class centroid (cosine), centroids weighted by
    the predictions, then recomputed once from the hard assignment. (B, d), (B, C) -> (B,)."""
    f = F.normalize(features, dim=1)
    centroids = probabilities.T @ f / (probabilities.sum(0, keepdim=True).T + 1e-8)  # (C, d)
    labels = (f @ F.normalize(centroids, dim=1).T).argmax(1)
    one_hot = F.one_hot(labels, probabilities.shape[1]).to(f)
    centroids = one_hot.T @ f / (one_hot.sum(0, keepdim=True).T + 1e-8)
    return (f @ F.normalize(centroids, dim=1).T).argmax(1)


@register_strategy("source-free", order=125)
class SourceFree(DomainAdaptation):
    """SHOT: the source head (the "source hypothesis") is kept frozen and the backbone learns to
    make target predictions confident and diverse (information maximisation: mean entropy −
    entropy of the mean prediction), plus β × a cross-entropy on self-supervised pseudo-labels
    (nearest class centroid in feature space). No source data is used.

    The centroids are computed over each step's unlabeled rows (the paper computes them over the
    whole target set once per epoch): a small-batch approximation that keeps every step a function
    of its own batch, so resume stays exact. It is off by default (β = 0: the paper's SHOT-IM
    variant): on MNIST-5k → USPS at 0 labels, β = 0.3 with batch centroids collapsed to 0.51 test
    accuracy where β = 0 reached 0.87 (one seed, docs/domain_adaptation.md). With `--shots K` the K labelled rows per class add
    their cross-entropy. The head must be the source head (classes matched by name).
    """

    summary = "SHOT: source-free; information maximisation + pseudo-labels, source head frozen"
    Config = SourceFreeConfig
    trains_head = False  # the source hypothesis stays as it is

    def prepare(self, model: TransferModel) -> None:
        super().prepare(model)
        for p in model.head.parameters():
            p.requires_grad_(False)  # the source hypothesis stays

    def train_mode(self, model: TransferModel) -> None:
        model.train()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        task = supervised_loss(logits, targets, batch)
        u_logits = unlabeled_part(logits, targets, batch.unlabeled_logits)  # (U, C)
        if len(u_logits) == 0:
            return task
        p = u_logits.softmax(1)
        mean = p.mean(0)
        im = entropy(p).mean() - self.config.diversity_weight * entropy(mean.unsqueeze(0)).squeeze(0)
        loss = task + im
        if self.config.pseudo_weight > 0:
            features = unlabeled_part(batch.features, targets, batch.unlabeled_features)
            pseudo = cluster_labels(features.detach(), p.detach())
            loss = loss + self.config.pseudo_weight * F.cross_entropy(u_logits, pseudo)
        return loss
