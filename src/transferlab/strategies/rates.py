"""Strategies that shape the update rather than the trainable set: layer-wise LR decay, L2-SP, BitFit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import TransferModel
from .base import Strategy, auxiliary_groups, register_strategy


@dataclass
class DiscriminativeConfig:
    lr_decay: float = field(default=0.7, metadata={"help": "each block toward the input gets the rate above × this"})

    def __post_init__(self) -> None:
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"--lr-decay must be in (0, 1]; got {self.lr_decay}")


@register_strategy("discriminative-lr", order=60)
class DiscriminativeLR(Strategy):
    """Layer-wise learning-rate decay: the top block trains at the backbone rate, each block below at × decay.

    Input-side blocks hold general features that should move least; the top adapts most. As in
    ULMFiT ("discriminative fine-tuning", Howard & Ruder 2018) and timm/BEiT's layer decay
    (Bao et al. 2021, arXiv:2106.08254).
    """

    summary = "layer-wise LR decay: each block toward the input gets the rate above × --lr-decay (0.7)"
    Config = DiscriminativeConfig

    def param_groups(self, model: TransferModel, lr: float, backbone_lr: float | None = None) -> list[dict[str, Any]]:
        top = lr if backbone_lr is None else backbone_lr
        names = model.backbone.block_names
        groups = [
            {"name": f"block:{name}", "params": list(model.backbone.blocks[name].parameters()),
             "lr": top * self.config.lr_decay ** (len(names) - 1 - i)}
            for i, name in enumerate(names)
        ]
        return [g for g in groups if g["params"]] + [{"name": "head", "params": list(model.head.parameters()), "lr": lr}] \
            + auxiliary_groups(model, lr)


@dataclass
class L2SPConfig:
    alpha: float = field(default=0.01, metadata={"help": "weight of α/2·‖w − w_pretrained‖² on the backbone"})
    beta: float = field(default=0.01, metadata={"help": "weight of β/2·‖w‖² on the head"})

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.beta < 0:
            raise ConfigError(f"--alpha and --beta must be ≥ 0; got {self.alpha}, {self.beta}")


@register_strategy("l2-sp", order=70)
class L2SP(Strategy):
    """Full fine-tuning pulled toward the pretrained weights: + α/2·‖w − w⁰‖² (backbone) + β/2·‖w‖² (head).

    Plain weight decay pulls toward zero, forgetting what pretraining learned; L2-SP pulls toward the
    starting point, which keeps the pretrained features when labels are few.
    Source: Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
    Networks", ICML 2018 (arXiv:1802.01483).
    """

    summary = "full fine-tuning + α/2·‖w − w_pretrained‖² on the backbone and β/2·‖w‖² on the head"
    Config = L2SPConfig
    has_regularizer = True

    def prepare(self, model: TransferModel) -> None:
        super().prepare(model)
        self._start = [p.detach().clone() for p in model.backbone.parameters()]

    def regularizer(self, model: TransferModel) -> torch.Tensor:
        backbone = list(model.backbone.parameters())
        if self._start and self._start[0].device != backbone[0].device:  # the run moved the model to its device
            self._start = [w.to(backbone[0].device) for w in self._start]
        drift = torch._foreach_sub([p for p in backbone], self._start)
        spread = sum(d.pow(2).sum() for d in drift)
        head = sum(p.pow(2).sum() for n, p in model.head.named_parameters() if n.endswith("weight"))
        return 0.5 * self.config.alpha * spread + 0.5 * self.config.beta * head


@register_strategy("bitfit", order=80)
class BitFit(Strategy):
    """Only the backbone's bias terms (and the new head) train (Ben Zaken et al., ACL 2022).

    A tiny, memory-light update (well under 1% of a transformer's parameters) that is often
    competitive with full fine-tuning on small and medium data. Source: "BitFit: Simple
    Parameter-efficient Fine-tuning for Transformer-based Masked Language-models", arXiv:2106.10199.
    """

    summary = "only the backbone's biases and the new head train"

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return [name for name, block in backbone.blocks.items()
                if not any(n.endswith("bias") for n, _ in block.named_parameters())]

    def prepare(self, model: TransferModel) -> None:
        for name, p in model.backbone.named_parameters():
            p.requires_grad_(name.endswith("bias"))
