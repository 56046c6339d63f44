"""`self-training`: confidence-thresholded pseudo-labels with weak/strong consistency (FixMatch).

K. Sohn, D. Berthelot, C.-L. Li, Z. Zhang, N. Carlini, E. D. Cubuk, A. Kurakin, H. Zhang,
C. Raffel, "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence",
NeurIPS 2020 (arXiv:2001.07685).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import register_strategy
from .domain import DomainAdaptation, supervised_loss, unlabeled_part


@dataclass
class SelfTrainingConfig:
    threshold: float = field(default=0.95, metadata={"help": "confidence a weak view's prediction needs to become a pseudo-label"})
    unlabeled_weight: float = field(default=1.0, metadata={"help": "weight λ_u of the pseudo-label loss on strong views"})
    cutout: float = field(default=0.4, metadata={"help": "side of the square the strong view blanks, as a share of the image side"})
    drop: float = field(default=0.2, metadata={"help": "share of features (vectors) or tokens (text) the strong view drops"})

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"--threshold must be in (0, 1); got {self.threshold}")
        if not (self.unlabeled_weight >= 0 and math.isfinite(self.unlabeled_weight)):
            raise ConfigError(f"--unlabeled-weight must be a number ≥ 0; got {self.unlabeled_weight}")
        if not 0.0 <= self.cutout < 1.0:
            raise ConfigError(f"--cutout must be in [0, 1); got {self.cutout}")
        if not 0.0 <= self.drop < 1.0:
            raise ConfigError(f"--drop must be in [0, 1); got {self.drop}")


def strong_view(x: torch.Tensor, config: SelfTrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """A strongly augmented copy of a batch as the network takes it.

    Images (B, C, H, W): a random affine warp, contrast and brightness jitter, a cutout. Vectors (B, D):
    a random share `drop` of features zeroed, plus Gaussian noise of 0.1 × each row's spread. Text
    (packed token ids and mask, (B, 2, L)): a random share `drop` of tokens after the first dropped
    from the attention mask.
    """
    if x.dim() == 4 and x.is_floating_point():
        return _strong_image(x, config.cutout, generator)
    keep = (torch.rand(x.shape[0], x.shape[-1], generator=generator) >= config.drop).to(x.device)  # (B, D or L)
    if x.is_floating_point():
        noise = torch.randn(x.shape, generator=generator).to(x) * 0.1 * x.std(dim=-1, keepdim=True)
        return x * keep.to(x.dtype) + noise
    keep[:, 0] = True  # the first token (e.g. [CLS]) stays
    out = x.clone()
    out[:, 1] = out[:, 1] * keep.to(out.dtype)  # dropped tokens leave the attention mask
    return out


def _strong_image(x: torch.Tensor, cutout: float, generator: torch.Generator) -> torch.Tensor:
    from ..data.augment import augment_batch

    b, _, h, w = x.shape
    out = augment_batch(x, "affine", generator)
    contrast = (0.6 + 0.8 * torch.rand(b, 1, 1, 1, generator=generator)).to(x)
    brightness = (0.2 * torch.rand(b, 1, 1, 1, generator=generator) - 0.1).to(x)
    out = ((out - out.mean((1, 2, 3), keepdim=True)) * contrast + out.mean((1, 2, 3), keepdim=True) + brightness)
    if cutout > 0:
        side_h, side_w = max(1, round(cutout * h)), max(1, round(cutout * w))
        top = torch.randint(0, h - side_h + 1, (b,), generator=generator)
        left = torch.randint(0, w - side_w + 1, (b,), generator=generator)
        rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        hole = ((rows >= top.view(b, 1, 1)) & (rows < (top + side_h).view(b, 1, 1))
                & (cols >= left.view(b, 1, 1)) & (cols < (left + side_w).view(b, 1, 1)))  # (B, H, W)
        out = out.masked_fill(hole.unsqueeze(1).to(out.device), 0.0)
    return out.clamp(0.0, 1.0)


@register_strategy("self-training", order=124)
class SelfTraining(DomainAdaptation):
    """FixMatch-style self-training: the model's prediction on an unlabeled target row (the weak
    view: the row as given, or with `--augment`) becomes its pseudo-label when its confidence is at
    least `threshold`, and the model learns to predict that label on a strongly augmented view of
    the same row (images: affine warp, contrast/brightness jitter, cutout; vectors: feature dropout and
    noise; text: token dropout). The labelled stream (source
    rows, plus the K target labels per class with `--shots K`) trains the classifier as usual.

    The strong views are drawn from a generator seeded by the run seed and the step, so a resumed
    run draws the very same ones.
    """

    summary = "FixMatch self-training: confident pseudo-labels, weak/strong consistency; needs source data"
    Config = SelfTrainingConfig
    needs_source = True
    needs_features = False

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        task = supervised_loss(logits, targets, batch)
        weak_logits = unlabeled_part(logits, targets, batch.unlabeled_logits)
        if len(weak_logits) == 0 or self.config.unlabeled_weight == 0:
            return task
        rows = unlabeled_part(batch.x, targets, batch.unlabeled)  # (U, C, H, W)
        confidence, pseudo = weak_logits.detach().softmax(1).max(1)
        mask = (confidence >= self.config.threshold).to(weak_logits.dtype)  # (U,)
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + batch.step)
        strong_logits = batch.model(strong_view(rows, self.config, generator))  # (U, C)
        consistency = (F.cross_entropy(strong_logits, pseudo, reduction="none") * mask).mean()
        return task + self.config.unlabeled_weight * consistency
