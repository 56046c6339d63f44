"""`pretrain`, `finetune` and `compare` with `--env`: the RL forms of the commands (see rl/cli.py).

The CLI group sends a command line that names an environment to the RL command of the same name, so
the data commands keep their options and the RL ones have theirs. Imports only typer.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

RL_COMMANDS = ("pretrain", "finetune", "compare")


def names_env(args: list[str]) -> bool:
    return any(a == "--env" or a.startswith("--env=") for a in args)


class TaskKindGroup(TyperGroup):
    """A typer group whose `pretrain`/`finetune`/`compare` run the RL command when `--env` is given."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] in RL_COMMANDS and names_env(args[1:]):
            from .cli import rl_command

            return args[0], rl_command(args[0]), args[1:]
        return super().resolve_command(ctx, args)
