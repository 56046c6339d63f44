"""One registry, one factory: `create_backbone(name, ...)`, `list_backbones()` (after timm's create_model).

Everything particular to one backbone is a property of its registry entry, never a name test elsewhere:
its config dataclass (the options the CLI, YAML and the API accept), whether its weights come from a
folder named in its config (`folder_based`: config.json holds no sizes to check), and a reference
prefix that names it with its main option (`ref_prefix="hf:"`, `ref_option="path"`: `hf:/models/x` is
`create_backbone("hf", path="/models/x")`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any, Callable

from ..data.task import InputSpec
from ..errors import ConfigError
from .backbone import Backbone


@dataclasses.dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its name, config dataclass, builder and properties."""

    name: str
    config_cls: type
    build: Callable[..., Backbone]
    summary: str
    folder_based: bool = False  # built from a model folder named in its config (sizes are not in config.json)
    ref_prefix: str | None = None  # "hf:" — a reference `hf:VALUE` means this backbone with ref_option=VALUE
    ref_option: str | None = None
    inputs: tuple[str, ...] = ("image", "vector")  # the kinds of input it takes (InputSpec.kind)
    # Options of a tiny instance (conformance tests, examples), given a scratch folder it may write to.
    tiny: Callable[[Path], dict[str, Any]] | None = None
    # Pretrained weights an installed package ships: where they come from (the model card's origin). The name is
    # then also a model reference (`transferlab finetune minilm ...`), written into the store on first use.
    packaged: str | None = None
    # How the store writes them, as "module:function" (resolved when used, so models/ imports nothing above it):
    # `function(dest, also_write) -> Path`. None: the backbone built with its default options is the model.
    packaged_writer: str | None = None
    base_model: str | None = None  # the original weights' Hugging Face Hub id (model cards' `base_model`)
    # For a reference (`hf:/path`, `timm:NAME`): how the store writes what it names, as "module:function"
    # taking (the reference's value, the store root) and returning the model folder.
    ref_writer: str | None = None

    def tiny_options(self, scratch: Path) -> dict[str, Any]:
        return self.tiny(scratch) if self.tiny is not None else {}


_BACKBONES: dict[str, BackboneEntry] = {}


def register_backbone(name: str, config_cls: type, summary: str, *, folder_based: bool = False,
                      ref_prefix: str | None = None, ref_option: str | None = None,
                      inputs: tuple[str, ...] = ("image", "vector"),
                      tiny: Callable[[Path], dict[str, Any]] | None = None, packaged: str | None = None,
                      packaged_writer: str | None = None, base_model: str | None = None,
                      ref_writer: str | None = None) -> Callable:
    """Register `fn(config, input_spec) -> Backbone` under `name`, with its typed config dataclass.

    The keyword arguments are the entry's properties (see BackboneEntry): `inputs` the kinds of
    input it takes, `tiny(scratch)` the options of a tiny instance for the conformance suite.

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class TinyConfig:
        ...     width: int = 8
        >>> @register_backbone("tiny-doc", TinyConfig, "a doc example")
        ... def tiny(cfg, input_spec):
        ...     from transferlab.models import wrap_module
        ...     import torch
        ...     return wrap_module(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(cfg.width)), input_shape=input_spec.shape)
        >>> "tiny-doc" in list_backbones()
        True
        >>> unregister_backbone("tiny-doc")
    """
    if (ref_prefix is None) != (ref_option is None):
        raise ValueError("ref_prefix and ref_option go together")
    if packaged_writer is None and packaged is not None and "text" not in inputs:
        raise ValueError("packaged weights of a backbone without text inputs need a packaged_writer (how to store them)")
    if ref_option is not None and ref_option not in {f.name for f in dataclasses.fields(config_cls)}:
        raise ValueError(f"ref_option {ref_option!r} is not a field of {config_cls.__name__}")

    def decorator(fn: Callable[..., Backbone]) -> Callable[..., Backbone]:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered (by {_BACKBONES[name].build.__module__})")
        _BACKBONES[name] = BackboneEntry(name, config_cls, fn, summary, folder_based, ref_prefix, ref_option,
                                         tuple(inputs), tiny, packaged, packaged_writer, base_model, ref_writer)
        return fn

    return decorator


