"""The strategy interface and registry (after PEFT: methods as plug-ins, registered by name).

A strategy says how a pretrained model is adapted to a target task. To add one, subclass
`Strategy`, give it a `Config` dataclass (fields with `metadata={"help": ...}`), and implement
what differs from the defaults:

- `configure_backbone(backbone)`: set up the backbone before the head is put on it, e.g. which blocks'
  pooled outputs are the features (default: nothing);
- `head_spec(num_outputs)`: the head put on the backbone (default: one linear output layer);
- `frozen_blocks(backbone)`: names of backbone blocks that do not train (default: none);
- `prepare(model)`: anything done once before training (default: freeze `frozen_blocks`);
- `param_groups(model, lr, backbone_lr)`: the optimiser's parameter groups, created up front
  (default: the backbone's trainable parameters at `backbone_lr`, the head's at `lr`);
- `before_fit(model, x, y, seed, progress=False)`: an optional first phase on the training inputs (set
  `tunes_backbone_before_fit = True` when it changes the backbone; report steps with
  `engine.progress.progress_steps(..., progress=progress)`);
- `on_epoch_start(model, epoch, epochs)`: a phase schedule (which blocks train from this epoch on);
- `on_step_start(model, step)`: a per-step schedule (with `has_step_schedule = True`);
- `on_fresh_epoch(model, forward, x_unlabeled, epoch)`: work over every unlabeled input once per epoch
  (SHOT's global centroids), its result kept in `model.auxiliary` so checkpoints carry it;
- `loss(logits, targets, batch, cfg)`: the training loss of one step. It sees the logits, the targets,
  the train config and the whole `TrainingBatch` (inputs, rows, step, the backbone features with
  `needs_features = True`, the outputs of an unlabeled batch with `needs_unlabeled = True`, the
  configured criterion). Label smoothing, distillation, domain-adaptation and consistency losses are
  this hook (default: the configured criterion, cross-entropy or MSE);
- `regularizer(model)`: a term added to every step's loss (with `has_regularizer = True`);
- `finalize(model)`: anything done once after training, before evaluation and saving (default: nothing);
- `train_mode(model)`: put the model in training mode; frozen blocks stay in eval mode so a frozen
  BatchNorm keeps its statistics and a frozen dropout is off.

Extra trainable modules a strategy needs during training only (a domain discriminator) go into
`model.auxiliary` in `prepare`: they train (their own "auxiliary" parameter group), move to the run's
device and are checkpointed with the run, but are not part of the saved model.

**Per-run state.** The engine runs a fresh copy of the strategy for every run (`for_run()`: same
config, nothing else), so attributes a hook sets (`self.start_` in `prepare`) live in that run's
object only: one strategy instance can be passed to many runs and gives the same result each time.
`__init__` stores the config and nothing else.

**Unlabeled batches.** A strategy that sets `needs_unlabeled = True` gets, at every step, a batch of
unlabeled inputs (`batch.unlabeled`, drawn by the engine from its own seeded stream, checkpointed
with the run) and their outputs (`batch.unlabeled_logits`, `batch.unlabeled_features`). They come
from the rows of the task's pool that are neither training nor validation rows, or from inputs the
caller passes; never from the test split.

**Cached frozen prefix.** The engine computes the outputs of the leading blocks that stay frozen for
the *whole run* once, and trains the rest on them. Which blocks those are is
`frozen_throughout(backbone)`: by default `frozen_blocks` — or nothing at all when the strategy has a
phase schedule (`on_epoch_start`/`on_step_start`). A strategy
may declare more (override it); the engine verifies the declaration at every phase change and
refuses a run in which a cached block trains or leaves eval mode.

Then decorate the class with `@register_strategy("name")`, in a module of its own in `strategies/`
(found without an import line anywhere). Every registered strategy is run by the conformance tests
automatically.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch

from ..errors import ConfigError
from ..models.backbone import Backbone
from ..models.head import HeadSpec, TransferModel

if TYPE_CHECKING:  # the engine imports strategies, never the reverse at run time
    from ..engine.train import TrainConfig

_STRATEGIES: dict[str, type["Strategy"]] = {}
DEFAULT_ORDER = 1000.0  # plug-ins that declare no order are listed after the built-ins, by name


@dataclasses.dataclass
class NoOptions:
    """This strategy has no options."""


Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass
class TrainingBatch:
    """What a strategy's `loss` hook sees of one training step (this process's share under data parallelism).

    Attributes:
        x: the inputs as the trained part of the network takes them (outputs of a cached frozen prefix
            when there is one), (B, ...).
        y: the targets, (B,).
        index: the rows of the training split in this batch, (B,).
        model: the model being trained.
        criterion: the configured loss (`--loss`: cross-entropy, or MSE), `criterion(logits, y)`.
        step: optimiser steps taken before this one in the whole run (0-based).
        epoch, epochs: the current epoch (1-based) and the run's number of epochs.
        features: backbone features of `x`, (B, feature_dim), when the strategy sets `needs_features`.
        unlabeled: a batch of unlabeled inputs, when the strategy sets `needs_unlabeled`.
        unlabeled_logits, unlabeled_features: the network's outputs for `unlabeled` (computed in the
            same forward pass as the labelled batch).
        unlabeled_index: the rows of `unlabeled` among all the unlabeled inputs (the order
            `on_fresh_epoch` sees them in), (U,).
    """

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    model: TransferModel
    criterion: Criterion
    step: int
    epoch: int
    epochs: int
    features: torch.Tensor | None = None
    unlabeled: torch.Tensor | None = None
    unlabeled_logits: torch.Tensor | None = None
    unlabeled_features: torch.Tensor | None = None
    unlabeled_index: torch.Tensor | None = None


class Strategy:
    """Base class: full fine-tuning of every parameter with a new linear head."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    order: ClassVar[float] = DEFAULT_ORDER  # where listings put it (set by register_strategy)
    Config: ClassVar[type] = NoOptions
    uses_pretrained_weights: ClassVar[bool] = True
    # False: never cache a frozen prefix (e.g. a strategy that perturbs frozen blocks). Caching is
    # otherwise decided by `frozen_throughout`, and verified by the engine.
    caches_frozen_prefix: ClassVar[bool] = True
    # True when `before_fit` changes the backbone (its features are then not shared with other runs)
    tunes_backbone_before_fit: ClassVar[bool] = False
    # True: the loss hook gets the backbone features of the batch (`batch.features`)
    needs_features: ClassVar[bool] = False
    # True: every step also gets a batch of unlabeled inputs and their outputs (`batch.unlabeled*`)
    needs_unlabeled: ClassVar[bool] = False
    # Options that keep the strategy's extra work tiny (the conformance suite runs every strategy with them)
    tiny_options: ClassVar[dict[str, Any]] = {}

    def before_fit(self, model: TransferModel, x: Any, y: Any, seed: int, progress: Any = False) -> None:
        """An optional first phase on the training split (e.g. SetFit's contrastive tuning). Default: nothing."""

    def __init__(self, config: Any | None = None) -> None:
        self.config = config if config is not None else self.Config()

    def for_run(self) -> "Strategy":
        """A fresh copy for one run: the same config and nothing else (after scikit-learn's `clone`).

        The engine calls it at the start of every run, so state a hook keeps on `self` never leaks
        from one run into the next.
        """
        return type(self)(copy.deepcopy(self.config))

    def frozen_throughout(self, backbone: Backbone) -> list[str]:
        """Blocks that stay frozen (and in eval mode) for the whole run: the engine may cache their outputs.

        Default: `frozen_blocks(backbone)` (asked after `prepare` and `before_fit`), unless the strategy
        changes what trains during the run (it overrides `on_epoch_start` or `on_step_start`) — then
        none. The engine checks the declaration at every phase change (`check_frozen_throughout`).
        """
        cls = type(self)
        scheduled = cls.on_epoch_start is not Strategy.on_epoch_start or cls.on_step_start is not Strategy.on_step_start
        if scheduled or not self.caches_frozen_prefix:
            return []
        return self.frozen_blocks(backbone)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: TrainingBatch, cfg: "TrainConfig") -> torch.Tensor:
        """The loss of one training step (the regulariser, if any, is added after). Default: `batch.criterion`.

        Examples:
            >>> import torch.nn.functional as F
            >>> class Smooth(Strategy):
            ...     def loss(self, logits, targets, batch, cfg):
            ...         return F.cross_entropy(logits, targets, label_smoothing=0.1)
        """
        return batch.criterion(logits, targets)

    def configure_backbone(self, backbone: Backbone) -> None:
        """Before the head is built: set up the backbone (a linear probe's `feature_blocks`). Default: nothing."""

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
        return groups + auxiliary_groups(model, lr)

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

    def on_fresh_epoch(self, model: TransferModel, forward: Callable[..., Any], x_unlabeled: torch.Tensor,
                       epoch: int) -> None:
        """Called at the start of each fresh epoch (1-based) of a strategy with `needs_unlabeled`, with every
        unlabeled input (e.g. SHOT's pseudo-labels over the whole target set). Default: nothing.

        `forward(x, with_features=True)` is the network as the run trains it (the part after a cached
        frozen prefix, whose outputs `x_unlabeled` then are). A run resumed mid-epoch does not call it
        again: what it computes must be kept in `model.auxiliary` (a buffer), so the checkpoint carries
        it, and it must draw nothing at random.
        """

    def finalize(self, model: TransferModel) -> None:
        """Called once after training, before evaluation and saving (e.g. merge adapters). Default: nothing."""

    def options(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.name}({opts})" if opts else self.name


