"""The strategy interface and registry (after PEFT: methods as plug-ins, registered by name).

A strategy says how a pretrained model is adapted to a target task. To add one, subclass
`Strategy`, give it a `Config` dataclass (fields with `metadata={"help": ...}`), and implement
what differs from the defaults:

- `head_spec(num_outputs)`: the head put on the backbone (default: one linear output layer);
- `frozen_blocks(backbone)`: names of backbone blocks that do not train (default: none);
- `prepare(model)`: anything done once before training (default: freeze `frozen_blocks`);
- `param_groups(model, lr, backbone_lr)`: the optimiser's parameter groups, created up front
  (default: the backbone's trainable parameters at `backbone_lr`, the head's at `lr`);
- `before_fit(model, x, y, seed, progress=False)`: an optional first phase on the training inputs (set
  `tunes_backbone_before_fit = True` when it changes the backbone; report steps with
  `engine.progress.progress_steps(..., progress=progress)`);
- `on_epoch_start(model, epoch, epochs)`: a phase schedule (which blocks train from this epoch on);
- `regularizer(model)`: a term added to every step's loss (with `has_regularizer = True`);
- `finalize(model)`: anything done once after training, before evaluation and saving (default: nothing);
- `train_mode(model)`: put the model in training mode; frozen blocks stay in eval mode so a frozen
  BatchNorm keeps its statistics and a frozen dropout is off.

A strategy whose frozen prefix is *not* a fixed function of the input (say it perturbs frozen
blocks) sets `caches_frozen_prefix = False`; otherwise the engine computes the outputs of the
leading frozen blocks once and trains the rest on them.

Then decorate the class with `@register_strategy("name")`. Every registered strategy is run by the
conformance tests automatically.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar


from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import HeadSpec, TransferModel

_STRATEGIES: dict[str, type["Strategy"]] = {}


@dataclasses.dataclass
class NoOptions:
    """This strategy has no options."""


class Strategy:
    """Base class: full fine-tuning of every parameter with a new linear head."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type] = NoOptions
    uses_pretrained_weights: ClassVar[bool] = True
    caches_frozen_prefix: ClassVar[bool] = True
    # True when `before_fit` changes the backbone (its features are then not shared with other runs)
    tunes_backbone_before_fit: ClassVar[bool] = False

    def before_fit(self, model: TransferModel, x: Any, y: Any, seed: int, progress: Any = False) -> None:
        """An optional first phase on the training split (e.g. SetFit's contrastive tuning). Default: nothing."""

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()

    def head_spec(self, num_outputs: int) -> HeadSpec:
        return HeadSpec(num_outputs=num_outputs)

    def frozen_blocks(self, backbone: Backbone) -> list[str]:
        return []

    def prepare(self, model: TransferModel) -> None:
        freeze(model.backbone, self.frozen_blocks(model.backbone))

    def param_groups(self, model: TransferModel, lr: float, backbone_lr: float | None = None) -> list[dict[str, Any]]:
        """Every parameter is in a group from the start — frozen ones too (they get no gradient, so
        the optimiser skips them) — so unfreezing mid-run needs no new group and a checkpoint taken
        mid-schedule has the same optimiser layout as the run it restores."""
        backbone = list(model.backbone.parameters())
        head = list(model.head.parameters())
        groups = [{"name": "head", "params": head, "lr": lr}]
        if backbone:
            groups.insert(0, {"name": "backbone", "params": backbone, "lr": lr if backbone_lr is None else backbone_lr})
        return groups

    def train_mode(self, model: TransferModel) -> None:
        model.train()
        for name in self.frozen_blocks(model.backbone):
            model.backbone.blocks[name].eval()

    has_regularizer: ClassVar[bool] = False

    def regularizer(self, model: TransferModel) -> Any:
        """A term added to every step's loss (set `has_regularizer = True`), e.g. L2-SP's distance to the pretrained weights."""
        raise NotImplementedError

    # True when `on_step_start` changes what trains (checked once per step only then)
    has_step_schedule: ClassVar[bool] = False

    def on_step_start(self, model: TransferModel, step: int) -> bool:
        """Before optimiser step `step` (0-based, over the whole run): return True if what trains changed.

        Like `on_epoch_start`, it must depend on `step` only, so a resumed run restores the phase.
        """
        return False

    def on_epoch_start(self, model: TransferModel, epoch: int, epochs: int) -> None:
        """Called before each epoch (1-based): phase schedules change what trains here. Default: nothing.

        It must depend on `epoch` only (no hidden state, no random draws): a run resumed mid-epoch
        calls it again for that epoch to restore the phase.
        """

    def finalize(self, model: TransferModel) -> None:
        """Called once after training, before evaluation and saving (e.g. merge adapters). Default: nothing."""

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.name}({opts})" if opts else self.name


def freeze(backbone: Backbone, block_names: list[str]) -> None:
    """Stop gradients for the named blocks (their BatchNorm/dropout go to eval mode in `train_mode`)."""
    for name in block_names:
        for p in backbone.blocks[name].parameters():
            p.requires_grad_(False)


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: register a Strategy subclass under `name`."""

    def decorator(cls: type[Strategy]) -> type[Strategy]:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        cls.name = name
        _STRATEGIES[name] = cls
        return cls

    return decorator


def list_strategies() -> list[str]:
    """Registered strategy names, the from-scratch baseline first.

    Example:
        >>> list_strategies()
        ['scratch', 'full', 'partial', 'add-layers', 'linear-probe']
    """
    return list(_STRATEGIES)


def strategy_class(name: str) -> type[Strategy]:
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; registered strategies are {list_strategies()}")
    return _STRATEGIES[name]


def strategy_options(name: str) -> list[dataclasses.Field]:
    """The option fields of a strategy's config (name, type, default, help)."""
    return list(dataclasses.fields(strategy_class(name).Config))


def create_strategy(name: str, **options: Any) -> Strategy:
    """Build a registered strategy with its options; options it doesn't have are refused.

    Example:
        >>> create_strategy("partial", freeze=2).describe()
        'partial(freeze=2)'
    """
    cls = strategy_class(name)
    allowed = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        owners = {
            opt: [n for n, c in _STRATEGIES.items() if opt in {f.name for f in dataclasses.fields(c.Config)}]
            for opt in unknown
        }
        hints = "; ".join(f"{opt!r} is an option of {owners[opt] or 'no strategy'}" for opt in unknown)
        allowed_txt = sorted(allowed) if allowed else "none"
        raise ConfigError(
            f"strategy {name!r} does not take option(s) {unknown} ({hints}); its options are {allowed_txt}"
        )
    return cls(cls.Config(**options))
