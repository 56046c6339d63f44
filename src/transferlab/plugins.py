"""Plug-in discovery: every module of `strategies/` and `models/` registers itself; other packages use entry points.

Adding a strategy or a backbone is one new file: the package imports each of its modules once (in
name order, so the result never depends on who imported what first), and each module's
`@register_strategy` / `@register_backbone` decorators do the rest. Where a plug-in appears in a
listing is declared by the plug-in (`order=`), not by import order.

A plug-in living in another installed package registers through an entry-point group
(`transferlab.strategies` or `transferlab.backbones`) in its own `pyproject.toml`:

    [project.entry-points."transferlab.strategies"]
    my-strategy = "my_package.my_strategy"

Loading the entry point imports that module (its decorator registers it). A plug-in that fails to
import is reported as a warning naming it, and the built-in plug-ins keep working.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Iterable
from importlib.metadata import entry_points

STRATEGY_GROUP = "transferlab.strategies"
BACKBONE_GROUP = "transferlab.backbones"


def import_modules(package: str, path: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Import every module of a package (not those named in `skip` or starting with `_`), in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(path)))
    imported = []
    for name in names:
        if name.startswith("_") or name in set(skip):
            continue
        importlib.import_module(f"{package}.{name}")
        imported.append(name)
    return imported


def load_entry_points(group: str) -> list[str]:
    """Import the modules that installed packages declare in an entry-point group; warn about broken ones."""
    loaded = []
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001 — a broken third-party plug-in must not break the built-ins
            warnings.warn(f"transferlab plug-in {ep.name!r} ({ep.value}, entry-point group {group}) failed to load: "
                          f"{type(err).__name__}: {err}; it is skipped", stacklevel=2)
            continue
        loaded.append(ep.name)
    return loaded
