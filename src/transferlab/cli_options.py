"""Command-line flags generated from the plug-ins' config dataclasses (no flag is written by hand per plug-in).

`with_plugin_flags("strategy")` adds to a command one flag per strategy option (`--freeze`,
`--max-pairs`, ...) and a qualified flag for every name several strategies share (`--lora-alpha`,
`--l2sp-alpha`), each with its real type, default and help, in its own `--help` panel. The command
receives what was given as `plugin_flags: GivenFlags`, and `GivenFlags.route(chosen)` hands each value
to the chosen plug-ins (plugin_options.assign_options).
"""

from __future__ import annotations

import enum
import functools
import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Optional

import typer

from .plugin_options import GivenFlags, Kind, PluginOption, option_flags, plugin_options, shared_names

PANELS = {"strategy": "Strategy options", "backbone": "Backbone options"}
# Flags the commands taking plug-in flags use themselves, by kind (filled as the commands are declared)
RESERVED: dict[str, set[str]] = {"strategy": set(), "backbone": set()}


@dataclass
class _Flag:
    param: str  # the Python parameter name in the generated signature
    flag: str
    options: list[PluginOption]  # one (a qualified flag) or every plug-in taking this name (a plain flag)
    qualified: bool


def _flags(kind: Kind, reserved: set[str]) -> list[_Flag]:
    options = plugin_options(kind)
    shared = shared_names(options)
    plain: dict[str, list[PluginOption]] = {}
    flags = []
    for o in options:
        for flag in option_flags(o, shared, reserved):
            if flag == o.flag:
                plain.setdefault(o.name, []).append(o)
            else:
                ident = "".join(c if c.isalnum() else "_" for c in o.owner)
                flags.append(_Flag(f"plugin_q_{ident}__{o.name}", flag, [o], True))
    flags += [_Flag(f"plugin_p__{name}", opts[0].flag, opts, False) for name, opts in plain.items()]
    return sorted(flags, key=lambda f: f.flag)


def _help(options: list[PluginOption]) -> str:
    parts = [f"{o.owner}: {o.help or o.name} (default {o.default})" for o in options]
    return "; ".join(parts)


def _annotation(flag: _Flag, panel: str) -> Any:
    """The typer annotation of one generated flag: its real type where every taker agrees, else text."""
    options = flag.options
    kinds = {(o.base, o.is_list, o.choices) for o in options}
    base, is_list, choices = next(iter(kinds))
    help_text = _help(options)
    if len(kinds) == 1 and not is_list:
        if base is bool:
            name = flag.flag[2:]
            return Annotated[Optional[bool], typer.Option(f"--{name}/--no-{name}", help=help_text, rich_help_panel=panel)]
        if choices:
            choice = enum.Enum(f"{flag.param}_choice", {c: c for c in choices}, type=str)  # typer lists the choices
            return Annotated[Optional[choice], typer.Option(flag.flag, help=help_text, rich_help_panel=panel)]
        return Annotated[Optional[base], typer.Option(flag.flag, help=help_text, rich_help_panel=panel)]
    metavar = " | ".join(sorted({o.type_name.upper() for o in options}))
    return Annotated[Optional[str], typer.Option(flag.flag, help=help_text, metavar=metavar, rich_help_panel=panel)]


def _flag_names(param: inspect.Parameter) -> set[str]:
    """The flags a command parameter is spelled as: those its typer.Option declares, else --its-name."""
    import typing

    declared = []
    for meta in getattr(param.annotation, "__metadata__", ()):
        first = getattr(meta, "default", None)  # in Annotated, typer.Option("--name") holds its first name here
        declared += [*([first] if isinstance(first, str) and first.startswith("-") else []),
                     *(getattr(meta, "param_decls", None) or ())]
    if typing.get_origin(param.annotation) is not Annotated or not declared:
        return {"--" + param.name.replace("_", "-")}
    return {flag for d in declared for flag in d.split("/") if flag.startswith("--")}


