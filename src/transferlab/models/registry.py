"""One registry, one factory: `create_backbone(name, ...)`, `list_backbones()` (after timm's create_model)."""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Callable

from ..data.task import InputSpec
from ..errors import ConfigError
from .backbone import Backbone

_BACKBONES: dict[str, tuple[type, Callable[..., Backbone], str]] = {}
_LOADED_FROM_FILES: set[str] = set()  # backbones whose size a weights folder sets, not their options


def register_backbone(name: str, config_cls: type, summary: str, *, sized_by_options: bool = True) -> Callable:
    """Register `fn(config, input_spec) -> Backbone` under `name`, with its typed config dataclass.

    `sized_by_options` (the default): the options alone set the parameter count, so `create_backbone`
    builds it on the meta device first and refuses one above the parameter limit before allocating.
    """

    def decorator(fn: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        _BACKBONES[name] = (config_cls, fn, summary)
        if not sized_by_options:
            _LOADED_FROM_FILES.add(name)
        return fn

    return decorator


def list_backbones(pattern: str = "*") -> list[str]:
    """Names of registered backbones matching a glob pattern.

    Example:
        >>> list_backbones()
        ['cnn', 'mlp']
    """
    return sorted(n for n in _BACKBONES if fnmatch.fnmatch(n, pattern))


def backbone_summary(name: str) -> str:
    return _BACKBONES[name][2]


def backbone_config_class(name: str) -> type:
    """The config dataclass of a registered backbone (its fields are the accepted options)."""
    _check_name(name)
    return _BACKBONES[name][0]


def _check_name(name: str) -> None:
    if name not in _BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; registered backbones are {list_backbones()}")


def create_backbone(name: str, input_spec: InputSpec | tuple[int, ...], **config: Any) -> Backbone:
    """Build a registered backbone for inputs of `input_spec`, with randomly initialised weights.

    Unknown options are refused (not ignored), naming the options the backbone accepts.

    Example:
        >>> bb = create_backbone("mlp", (1, 28, 28), hidden=[128], activation="relu", dropout=0.2)
        >>> bb.feature_dim
        128
    """
    _check_name(name)
    config_cls, fn, _ = _BACKBONES[name]
    allowed = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ConfigError(f"backbone {name!r} has no option(s) {unknown}; its options are {sorted(allowed)}")
    if not isinstance(input_spec, InputSpec):
        shape = tuple(int(s) for s in input_spec)
        input_spec = InputSpec("image" if len(shape) == 3 else "vector", shape)
    cfg = config_cls(**config)
    if name not in _LOADED_FROM_FILES:
        _check_size(name, fn, cfg, input_spec)
    backbone = fn(cfg, input_spec)
    backbone.spec = {"name": name, "config": dataclasses.asdict(cfg)}
    return backbone


def _check_size(name: str, fn: Callable[..., Backbone], cfg: Any, input_spec: InputSpec) -> None:
    """Build the backbone on the meta device (no memory) and refuse it above the parameter limit.

    A config.json or option asking for hidden size 10**30 ends here in one line, not in C++ frames.
    """
    import torch

    from ..limits import check_limit

    options = dataclasses.asdict(cfg)
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in fn(cfg, input_spec).parameters())
    except ConfigError:
        raise
    except (RuntimeError, OverflowError, ValueError, TypeError, MemoryError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"backbone {name!r} with options {options} for {input_spec.describe()}s cannot be built "
                          f"({reason}); use smaller sizes (e.g. hidden=[128])") from None
    check_limit("parameters", count, what=f"backbone {name!r} with options {options}",
                fix="use smaller sizes (e.g. hidden=[128])", error=ConfigError)
