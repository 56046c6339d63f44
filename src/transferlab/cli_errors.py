"""How a command fails or is interrupted: a user's error as one line (exit 2), Ctrl-C with how to continue.

Apart from cli.py so that the RL commands (rl/cli.py), which cli.py dispatches to, share it without a cycle.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import typer

from .errors import TransferlabError


def _friendly(fn: Callable) -> Callable:
    """Print a user's error as one line on stderr (exit 2) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TransferlabError as err:
            from .failures import debug_enabled, flat

            if debug_enabled():
                import traceback

                traceback.print_exc()
            rank = os.environ.get("RANK", "0")  # a process of a data-parallel run other than rank 0 says which
            typer.echo(f"error: {flat(str(err))}" if rank == "0" else f"error (rank {rank}): {flat(str(err))}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo(_interrupted_message(kwargs.get("ctx")), err=True)
            raise typer.Exit(130) from None

    return wrapper


def _interrupted_message(ctx: typer.Context | None) -> str:
    """What Ctrl-C leaves and the exact command that continues it (pretrain/finetune: with --resume)."""
    import shlex

    name = ctx.info_name if ctx is not None else None
    if name not in ("pretrain", "finetune", "compare"):
        return "interrupted"
    argv = ["transferlab", *_command_line(ctx)]
    if name == "compare":
        return f"interrupted; finished runs are kept in --out. Continue with the same command: {shlex.join(argv)}"
    out = ctx.params.get("out")
    if out is None:
        return ("interrupted; nothing was saved (finetune without --out keeps no checkpoint). Run with --out DIR "
                "to save the model and be able to resume with --resume")
    if "--resume" not in argv:
        argv.append("--resume")
    return f"interrupted; the last checkpoint is in {out}. Continue with: {shlex.join(argv)}"


def _command_line(ctx: typer.Context) -> list[str]:
    """The command and the options given on the command line, rebuilt from the parsed parameters."""
    argv = [ctx.info_name or ""]
    for param in ctx.command.params:
        if param.name == "nproc":  # the workers know from torchrun; torchrun's own parser would take it as --nproc-per-node
            continue
        value = ctx.params.get(param.name)
        if param.param_type_name == "argument":
            argv.append(str(value))
            continue
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name == "DEFAULT" or value is None:
            continue
        if getattr(param, "is_flag", False):
            if value:
                argv.append(param.opts[0])
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
        else:
            argv += [param.opts[0], str(getattr(value, "value", value))]  # a choice: its text, not the enum's name
    return argv
