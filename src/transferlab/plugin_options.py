"""The options of every registered strategy and backbone, read from their config dataclasses.

One description serves the listings (`transferlab strategies` / `backbones`), the command line (each
field is a flag of the same name, `max_length` → `--max-length`) and text conversion. YAML files and
the Python API use the field names themselves (`strategy_options={"max_pairs": 640}`).

A field name that several plug-ins of one kind share (LoRA's `alpha` and L2-SP's `alpha`) also gets a
flag qualified by its plug-in (`--lora-alpha`, `--l2sp-alpha`); the plain flag still works wherever
only one of the chosen plug-ins takes it, and is refused, naming the qualified flags, where several do.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError

Kind = Literal["strategy", "backbone"]


@dataclass
class GivenFlags:
    """Plug-in options given on one command line: by plain flag (`--alpha`) or qualified flag (`--lora-alpha`)."""

    kind: Kind
    plain: dict[str, Any] = dataclasses.field(default_factory=dict)  # option name -> value
    qualified: dict[tuple[str, str], Any] = dataclasses.field(default_factory=dict)  # (plug-in, option) -> value

    def route(self, chosen: list[str], *, refuse_unknown: bool = False) -> dict[str, dict[str, Any]]:
        """{plug-in: {option: typed value}} for the chosen plug-ins (`assign_options`)."""
        return assign_options(self.kind, chosen, self.plain, self.qualified, refuse_unknown=refuse_unknown)

    def __bool__(self) -> bool:
        return bool(self.plain or self.qualified)


@dataclass(frozen=True)
class PluginOption:
    """One option of one plug-in: a field of its config dataclass."""

    kind: str
    owner: str
    name: str
    base: type  # int, float, bool, str
    is_list: bool
    optional: bool
    choices: tuple[str, ...] | None
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def qualified_flag(self) -> str:
        """`--<plug-in>-<option>`, the plug-in's name without dashes: `--l2sp-alpha`."""
        return f"--{self.owner.replace('-', '').replace('_', '')}-{self.name.replace('_', '-')}"

    @property
    def type_name(self) -> str:
        """The type as a user reads it: int, float, bool, text, `relu|tanh`, `int,...` for a list."""
        if self.choices:
            name = "|".join(self.choices)
        else:
            name = {int: "int", float: "float", bool: "bool", str: "text"}[self.base]
        return f"{name},..." if self.is_list else name

    def parse(self, text: Any) -> Any:
        """A value from the command line (text; lists comma-separated) as the field's type, or a clear error."""
        if not isinstance(text, str):
            return text
        parts = [p.strip() for p in text.split(",") if p.strip()] if self.is_list else [text]
        try:
            values = [self._one(p) for p in parts]
        except ValueError:
            example = {int: "3", float: "0.5", str: "name", bool: "true"}[self.base]
            raise ConfigError(
                f"{self.flag} of {self.kind} {self.owner!r} takes {'a comma-separated list of ' if self.is_list else ''}"
                f"{self.type_name.rstrip(',.')} value{'s' if self.is_list else ''}; got {text!r} "
                f"(e.g. {self.flag} {example + (',' + example if self.is_list else '')})"
            ) from None
        return values if self.is_list else values[0]

    def _one(self, text: str) -> Any:
        if self.choices and text not in self.choices:
            raise ValueError(text)
        if self.base is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if self.base is int:
            return int(text)
        return self.base(text)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "flag": self.flag, "type": self.type_name, "default": self.default,
                "help": self.help, "choices": list(self.choices) if self.choices else None}


def _field_type(hint: Any) -> tuple[type, bool, bool, tuple[str, ...] | None]:
    """(base type, is a list, may be None, choices) of a config field's annotation."""
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"config fields take one type (or it | None); got {hint}")
        hint, origin = args[0], typing.get_origin(args[0])
    is_list = origin in (list, tuple)
    if is_list:
        hint = typing.get_args(hint)[0] if typing.get_args(hint) else str
        origin = typing.get_origin(hint)
    choices = None
    if origin is Literal:
        choices = tuple(str(c) for c in typing.get_args(hint))
        hint = str
    if hint not in (int, float, bool, str):
        raise TypeError(f"config fields are int, float, bool, str, a Literal, or lists of them; got {hint}")
    return hint, is_list, optional, choices


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def config_options(kind: str, owner: str, config_cls: type) -> list[PluginOption]:
    """The options of one plug-in's config dataclass, in field order."""
    hints = typing.get_type_hints(config_cls)
    rows = []
    for f in dataclasses.fields(config_cls):
        base, is_list, optional, choices = _field_type(hints[f.name])
        rows.append(PluginOption(kind, owner, f.name, base, is_list, optional, choices, _default(f),
                                 f.metadata.get("help", "")))
    return rows