def with_plugin_flags(kind: Kind, reserved: set[str] | None = None) -> Callable[[Callable], Callable]:
    """Decorate a command taking `plugin_flags: GivenFlags`: add one flag per plug-in option to its signature.

    `reserved`: flags the command already has (a plug-in option of that name gets only its qualified flag).
    """

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)  # real annotations (the module defers them)
        own = [p for p in signature.parameters.values() if p.name != "plugin_flags"]
        taken = set(reserved or ()) | {flag for p in own for flag in _flag_names(p)}
        RESERVED[kind] |= taken
        flags = _flags(kind, taken)
        panel = PANELS[kind]
        extra = [inspect.Parameter(f.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_annotation(f, panel))
                 for f in flags]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = GivenFlags(kind)
            for f in flags:
                value = kwargs.pop(f.param, None)
                if value is None:
                    continue
                value = value.value if isinstance(value, enum.Enum) else value
                if f.qualified:
                    given.qualified[(f.options[0].owner, f.options[0].name)] = value
                else:
                    given.plain[f.options[0].name] = value
            return fn(*args, plugin_flags=given, **kwargs)

        hints = dict(getattr(fn, "__annotations__", {}))
        hints.pop("plugin_flags", None)
        command.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        command.__annotations__ = hints | {p.name: p.annotation for p in extra}
        return command

    return decorate


# Data flags: generated from DataOptions' fields, one flag each, in the Data panel.
@dataclass(frozen=True)
class DataFlags:
    """Which DataOptions fields a command takes as flags, and why it leaves out the others."""

    command: str
    fields: tuple[str, ...]
    omitted: dict[str, str]  # field → why the command has no flag for it
    recorded: bool  # defaults come from elsewhere (a model folder, a --config file): flags default to None


DATA_COMMANDS: dict[str, DataFlags] = {}  # command function name → its data flags (filled as commands are declared)


def _data_annotation(f: Any, hint: Any, default: Any, note: str) -> Any:
    """The typer annotation of one DataOptions field: its real type (choices for a Literal), its help."""
    import typing

    base = f.metadata.get("cli_type")
    if base is None:
        args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is not Literal else []
        base = args[0] if args and typing.get_origin(hint) is not Literal else hint
    help_text = f.metadata.get("help", f.name) + note
    flag = "--" + f.name.replace("_", "-")
    if typing.get_origin(base) is Literal:
        choices = typing.get_args(base)
        base = enum.Enum(f"data_{f.name}_choice", {c: c for c in choices}, type=str)  # typer lists the choices
    if default is None:
        base = Optional[base]
    return Annotated[base, typer.Option(flag, help=help_text, rich_help_panel="Data")]


def with_data_flags(*only: str, omit: dict[str, str] | None = None, recorded: str | None = None,
                    ) -> Callable[[Callable], Callable]:
    """Decorate a command taking `data_options`: add one flag per DataOptions field (names, types, defaults, help).

    `only`: the fields the command takes (default: all but those in `omit`); every field left out needs a
    reason in `omit` (field → why), so a new DataOptions field is a flag of every command unless one says why not.
    The command receives `data_options: DataOptions`, or, with `recorded` (where the defaults come from
    — a model folder, a config file — said in each flag's help), `data_options: dict` of the flags given.
    """
    from dataclasses import MISSING, fields

    from .data.options import DataOptions

    all_fields = {f.name: f for f in fields(DataOptions)}
    chosen = only or tuple(name for name in all_fields if name not in (omit or {}))
    left = set(all_fields) - set(chosen)
    if left != set(omit or {}):  # a new DataOptions field needs a decision in every command
        raise TypeError(f"data fields {sorted(left)} need a reason in omit=...; got {sorted(omit or {})}")

    def decorate(fn: Callable) -> Callable:
        import typing

        hints = typing.get_type_hints(DataOptions)
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "data_options"]
        extra = []
        for name in chosen:
            f = all_fields[name]
            default = None if recorded else (f.default if f.default is not MISSING else None)
            shown = f" (default: {recorded})" if recorded else ""
            extra.append(inspect.Parameter(f"data__{name}", inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=_data_annotation(f, hints[name], default, shown)))
        DATA_COMMANDS[fn.__name__] = DataFlags(fn.__name__, tuple(chosen), dict(omit or {}), recorded is not None)

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {}
            for name in chosen:
                value = kwargs.pop(f"data__{name}", None)
                given[name] = value.value if isinstance(value, enum.Enum) else value
            if recorded:
                return fn(*args, data_options={k: v for k, v in given.items() if v is not None}, **kwargs)
            return fn(*args, data_options=DataOptions(**given), **kwargs)

        annotations = dict(getattr(fn, "__annotations__", {}))
        annotations.pop("data_options", None)
        command.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        command.__annotations__ = annotations | {p.name: p.annotation for p in extra}
        return command

    return decorate
