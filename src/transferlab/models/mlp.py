"""`mlp`: the seed's multi-layer perceptron (seed §2.1, §4): flatten, then Linear → activation → dropout blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError
from .backbone import Backbone
from .registry import register_backbone

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}


@dataclass
class MLPConfig:
    """Hidden sizes, activation and dropout. The seed's network is hidden=[128], relu, dropout 0.2."""

    hidden: list[int] = field(default_factory=lambda: [128], metadata={"help": "hidden layer sizes, input side first"})
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = field(default="relu", metadata={"help": "activation after each hidden layer"})
    dropout: float = field(default=0.2, metadata={"help": "dropout after each hidden layer"})

    def __post_init__(self) -> None:
        self.hidden = [int(h) for h in self.hidden]
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"mlp hidden sizes must be positive integers, at least one; got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"mlp activation {self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"mlp dropout must be in [0, 1); got {self.dropout}")


@register_backbone("mlp", MLPConfig, "multi-layer perceptron (the seed's network): Linear→activation→dropout blocks",
                   tiny=lambda scratch: {"hidden": [16]})
def mlp(cfg: MLPConfig, input_spec: InputSpec) -> Backbone:
    in_features = math.prod(input_spec.shape)
    blocks: dict[str, nn.Module] = {}
    for i, width in enumerate(cfg.hidden):
        layers: list[nn.Module] = [nn.Flatten()] if i == 0 else []
        layers += [nn.Linear(in_features, width), ACTIVATIONS[cfg.activation]()]
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        blocks[f"fc{i + 1}"] = nn.Sequential(*layers)
        in_features = width
    return Backbone(blocks, input_spec=input_spec, feature_dim=in_features, spec=None, init_scheme="glorot")
