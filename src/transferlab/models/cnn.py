"""`cnn`: a small convolutional network with BatchNorm for small grayscale or colour images."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError
from .backbone import Backbone
from .registry import register_backbone


@dataclass
class CNNConfig:
    """Conv widths (one conv block each: 3×3 conv → BatchNorm → ReLU → 2×2 max-pool), then one dense block."""

    channels: list[int] = field(default_factory=lambda: [16, 32], metadata={"help": "conv block widths, input side first"})
    hidden: int = field(default=128, metadata={"help": "width of the dense block"})
    dropout: float = field(default=0.0, metadata={"help": "dropout of the dense block"})

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"cnn channels must be positive integers, at least one; got {self.channels}")
        if int(self.hidden) < 1:
            raise ConfigError(f"cnn hidden must be a positive integer; got {self.hidden}")
        self.hidden = int(self.hidden)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"cnn dropout must be in [0, 1); got {self.dropout}")


class ConvBlock(nn.Sequential):
    """3×3 conv → BatchNorm → ReLU → max-pool on channels-last activations (the same state dict as a Sequential).

    The CPU's oneDNN convolution, BatchNorm and above all max-pooling run faster on channels-last
    activations: a training step of the demo's cnn 1.3–1.5× faster (benchmarks/compare_grid.py --ensemble).
    Every path converts here (training, evaluation, the frozen-feature cache, analysis), so a cached
    prefix gives the same bits as the same prefix run inside training; the engine also keeps the
    conv weights channels-last while it trains (`Backbone.channels_last`) and contiguous outside.

    Max-pooling runs before the ReLU (the modules stay in the order conv, BatchNorm, ReLU, max-pool): ReLU is
    monotone, so max(relu(a)) is relu(max(a)) bit for bit, and so are the gradients (the pool picks the same
    element; where it is ≤ 0 the ReLU passes no gradient either way) — but the ReLU and its backward then touch
    a quarter of the elements: a training step 1.06–1.07× faster, whole cells 1.05× (docs/compare_speed.md).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
        if len(self) == 4 and isinstance(self[2], nn.ReLU) and isinstance(self[3], nn.MaxPool2d):
            conv, bn, relu, pool = self
            return relu(pool(bn(conv(x))))
        return super().forward(x)


@register_backbone("cnn", CNNConfig, "small conv net: [3×3 conv→BatchNorm→ReLU→max-pool]×n, then a dense block", inputs=("image",),
                   tiny=lambda scratch: {"channels": [4, 8], "hidden": 16})
def cnn(cfg: CNNConfig, input_spec: InputSpec) -> Backbone:
    if input_spec.kind != "image":
        raise ConfigError(
            f"cnn needs image inputs (C, H, W); the data gives {input_spec.describe()}s; use --backbone mlp"
        )
    c, h, w = input_spec.shape
    if min(h, w) < 2 ** len(cfg.channels):
        raise ConfigError(
            f"cnn with {len(cfg.channels)} pooling stages needs images of at least {2 ** len(cfg.channels)} px "
            f"a side; got {h}×{w}; pass --image-size {2 ** len(cfg.channels)} or larger"
        )
    blocks: dict[str, nn.Module] = {}
    for i, width in enumerate(cfg.channels):
        blocks[f"conv{i + 1}"] = ConvBlock(
            nn.Conv2d(c, width, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        c, h, w = width, h // 2, w // 2
    dense: list[nn.Module] = [nn.Flatten(), nn.Linear(c * h * w, cfg.hidden), nn.ReLU(inplace=True)]
    if cfg.dropout > 0:
        dense.append(nn.Dropout(cfg.dropout))
    blocks["fc"] = nn.Sequential(*dense)
    backbone = Backbone(blocks, input_spec=input_spec, feature_dim=cfg.hidden, spec=None)
    backbone.channels_last = True
    return backbone


