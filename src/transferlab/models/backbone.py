"""The transfer interface every backbone exposes, whatever its origin.

A backbone is the reusable part of a network: input and hidden layers, no output layer (seed §2.2.1).
It is an ordered sequence of named blocks, input side first; `features(x)` runs them all. Strategies
only ever talk to this interface ("freeze the first N blocks", "re-initialise everything"), so no
strategy needs model-specific code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.task import InputSpec
from ..errors import ConfigError, ShapeError


MAX_FEATURE_GRID = 8  # --feature-grid: at most an 8×8 grid (64 cells per channel)


def check_feature_grid(grid: object, name: str) -> None:
    """Refuse a feature grid that is not a whole number from 1 to MAX_FEATURE_GRID (`name`: as the caller spells it)."""
    if isinstance(grid, bool) or not isinstance(grid, int) or not 1 <= grid <= MAX_FEATURE_GRID:
        raise ConfigError(f"{name} must be a whole number from 1 to {MAX_FEATURE_GRID}; got {grid!r} "
                          "(1: each block's output averaged over the whole map; e.g. 4 for a 4×4 grid of averages)")


class Backbone(nn.Module):
    """An ordered stack of named blocks mapping an input (B, *input_spec.shape) to features (B, feature_dim).

    Attributes:
        blocks: the named blocks, input side first.
        input_spec: the shape of one example this backbone expects.
        feature_dim: the width of `features(x)`.
        spec: the architecture spec (registry name + config) that rebuilds this backbone, or None for
            a wrapped user module (which the user must pass again when loading).
        init_scheme: "torch" (each layer's default) or "glorot" (Linear layers like Keras Dense).
    """

    def __init__(
        self,
        blocks: dict[str, nn.Module],
        *,
        input_spec: InputSpec,
        feature_dim: int,
        spec: dict[str, Any] | None,
        init_scheme: str = "torch",
    ) -> None:
        super().__init__()
        if not blocks:
            raise ConfigError("a backbone needs at least one block; got none")
        self.blocks = nn.ModuleDict(blocks)
        self.input_spec = input_spec
        self.feature_dim = int(feature_dim)
        self.spec = spec
        self.init_scheme = init_scheme
        # Learning rates when --lr (the head's) and --backbone-lr are not given; None: the backbone
        # trains at the head's rate. Text encoders override both (models/text.py).
        self.default_lr = 1e-3
        self.default_backbone_lr: float | None = None
        # True: the engine keeps the 4-d (conv) weights channels-last while it trains (engine/train.py), for
        # blocks that take channels-last activations (models/cnn.py ConvBlock); saved weights stay contiguous.
        self.channels_last = False
        # Blocks whose pooled outputs, concatenated, are the features (`set_feature_blocks`); empty: the last block's output
        self.feature_blocks: list[str] = []
        # Each feature block's (B, C, H, W) output pooled to a grid × grid of averages (1: the global average)
        self.feature_grid = 1
        if init_scheme == "glorot":
            glorot_(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Run every block: (B, *input shape) -> (B, feature_dim)."""
        return self.features_from(x, 0)

    def set_feature_blocks(self, names: list[str], grid: int = 1) -> None:
        """Features = the globally average-pooled outputs of the named blocks, concatenated (input side first).

        Earlier blocks of an ImageNet network hold more generic features (textures, parts) than its last one,
        which is specialised to ImageNet's classes; for targets far from ImageNet (grayscale thumbnails) a
        linear probe on them can transfer better (Yosinski et al. 2014; the benchmark in docs/vision.md).
        Blocks after the last named one are not run. A (B, C, H, W) output is averaged over H and W; a
        (B, D) output is used as it is. An empty list restores the default (the last block's output).
        The choice is recorded in the spec (`feature_blocks`), so a saved model is rebuilt with it.

        `grid` > 1 keeps where things are: each (B, C, H, W) output is average-pooled to a grid × grid of cells
        (`adaptive_avg_pool2d`; a map smaller than the grid repeats its values), C·grid² features per block,
        channels first then cells row by row; (B, D) outputs are used as they are. Recorded as `feature_grid`.
        """
        names = list(names)
        check_feature_grid(grid, "feature_grid")
        known = self.block_names
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"feature_blocks {unknown} are not blocks of this backbone; its blocks are {known} "
                              "(pass some of them, e.g. --feature-blocks " + ",".join(known[-2:]) + ")")
        if len(set(names)) != len(names):
            raise ConfigError(f"feature_blocks {names} names a block twice; name each block once")
        if names and self.spec is None:
            raise ConfigError("feature_blocks needs a backbone transferlab can rebuild (a registered one); this one is "
                              "a wrapped user module: add a pooling layer to the module instead")
        ordered = [n for n in known if n in names]
        if not self.feature_blocks:
            self._untapped_dim = self.feature_dim
        if grid > 1 and not ordered:
            raise ConfigError(f"feature_grid {grid} pools the outputs of feature_blocks, but none are named; name the "
                              "blocks to pool (e.g. --feature-blocks stage5,stage6 --feature-grid " + str(grid) + ")")
        if (ordered == [known[-1]] and grid == 1) or not ordered:  # the last block alone is the default features
            ordered = []
        previous = (self.feature_blocks, self.feature_dim, self.feature_grid)
        self.feature_blocks, self.feature_grid = ordered, grid
        if ordered:
            was_training = self.training
            self.eval()
            try:
                with torch.no_grad():
                    dim = int(self._tapped(self.example_input(), 0).shape[1])
            except Exception:
                self.feature_blocks, self.feature_dim, self.feature_grid = previous
                raise
            finally:
                self.train(was_training)
            self.feature_dim = dim
        else:
            self.feature_dim = self._untapped_dim
        spec = ({k: v for k, v in self.spec.items() if k not in ("feature_blocks", "feature_grid")}
                if self.spec is not None else None)
        if spec is not None and ordered:
            spec["feature_blocks"] = list(ordered)
            if grid > 1:
                spec["feature_grid"] = grid
        self.spec = spec

    def _tapped(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Pooled outputs of the feature blocks, concatenated, from `x` = the output of the first `start` blocks."""
        names = self.block_names
        taps = [names.index(n) for n in self.feature_blocks]
        if taps[0] < start - 1:
            raise ConfigError(f"the features need the output of block {names[taps[0]]!r}, but the run starts after block "
                              f"{names[start - 1]!r}; cache at most the blocks up to {names[taps[0]]!r}")
        grid = self.feature_grid
        pooled = [_pool(x, names[start - 1], grid)] if start - 1 in taps else []
        for i in range(start, taps[-1] + 1):
            x = self.blocks[names[i]](x)
            if i in taps:
                pooled.append(_pool(x, names[i], grid))
        return torch.cat(pooled, dim=1)  # (B, feature_dim)

    def cacheable_cut(self, frozen: int) -> int:
        """The deepest cut ≤ `frozen` whose cached output still gives every feature block's output."""
        if not self.feature_blocks or frozen >= len(self.blocks):
            return frozen
        return min(frozen, self.block_names.index(self.feature_blocks[0]) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def prepare_inputs(self, x: np.ndarray) -> torch.Tensor:
        """A dataset's inputs as the tensor the first block takes (float32 here; text backbones tokenize)."""
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def example_input(self) -> torch.Tensor:
        """One example of the input this backbone takes (for FLOP counting)."""
        return torch.zeros(1, *self.input_spec.shape)

    def features_until(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """Run the first `stop` blocks: the output at the cut where a frozen prefix ends (all blocks: the features)."""
        if self.feature_blocks and stop >= len(self.blocks):
            return self._tapped(x, 0)
        for block in list(self.blocks.values())[:stop]:
            x = block(x)
        return x

    def features_from(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Run blocks `start`… on the output of `features_until(·, start)`: (B, …) -> (B, feature_dim)."""
        if self.feature_blocks:
            return x if start >= len(self.blocks) else self._tapped(x, start)
        for block in list(self.blocks.values())[start:]:
            x = block(x)
        return x

    @property
    def block_names(self) -> list[str]:
        """Block names, input side first (what `--freeze N` counts over)."""
        return list(self.blocks.keys())

    def block_param_names(self, prefix: str = "backbone.") -> list[dict[str, Any]]:
        """`[{"name": block, "params": [tensor names]}]`, input side first, as stored in config.json."""
        return [
            {"name": name, "params": [f"{prefix}blocks.{name}.{p}" for p, _ in block.state_dict().items()]}
            for name, block in self.blocks.items()
        ]

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (the from-scratch baseline: same architecture, random init).

        Layers get torch's default initialisation, then the backbone's own scheme (`init_scheme`),
        exactly as when the backbone was created.
        """
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.init_scheme == "glorot":
            glorot_(self)

    def check_input(self, x: torch.Tensor, *, what: str = "input") -> None:
        """Raise ShapeError when a batch does not have this backbone's input shape."""
        expected = tuple(self.input_spec.shape)
        if tuple(x.shape[1:]) != expected:
            got = "×".join(str(s) for s in x.shape[1:])
            if self.input_spec.kind == "vector" and x.dim() == 2:
                raise ShapeError(
                    f"{what} has {x.shape[1]} features per example but this backbone expects {expected[0]}; "
                    "for a CSV, pass --label-column so the label column is not read as a feature"
                )
            raise ShapeError(
                f"{what} has examples of shape {got} but this backbone expects "
                f"{self.input_spec.describe()}s; resize the data (images: --image-size) or use a backbone "
                f"built for {got}"
            )


def _pool(x: torch.Tensor, name: str, grid: int = 1) -> torch.Tensor:
    """A block's output as one vector per example: (B, C, H, W) averaged over H and W (grid > 1: over each cell of a
    grid × grid, → (B, C·grid²)); (B, D) as it is."""
    if isinstance(x, torch.Tensor) and x.dim() == 4:
        if grid == 1:
            return x.mean(dim=(2, 3))
        return torch.nn.functional.adaptive_avg_pool2d(x, grid).flatten(1)  # (B, C, grid, grid) -> (B, C·grid²)
    if isinstance(x, torch.Tensor) and x.dim() == 2:
        return x
    shape = "×".join(str(s) for s in x.shape[1:]) if isinstance(x, torch.Tensor) else type(x).__name__
    raise ConfigError(f"block {name!r} outputs examples of shape {shape}, which feature_blocks cannot pool (it pools "
                      "C×H×W feature maps and vectors); choose other blocks")


def glorot_(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every Linear layer (Keras' Dense default).

    The seed's network is a Keras model; with this initialisation transferlab's `mlp` reaches the
    Keras accuracy on MNIST-5k (0.927 vs 0.930 over 3 seeds; torch's default init gives 0.916).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def wrap_module(module: nn.Sequential, *, input_shape: tuple[int, ...]) -> Backbone:
    """Wrap a user's `nn.Sequential` as a Backbone with the transfer interface.

    Each child that has parameters starts a block named after it; parameter-free children
    (activations, pooling, dropout, flatten) join the block before them, so `--freeze N` counts
    layers that learn. The output is flattened to (B, feature_dim). Saved folders of a wrapped
    module hold its weights and block names but not its code: pass the same module to `load`.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        >>> backbone = wrap_module(net, input_shape=(1, 8, 8))
        >>> backbone.block_names, backbone.feature_dim
        (['1'], 32)
    """
    if not isinstance(module, nn.Sequential):
        raise ConfigError(
            f"cannot wrap {type(module).__name__}: transferlab runs blocks in order, which only "
            "nn.Sequential guarantees; pass nn.Sequential(*your_layers)"
        )
    groups: list[tuple[str, list[nn.Module]]] = []
    pending: list[nn.Module] = []
    for name, child in module.named_children():
        if any(True for _ in child.parameters()):
            groups.append((name, pending + [child]))
            pending = []
        elif groups:
            groups[-1][1].append(child)
        else:
            pending.append(child)
    if not groups:
        raise ConfigError("cannot wrap a module without parameters: there is nothing to transfer")
    groups[-1][1].extend(pending)
    blocks: dict[str, nn.Module] = {name: nn.Sequential(*layers) for name, layers in groups}
    blocks[groups[-1][0]].append(nn.Flatten())
    kind = "image" if len(input_shape) == 3 else "vector"
    spec = InputSpec(kind=kind, shape=tuple(int(s) for s in input_shape))
    backbone = Backbone(blocks, input_spec=spec, feature_dim=1, spec=None)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone.features(torch.zeros(2, *spec.shape))
    except RuntimeError as err:
        raise ShapeError(
            f"the module does not accept inputs of shape {spec.describe()}: {err}; pass the input_shape it expects"
        ) from err
    backbone.train(was_training)
    backbone.feature_dim = int(out.shape[1])
    return backbone