def plugin_options(kind: Kind) -> list[PluginOption]:
    """Every option of every registered strategy (or backbone), in listing order.

    Example:
        >>> [o.qualified_flag for o in plugin_options("strategy") if o.name == "alpha"]
        ['--lora-alpha', '--l2sp-alpha']
    """
    if kind == "strategy":
        from .strategies import list_strategies, strategy_class

        return [o for n in list_strategies() for o in config_options(kind, n, strategy_class(n).Config)]
    from .models import backbone_entry, list_backbones

    return [o for n in list_backbones() for o in config_options(kind, n, backbone_entry(n).config_cls)]


def shared_names(options: list[PluginOption]) -> set[str]:
    """Option names that several plug-ins take with different meanings (type, default or help): each
    of those also gets a flag qualified by its plug-in."""
    meanings: dict[str, set[tuple]] = {}
    for o in options:
        meanings.setdefault(o.name, set()).add((o.base, o.is_list, o.choices, repr(o.default), o.help))
    return {name for name, seen in meanings.items() if len(seen) > 1}


def assign_options(kind: Kind, chosen: list[str], plain: dict[str, Any], qualified: dict[tuple[str, str], Any],
                   all_options: list[PluginOption] | None = None, *, refuse_unknown: bool = False
                   ) -> dict[str, dict[str, Any]]:
    """Route given flag values to the chosen plug-ins: {plug-in: {option: value}}.

    `plain` maps option names given by their plain flag (`--alpha`) to values; `qualified` maps
    (plug-in, option) given by a qualified flag (`--lora-alpha`). A plain flag goes to every chosen
    plug-in that takes it, and is refused where several chosen ones take it with different meanings.
    A plain flag none of them takes is refused (with one chosen plug-in and not `refuse_unknown`, by
    its registry, which names the plug-ins that do take it).

    Example:
        >>> assign_options("strategy", ["lora", "partial"], {"alpha": "8", "freeze": "2"}, {})
        {'lora': {'alpha': 8.0}, 'partial': {'freeze': 2}}
    """
    options = all_options if all_options is not None else plugin_options(kind)
    by_owner: dict[str, dict[str, PluginOption]] = {}
    for o in options:
        by_owner.setdefault(o.owner, {})[o.name] = o
    routed: dict[str, dict[str, Any]] = {name: {} for name in chosen}
    for (owner, name), value in qualified.items():
        option = by_owner[owner][name]
        if owner not in routed:
            raise ConfigError(f"{option.qualified_flag} is an option of {kind} {owner!r}, which is not chosen here "
                              f"({', '.join(chosen)}); drop it, or choose {owner!r}")
        routed[owner][name] = option.parse(value)
    for name, value in plain.items():
        takers = [c for c in chosen if name in by_owner.get(c, {})]
        if len(takers) > 1 and shared_names([by_owner[t][name] for t in takers]):
            flags = " or ".join(by_owner[t][name].qualified_flag for t in takers)
            raise ConfigError(f"--{name.replace('_', '-')} is ambiguous: it is an option of {kind}s "
                              f"{', '.join(repr(t) for t in takers)}, with different meanings; say which: {flags}")
        if not takers and (len(chosen) > 1 or refuse_unknown):
            raise ConfigError(f"--{name.replace('_', '-')} applies to no {kind} in {chosen}")
        if not takers:  # the registry refuses it, naming the plug-ins that take it
            routed[chosen[0]][name] = value
            continue
        for t in takers:
            routed[t][name] = by_owner[t][name].parse(value)
    return routed


def option_flags(option: PluginOption, shared: set[str], reserved: set[str] = frozenset()) -> list[str]:
    """The flags that set an option: its plain flag (unless a command uses that name) and, for a name
    several plug-ins share (or a reserved one), the flag qualified by its plug-in."""
    flags = [] if option.flag in reserved else [option.flag]
    if option.name in shared or option.flag in reserved:
        flags.append(option.qualified_flag)
    return flags


def describe_plugins(kind: Kind, reserved: set[str] = frozenset()) -> list[dict[str, Any]]:
    """Every registered strategy (or backbone) with its summary and options, as the listings print them.

    A strategy row: {"name", "summary", "options": [{"name", "flag", "flags", "type", "default", "help",
    "choices"}]}. A backbone row: {"name", "summary", "options": {name: default}, "fields": [the same
    option rows]}.
    """
    options = plugin_options(kind)
    shared = shared_names(options)
    rows = []
    if kind == "strategy":
        from .strategies import list_strategies, strategy_class

        names, summary = list_strategies(), lambda n: strategy_class(n).summary
    else:
        from .models import backbone_summary, list_backbones

        names, summary = list_backbones(), backbone_summary
    for name in names:
        fields = [o.to_json() | {"flags": option_flags(o, shared, reserved)} for o in options if o.owner == name]
        if kind == "strategy":
            rows.append({"name": name, "summary": summary(name), "options": fields})
        else:
            rows.append({"name": name, "summary": summary(name), "options": {f["name"]: f["default"] for f in fields},
                         "fields": fields})
    return rows
