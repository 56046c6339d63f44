"""The three strategies of seed §2.2.3, a linear probe, and the from-scratch baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigError
from ..models.backbone import Backbone, check_feature_grid
from ..models.head import HeadSpec, TransferModel
from ..models.mlp import ACTIVATIONS as HEAD_ACTIVATIONS
from .base import Strategy, freeze, register_strategy


@register_strategy("scratch", order=0)
class Scratch(Strategy):
    """Same architecture, random initialisation, everything trains: the baseline every transfer is judged against."""

    summary = "baseline: same architecture, random initialisation, everything trains"
    uses_pretrained_weights = False

    def prepare(self, model: TransferModel) -> None:
        model.backbone.reset_parameters()
        super().prepare(model)


@register_strategy("full", order=10)
class Full(Strategy):
    """Full fine-tuning (seed §2.2.3): start from the pretrained backbone, every parameter trains.

    Helps when the target task has enough labels to move the whole network without overfitting.
    """

    summary = "full fine-tuning: every parameter trains, starting from the pretrained backbone"


@dataclass
class PartialConfig:
    freeze: int = field(default=1, metadata={"help": "number of backbone blocks, input side first, kept frozen"})

    def __post_init__(self) -> None:
        if int(self.freeze) != self.freeze or self.freeze < 1:
            raise ConfigError(f"--freeze must be a whole number ≥ 1; got {self.freeze}")
        self.freeze = int(self.freeze)


@register_strategy("partial", order=20)
class Partial(Strategy):
    """Partial fine-tuning (seed §2.2.3): the first N blocks stay frozen, the rest and the head train.

    Early blocks hold generic features (edges, strokes) that a related task reuses; freezing them
    saves compute and guards a small target set against overfitting. Frozen BatchNorm stays in eval
    mode, so its running statistics are untouched.
    """

    summary = "partial fine-tuning: the first N backbone blocks are frozen (--freeze N)"
    Config = PartialConfig

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        names = backbone.block_names
        if self.config.freeze > len(names):
            raise ConfigError(
                f"--freeze {self.config.freeze} exceeds the backbone's {len(names)} blocks {names}; "
                f"pass --freeze 1..{len(names)} (all {len(names)} is the same as linear-probe)"
            )
        return names[: self.config.freeze]


@dataclass
class AddLayersConfig:
    hidden: list[int] = field(default_factory=lambda: [128], metadata={"help": "sizes of the new hidden layers"})
    freeze_backbone: bool = field(default=False, metadata={"help": "keep the whole pretrained backbone frozen"})
    activation: Literal["relu", "tanh", "sigmoid", "gelu"] = field(default="relu", metadata={
        "help": "activation after each new hidden layer (tanh or sigmoid with one layer: a text model exports as a "
                "plain BertForSequenceClassification)"})
    dropout: float = field(default=0.0, metadata={"help": "dropout after each new hidden layer (while training)"})
    feature_blocks: list[str] = field(default_factory=list, metadata={
        "help": "backbone blocks whose average-pooled outputs, concatenated, feed the new layers (as linear-probe's; "
                "e.g. stage5,stage6); empty: the backbone's own features"})
    feature_grid: int = field(default=1, metadata={
        "help": "pool each feature block's map to a G×G grid of averages (as linear-probe's); needs --feature-blocks"})

    def __post_init__(self) -> None:
        try:
            self.hidden = [int(h) for h in self.hidden]
        except (TypeError, ValueError):
            raise ConfigError(f"--hidden must be comma-separated positive integers like 128,64; got {self.hidden}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ConfigError(f"--hidden must be comma-separated positive integers like 128,64; got {self.hidden}")
        if self.activation not in HEAD_ACTIVATIONS:
            raise ConfigError(f"--activation {self.activation!r} is not one of {sorted(HEAD_ACTIVATIONS)}; "
                              "pass e.g. --activation tanh")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"--dropout must be a number in [0, 1), the share of hidden units dropped while training; "
                              f"got {self.dropout!r} (e.g. --dropout 0.5)")
        self.dropout = float(self.dropout)
        check_feature_grid(self.feature_grid, "--feature-grid")
        self.feature_blocks = _block_names(self.feature_blocks)


@register_strategy("add-layers", order=30)
class AddLayers(Strategy):
    """New hidden layers between the pretrained backbone and the new output layer (seed §2.2.3).

    Adds capacity to adapt the pretrained features to the new task; with `freeze_backbone` only the
    new layers train, which is cheap and safe with very few labels. `dropout` follows each new hidden
    layer while training; `feature_blocks` / `feature_grid` choose the features as linear-probe's do (pooled
    outputs of intermediate blocks, optionally on a grid), cached like its when the backbone is frozen.
    """

    summary = ("new hidden layers on top of the backbone (--hidden 128[,64], --freeze-backbone, --dropout; "
               "--feature-blocks / --feature-grid as linear-probe's)")
    Config = AddLayersConfig

    def configure_backbone(self, backbone: Backbone) -> None:
        _configure_feature_blocks(self.config, backbone)

    def head_spec(self, num_outputs: int) -> HeadSpec:
        return HeadSpec(num_outputs=num_outputs, hidden=list(self.config.hidden), activation=self.config.activation,
                        dropout=self.config.dropout)

    def options(self) -> dict:
        """Without `dropout`, `feature_blocks` and `feature_grid` when unset: described (and resumed) as before them."""
        return {k: v for k, v in super().options().items() if not _unset_option(k, v)}

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return backbone.block_names if self.config.freeze_backbone else []


def _unset_option(name: str, value) -> bool:
    return (name in ("feature_blocks", "dropout") and not value) or (name == "feature_grid" and value == 1)


def _block_names(blocks) -> list[str]:
    """`feature_blocks` as a list of block names (a comma-separated string is split), or a clear error."""
    if isinstance(blocks, str):
        blocks = [b.strip() for b in blocks.split(",") if b.strip()]
    if not isinstance(blocks, (list, tuple)) or not all(isinstance(b, str) and b.strip() for b in blocks):
        raise ConfigError(f"--feature-blocks must be backbone block names, comma-separated like stage6,conv_head; "
                          f"got {blocks!r}")
    return [b.strip() for b in blocks]


def _configure_feature_blocks(config, backbone: Backbone) -> None:
    """Tap `config.feature_blocks` (pooled to `config.feature_grid`) as the backbone's features, if any are named."""
    grid = config.feature_grid
    if grid > 1 and not config.feature_blocks:  # checked here, not in the config: options are set one at a time
        raise ConfigError(f"--feature-grid {grid} pools the outputs of --feature-blocks, but none are given; name "
                          f"the blocks to pool, e.g. --feature-blocks stage5,stage6 --feature-grid {grid}")
    if config.feature_blocks:
        backbone.set_feature_blocks(config.feature_blocks, grid=grid)