# Optional backbones whose library is not installed: name → (reference prefix, why not, `retry()` that registers
# the entry if the library has become importable since and says whether it did).
_UNAVAILABLE: dict[str, tuple[str, str, Callable[[], bool]]] = {}


def mark_unavailable(name: str, prefix: str, message: str, retry: Callable[[], bool]) -> None:
    """An optional backbone (`timm:NAME`) whose library is missing: using it raises `message`, unless `retry()`
    finds the library and registers the entry (a library installed, or injected, after transferlab was imported)."""
    _UNAVAILABLE[name] = (prefix, message, retry)


def _available(name: str) -> None:
    prefix, message, retry = _UNAVAILABLE[name]
    if not retry():
        raise ConfigError(message)
    _UNAVAILABLE.pop(name, None)


def unregister_backbone(name: str) -> None:
    """Remove a registered backbone (tests and interactive sessions)."""
    _BACKBONES.pop(name, None)


def list_backbones(pattern: str = "*") -> list[str]:
    """Names of registered backbones matching a glob pattern, in name order.

    Examples:
        >>> [n for n in list_backbones() if n in ("cnn", "mlp")]
        ['cnn', 'mlp']
    """
    return sorted(n for n in _BACKBONES if fnmatch.fnmatch(n, pattern))


def backbone_entry(name: str) -> BackboneEntry:
    """The registry entry of a backbone (its config class and properties)."""
    _check_name(name)
    return _BACKBONES[name]


def packaged_backbones() -> dict[str, str]:
    """Registered backbones whose pretrained weights ship in an installed package: name → where they come from."""
    return {n: e.packaged for n, e in sorted(_BACKBONES.items()) if e.packaged}


def backbone_summary(name: str) -> str:
    return backbone_entry(name).summary


def backbone_config_class(name: str) -> type:
    """The config dataclass of a registered backbone (its fields are the accepted options)."""
    return backbone_entry(name).config_cls


def resolve_backbone_ref(ref: str, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """A backbone reference as (registered name, options): `hf:/path` → ("hf", {"path": "/path"}).

    Examples:
        >>> resolve_backbone_ref("hf:/models/bert", {"max_length": 32})
        ('hf', {'path': '/models/bert', 'max_length': 32})
        >>> resolve_backbone_ref("cnn")
        ('cnn', {})
    """
    for name, (prefix, _, _) in list(_UNAVAILABLE.items()):
        if ref.startswith(prefix):
            _available(name)
    for entry in _BACKBONES.values():
        if entry.ref_prefix and ref.startswith(entry.ref_prefix):
            return entry.name, {entry.ref_option: ref[len(entry.ref_prefix):]} | dict(options or {})
    return ref, dict(options or {})


def _check_name(name: str) -> None:
    if name not in _BACKBONES and name in _UNAVAILABLE:
        _available(name)
    if name not in _BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; registered backbones are {list_backbones()}")


def create_backbone(name: str, input_spec: InputSpec | tuple[int, ...], **config: Any) -> Backbone:
    """Build a registered backbone for inputs of `input_spec`, with randomly initialised weights.

    Unknown options are refused (not ignored), naming the options the backbone accepts.

    Examples:
        >>> bb = create_backbone("mlp", (1, 28, 28), hidden=[128], activation="relu", dropout=0.2)
        >>> bb.feature_dim
        128
    """
    entry = backbone_entry(name)
    allowed = {f.name for f in dataclasses.fields(entry.config_cls)}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ConfigError(f"backbone {name!r} has no option(s) {unknown}; its options are {sorted(allowed)}")
    if not isinstance(input_spec, InputSpec):
        shape = tuple(int(s) for s in input_spec)
        input_spec = InputSpec("image" if len(shape) == 3 else "vector", shape)
    cfg = entry.config_cls(**config)
    if not entry.folder_based:  # a folder's weights set its size, not its options
        _check_size(name, entry.build, cfg, input_spec)
    backbone = entry.build(cfg, input_spec)
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
