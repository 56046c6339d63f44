"""Heads: the task-specific output layers put on a backbone, and the backbone+head network."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from .backbone import Backbone, glorot_
from .mlp import ACTIVATIONS


@dataclass
class HeadSpec:
    """A head: optional new hidden layers (seed §2.2.3 "add new hidden layers"), then a linear output layer."""

    num_outputs: int
    hidden: list[int] = field(default_factory=list)
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.hidden = [int(h) for h in self.hidden]
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"head hidden sizes must be positive integers; got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"head activation {self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"head dropout must be a number in [0, 1); got {self.dropout!r}")
        self.dropout = float(self.dropout)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_head(feature_dim: int, spec: HeadSpec) -> nn.Sequential:
    """(B, feature_dim) -> (B, num_outputs). Hidden layers are named hidden1.., the output layer `out`.

    Linear layers start Glorot-uniform with zero biases, like the seed's Keras Dense layers.
    """
    from ..limits import check_limit

    widths = [int(feature_dim), *spec.hidden, int(spec.num_outputs)]  # counted before anything is allocated
    check_limit("parameters", sum((a + 1) * b for a, b in zip(widths, widths[1:])), what=f"head {spec.to_dict()}",
                fix="use smaller hidden sizes", error=ConfigError)
    layers: dict[str, nn.Module] = {}
    width = feature_dim
    for i, h in enumerate(spec.hidden):
        block: list[nn.Module] = [nn.Linear(width, h), ACTIVATIONS[spec.activation]()]
        if spec.dropout > 0:
            block.append(nn.Dropout(spec.dropout))
        layers[f"hidden{i + 1}"] = nn.Sequential(*block)
        width = h
    layers["out"] = nn.Linear(width, spec.num_outputs)
    head = nn.Sequential(OrderedDict(layers))
    glorot_(head)
    return head


class TransferModel(nn.Module):
    """A backbone and a head. Tensor names start with `backbone.` and `head.` (the saved-folder contract).

    `auxiliary` holds modules a strategy trains alongside (a domain discriminator): they are part of
    the run (optimiser, checkpoints) but not of the saved model.
    """

    def __init__(self, backbone: Backbone, head_spec: HeadSpec) -> None:
        super().__init__()
        self.backbone = backbone
        self.head_spec = head_spec
        self.head = build_head(backbone.feature_dim, head_spec)
        self.auxiliary = nn.ModuleDict()

    def forward(self, x: torch.Tensor, with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, num_outputs); with `with_features`, (features (B, feature_dim), logits)."""
        features = self.backbone.features(x)
        logits = self.head(features)
        return (features, logits) if with_features else logits


class FromBlock(nn.Module):
    """The part of a TransferModel after its first `start` backbone blocks (input: features at that cut).

    Training on cached outputs of a frozen prefix runs this instead of the whole model.
    """

    def __init__(self, model: TransferModel, start: int) -> None:
        super().__init__()
        self.model = model
        self.start = start

    def forward(self, h: torch.Tensor, with_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.model.backbone.features_from(h, self.start)
        logits = self.model.head(features)  # (B, num_outputs)
        return (features, logits) if with_features else logits