@dataclass
class LinearProbeConfig:
    feature_blocks: list[str] = field(default_factory=list, metadata={
        "help": "backbone blocks whose average-pooled outputs, concatenated, feed the head (e.g. stage6,conv_head); "
                "empty: the backbone's own features"})
    feature_grid: int = field(default=1, metadata={
        "help": "pool each feature block's map to a G×G grid of averages (C·G² features per block) instead of one "
                "average; needs --feature-blocks"})

    def __post_init__(self) -> None:
        check_feature_grid(self.feature_grid, "--feature-grid")
        self.feature_blocks = _block_names(self.feature_blocks)


@register_strategy("linear-probe", order=40)
class LinearProbe(Strategy):
    """The pretrained backbone is frozen; only a new linear output layer trains.

    The cheapest transfer and the usual first measure of how good pretrained features are for a task.
    With `feature_blocks`, the head reads the average-pooled outputs of the named blocks, concatenated,
    instead of the last block's: intermediate stages of an ImageNet network hold more generic features
    that can transfer better to a distant target (Yosinski et al. 2014); blocks after the last named one
    are not run, which also makes the probe cheaper. With `feature_grid` G > 1 each block's map is pooled to a
    G×G grid of averages instead of one: the head also sees *where* a pattern is (centred, aligned images such
    as Fashion-MNIST's; measured in docs/vision.md).
    """

    summary = ("backbone frozen, only a new linear output layer trains (--feature-blocks: pooled outputs of chosen blocks; "
               "--feature-grid: pooled to a grid)")
    Config = LinearProbeConfig

    def configure_backbone(self, backbone: Backbone) -> None:
        _configure_feature_blocks(self.config, backbone)

    def options(self) -> dict:
        """Without `feature_blocks` / `feature_grid` when unset: a plain linear probe is described (and resumed) as before."""
        return {k: v for k, v in super().options().items() if not _unset_option(k, v)}

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return backbone.block_names


__all__ = ["AddLayers", "Full", "LinearProbe", "Partial", "Scratch", "freeze"]