def auxiliary_groups(model: TransferModel, lr: float) -> list[dict[str, Any]]:
    """The parameter group of `model.auxiliary` (modules a strategy adds for training only), if any."""
    params = list(model.auxiliary.parameters())
    return [{"name": "auxiliary", "params": params, "lr": lr}] if params else []


def check_frozen_throughout(strategy: Strategy, model: TransferModel, cached: int, when: str) -> None:
    """Refuse a run in which a block whose outputs are cached trains or leaves eval mode.

    Caching is exact only if those blocks never change; a strategy that declares more in
    `frozen_throughout` than it keeps frozen would otherwise silently never train them.
    """
    for name in model.backbone.block_names[:cached]:
        block = model.backbone.blocks[name]
        if any(p.requires_grad for p in block.parameters()) or any(m.training for m in block.modules()):
            raise ConfigError(
                f"strategy {strategy.name!r} made block {name!r} trainable {when}, but declared it frozen for the "
                f"whole run (frozen_throughout), so its outputs were cached and it could not train; fix the "
                f"strategy's frozen_throughout, or run with cache off (--no-cache)"
            )


def freeze(backbone: Backbone, block_names: list[str]) -> None:
    """Stop gradients for the named blocks (their BatchNorm/dropout go to eval mode in `train_mode`)."""
    for name in block_names:
        for p in backbone.blocks[name].parameters():
            p.requires_grad_(False)


