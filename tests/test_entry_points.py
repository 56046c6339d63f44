"""Plug-ins of other installed packages register through the entry-point groups; a broken one only warns."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

import transferlab.plugins as plugins
from transferlab.strategies import base, list_strategies


def test_entry_point_plugins_register_and_broken_ones_warn(tmp_path, monkeypatch):
    (tmp_path / "ext_strategy.py").write_text(
        "from transferlab.strategies.base import Strategy, register_strategy\n\n"
        "@register_strategy('ext-full', order=1)\n"
        "class ExtFull(Strategy):\n"
        "    '''Full fine-tuning, from another package.'''\n"
        "    summary = 'an external strategy'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [EntryPoint("ext-full", "ext_strategy", plugins.STRATEGY_GROUP),
             EntryPoint("broken", "no_such_module_here", plugins.STRATEGY_GROUP)]
    monkeypatch.setattr(plugins, "entry_points", lambda group: [e for e in found if e.group == group])
    try:
        with pytest.warns(UserWarning, match=r"transferlab plug-in 'broken' \(no_such_module_here, entry-point group "
                                             r"transferlab.strategies\) failed to load: ModuleNotFoundError"):
            loaded = plugins.load_entry_points(plugins.STRATEGY_GROUP)
        assert loaded == ["ext-full"]
        assert list_strategies()[:2] == ["scratch", "ext-full"]  # its declared order, not when it was imported
    finally:
        base._STRATEGIES.pop("ext-full", None)
        sys.modules.pop("ext_strategy", None)
