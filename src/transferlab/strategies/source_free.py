"""`source-free`: adapt with the pretrained model and unlabeled target data only (SHOT, Liang et al. 2020).

J. Liang, D. Hu, J. Feng, "Do We Really Need to Access the Source Data? Source Hypothesis
Transfer for Unsupervised Domain Adaptation", ICML 2020 (arXiv:2002.08546).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

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
    centroids: Literal["epoch", "batch"] = field(default="epoch", metadata={
        "help": "where the pseudo-labels come from: epoch (centroids of the whole target set at each epoch's start, "
                "as the paper) or batch (centroids of each step's unlabeled rows)"})

    def __post_init__(self) -> None:
        for name in ("diversity_weight", "pseudo_weight"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"--{name.replace('_', '-')} must be a number ≥ 0; got {value}")
        if self.centroids not in CENTROIDS:
            raise ConfigError(f"--centroids must be one of {list(CENTROIDS)}; got {self.centroids!r}. epoch: the whole "
                              "target set once per epoch (SHOT); batch: each step's unlabeled rows")


CENTROIDS = ("epoch", "batch")
EVAL_BATCH = 512  # rows per forward pass when the whole target set is scored at an epoch's start


def class_centroids(features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """SHOT's class centroids: weighted by the predictions, then recomputed once from the nearest-centroid
    assignment (cosine). (N, d), (N, C) -> (C, d), unit rows; a class no row is assigned to gets a zero row."""
    f = F.normalize(features, dim=1)
    centroids = probabilities.T @ f / (probabilities.sum(0, keepdim=True).T + 1e-8)  # (C, d)
    labels = nearest_centroid(f, centroids, probabilities.argmax(1))
    one_hot = F.one_hot(labels, probabilities.shape[1]).to(f)  # (N, C)
    return F.normalize(one_hot.T @ f / (one_hot.sum(0, keepdim=True).T + 1e-8), dim=1)


def nearest_centroid(features: torch.Tensor, centroids: torch.Tensor, predicted: torch.Tensor | None = None) -> torch.Tensor:
    """The class of each row's nearest centroid by cosine, (N, d), (C, d) -> (N,); classes with a zero centroid
    (no row assigned), or none of the rows' predicted classes (`predicted`), are never chosen."""
    similarity = F.normalize(features, dim=1) @ F.normalize(centroids, dim=1).T  # (N, C)
    present = centroids.norm(dim=1) > 0
    if predicted is not None:
        present = present & (torch.bincount(predicted, minlength=len(centroids)) > 0)
    return similarity.masked_fill(~present, -float("inf")).argmax(1)


def cluster_labels(features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """SHOT's self-supervised pseudo-labels over one set of rows: its nearest refined centroid. (B, d), (B, C) -> (B,)."""
    return nearest_centroid(features, class_centroids(features, probabilities))


class _PseudoLabels(torch.nn.Module):
    """This epoch's pseudo-label of every unlabeled row: a buffer, so a checkpoint carries it.

    It is empty until the first epoch fills it; a checkpoint's buffer is loaded at the size it was saved with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("value", torch.zeros(0, dtype=torch.long))  # (N,)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "value")
        if saved is not None:
            self.value = torch.zeros_like(saved, device=self.value.device)
        super()._load_from_state_dict(state_dict, prefix, *args)


@register_strategy("source-free", order=125)
class SourceFree(DomainAdaptation):
    """SHOT: the source head (the "source hypothesis") is kept frozen and the backbone learns to
    make target predictions confident and diverse (information maximisation: mean entropy −
    entropy of the mean prediction), plus β × a cross-entropy on self-supervised pseudo-labels
    (nearest class centroid in feature space). No source data is used.

    With `centroids="epoch"` (as the paper) every unlabeled row's pseudo-label is computed at the
    start of every epoch from the whole target set (features and predictions in eval mode, centroids,
    nearest centroid) and kept for the epoch (in `model.auxiliary`, so a resumed run has them); the
    pseudo-label loss is on the rows of the unlabeled stream. `centroids="batch"`
    computes them over each step's unlabeled rows instead (a small-batch approximation: on MNIST-5k →
    USPS at 0 labels, β = 0.3 with batch centroids collapsed to 0.51 test accuracy where β = 0
    reached 0.87, one seed, docs/domain_adaptation.md). β = 0 (the default) is the paper's SHOT-IM
    variant; the paper uses β = 0.3 on digits. With `--shots K` the K labelled rows per class add
    their cross-entropy. The head must be the source head (classes matched by name).
    """

    summary = "SHOT: source-free; information maximisation + pseudo-labels, source head frozen"
    Config = SourceFreeConfig
    trains_head = False  # the source hypothesis stays as it is

    def prepare(self, model: TransferModel) -> None:
        super().prepare(model)
        for p in model.head.parameters():
            p.requires_grad_(False)  # the source hypothesis stays
        if self.config.pseudo_weight > 0 and self.config.centroids == "epoch":
            model.auxiliary["pseudo_labels"] = _PseudoLabels()

    def on_fresh_epoch(self, model: TransferModel, forward: Any, x_unlabeled: torch.Tensor, epoch: int) -> None:
        if "pseudo_labels" not in model.auxiliary:
            return
        store = model.auxiliary["pseudo_labels"]
        if len(store.value) != len(x_unlabeled):
            store.value = torch.zeros(len(x_unlabeled), dtype=torch.long, device=store.value.device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            parts = [forward(x_unlabeled[i : i + EVAL_BATCH], with_features=True)
                     for i in range(0, len(x_unlabeled), EVAL_BATCH)]
            features = torch.cat([f for f, _ in parts])  # (N, d)
            probabilities = torch.cat([logits for _, logits in parts]).softmax(1)  # (N, C)
            store.value.copy_(cluster_labels(features, probabilities))
        model.train(was_training)

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
            if self.config.centroids == "epoch":  # the rows of the unlabeled stream, labelled at the epoch's start
                pseudo = batch.model.auxiliary["pseudo_labels"].value[batch.unlabeled_index]
                loss = loss + self.config.pseudo_weight * F.cross_entropy(batch.unlabeled_logits, pseudo)
            else:
                features = unlabeled_part(batch.features, targets, batch.unlabeled_features).detach()
                pseudo = cluster_labels(features, p.detach())
                loss = loss + self.config.pseudo_weight * F.cross_entropy(u_logits, pseudo)
        return loss
