"""`setfit`: the SetFit recipe (Tunstall et al. 2022, "Efficient Few-Shot Learning Without Prompts").

Phase 1 tunes the sentence encoder contrastively on pairs built from the few labelled examples —
same class → cosine similarity 1, different class → 0 (a cosine-similarity MSE loss, AdamW) — so the
embedding space separates the target classes. Phase 2 freezes the tuned encoder and trains a linear
head on its embeddings (computed once, like a linear probe). A handful of labels yields many pairs,
which is why it works with 8 examples per class. The pair budget is capped (`max_pairs`) so large
label budgets do not explode the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import TransferModel
from .base import Strategy, register_strategy


@dataclass
class SetFitConfig:
    iterations: int = field(default=20, metadata={"help": "pairs per example: this many positive and negative each"})
    max_pairs: int = field(default=1280, metadata={"help": "cap on the number of contrastive pairs"})
    pair_lr: float = field(default=2e-5, metadata={"help": "learning rate of the contrastive phase (AdamW)"})
    pair_batch_size: int = field(default=16, metadata={"help": "pairs per step in the contrastive phase"})

    def __post_init__(self) -> None:
        for name in ("iterations", "max_pairs", "pair_batch_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number ≥ 1; got {value}")
        if not self.pair_lr > 0:
            raise ConfigError(f"--pair-lr must be positive; got {self.pair_lr}")


def contrastive_pairs(y: np.ndarray, iterations: int, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """(P, 3) rows (i, j, same): for each example and iteration one positive and one negative partner."""
    rows = []
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    for _ in range(iterations):
        for i, c in enumerate(y):
            same, other = by_class[c], np.flatnonzero(y != c)
            if len(same) > 1:
                rows.append((i, rng.choice(same[same != i]), 1))
            if len(other):
                rows.append((i, rng.choice(other), 0))
    pairs = np.array(rows, dtype=np.int64).reshape(-1, 3)
    rng.shuffle(pairs)
    return pairs[:max_pairs]


@register_strategy("setfit", order=110)
class SetFit(Strategy):
    """Contrastive fine-tuning of the encoder on pairs of the few labelled examples, then a linear head.

    Helps most with very few labels per class on text (8–16), where plain fine-tuning overfits and a
    linear probe of the untuned embeddings underfits. Source: Tunstall et al., 2022 (arXiv:2209.11055).
    """

    summary = "SetFit: contrastive pair fine-tuning of the encoder, then a linear head on its embeddings"
    Config = SetFitConfig
    tunes_backbone_before_fit = True
    tiny_options = {"iterations": 2}

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return backbone.block_names  # phase 2: the tuned encoder is frozen, only the head trains

    def before_fit(self, model: TransferModel, x: torch.Tensor, y: torch.Tensor, seed: int, progress=False) -> None:
        """Phase 1: tune the encoder so same-class examples embed close together (`progress`: per pair batch)."""
        from ..progress import progress_steps

        cfg = self.config
        if len(torch.unique(y)) < 2:
            raise ConfigError("setfit needs at least two classes in the training split to build pairs")
        pairs = torch.from_numpy(contrastive_pairs(y.numpy(), cfg.iterations, cfg.max_pairs, np.random.default_rng(seed)))
        backbone = model.backbone
        params = list(backbone.parameters())
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=cfg.pair_lr)
        backbone.train()
        steps = math.ceil(len(pairs) / cfg.pair_batch_size)
        with progress_steps(f"setfit pairs ×{cfg.pair_batch_size}", total=steps, progress=progress) as advance:
            for start in range(0, len(pairs), cfg.pair_batch_size):
                batch = pairs[start : start + cfg.pair_batch_size]
                u, v = backbone.features(x[batch[:, 0]]), backbone.features(x[batch[:, 1]])  # (B, D) each
                loss = F.mse_loss(F.cosine_similarity(u, v), batch[:, 2].float())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                advance(1)
        for p in params:
            p.requires_grad_(False)
        backbone.eval()
        self.pair_steps = math.ceil(len(pairs) / cfg.pair_batch_size)