def register_strategy(name: str, *, order: float = DEFAULT_ORDER) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: register a Strategy subclass under `name`.

    `order` places it in listings (`list_strategies`, `transferlab strategies`, a comparison's
    default grid): lower first, ties by name. The from-scratch baseline is 0; the built-ins use
    10..110; a plug-in without one comes after them.
    """

    def decorator(cls: type[Strategy]) -> type[Strategy]:
        if name in _STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered (by {_STRATEGIES[name].__module__})")
        cls.name = name
        cls.order = float(order)
        _STRATEGIES[name] = cls
        return cls

    return decorator


def list_strategies() -> list[str]:
    """Registered strategy names in their declared order, the from-scratch baseline first.

    Examples:
        >>> list_strategies()[:5]
        ['scratch', 'full', 'partial', 'add-layers', 'linear-probe']
    """
    return sorted(_STRATEGIES, key=lambda n: (_STRATEGIES[n].order, n))


def strategy_class(name: str) -> type[Strategy]:
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; registered strategies are {list_strategies()}")
    return _STRATEGIES[name]


def strategy_options(name: str) -> list[dataclasses.Field]:
    """The option fields of a strategy's config (name, type, default, help)."""
    return list(dataclasses.fields(strategy_class(name).Config))


def create_strategy(name: str, **options: Any) -> Strategy:
    """Build a registered strategy with its options; options it doesn't have are refused.

    Examples:
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
