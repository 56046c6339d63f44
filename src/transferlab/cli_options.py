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
from typing import Annotated, Any, Callable, Optional

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


def with_plugin_flags(kind: Kind, reserved: set[str] | None = None) -> Callable[[Callable], Callable]:
    """Decorate a command taking `plugin_flags: GivenFlags`: add one flag per plug-in option to its signature.

    `reserved`: flags the command already has (a plug-in option of that name gets only its qualified flag).
    """

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn, eval_str=True)  # real annotations (the module defers them)
        own = [p for p in signature.parameters.values() if p.name != "plugin_flags"]
        taken = set(reserved or ()) | {"--" + p.name.replace("_", "-") for p in own}
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
