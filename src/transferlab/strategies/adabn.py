"""`adabn`: re-estimate every BatchNorm's statistics on target data (Li et al. 2016).

Y. Li, N. Wang, J. Shi, J. Liu, X. Hou, "Revisiting Batch Normalization For Practical Domain
Adaptation", ICLR workshop 2017 (arXiv:1603.04779, 2016).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.head import TransferModel
from .base import register_strategy
from .domain import DomainAdaptation, supervised_loss


@register_strategy("adabn", order=120)
class AdaBN(DomainAdaptation):
    """AdaBN: the pretrained weights stay; every BatchNorm layer's running mean and variance are
    re-estimated on target inputs (labels unused), so features are normalised with the target
    domain's statistics. The backbone's parameters never train.

    Statistics are reset before training and accumulate as a cumulative average over every
    training batch (BatchNorm momentum None): at `--shots 0` those batches are unlabeled target
    rows only, so the result is the target statistics of the paper. With `--shots K` the head
    also trains on the K labelled rows per class (from the source head when the classes match).
    A backbone without BatchNorm is left as it is (the run says so in its warning-free result:
    the adapted model equals the source-only one).
    """

    summary = "AdaBN: re-estimate BatchNorm statistics on unlabeled target data; weights unchanged"
    needs_features = False
    adapts_statistics = True  # BatchNorm running statistics change in blocks whose weights stay frozen

    def prepare(self, model: TransferModel) -> None:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        for module in model.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None  # cumulative average over every batch seen

    def train_mode(self, model: TransferModel) -> None:
        model.train()  # BatchNorm in training mode: it accumulates the target batches' statistics

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any, cfg: Any) -> torch.Tensor:
        # At --shots 0 there are no labelled rows: the loss is a zero that keeps the graph, the
        # head gets a zero gradient (Adam and SGD leave it unchanged) and the forward pass is the point.
        return supervised_loss(logits, targets, batch)
