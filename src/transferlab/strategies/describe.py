"""A one-line description and the options of every registered strategy."""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import list_strategies, strategy_class


def describe_strategies() -> list[dict[str, Any]]:
    rows = []
    for name in list_strategies():
        cls = strategy_class(name)
        options = []
        for f in dataclasses.fields(cls.Config):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            options.append({"name": f.name, "default": default, "help": f.metadata.get("help", "")})
        rows.append({"name": name, "summary": cls.summary, "options": options})
    return rows
