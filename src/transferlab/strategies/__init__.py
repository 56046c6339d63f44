"""Strategies: how a pretrained model is adapted. One registry; the from-scratch baseline is one too.

Every module in this folder is imported once (plugins.import_modules) and registers its strategies
with `@register_strategy`: adding a strategy is adding a file. Strategies of other installed packages
come from the `transferlab.strategies` entry-point group.
"""

from ..plugins import STRATEGY_GROUP, import_modules, load_entry_points
from .base import (
    Strategy,
    TrainingBatch,
    create_strategy,
    list_strategies,
    register_strategy,
    strategy_class,
    strategy_options,
)

import_modules(__name__, __path__)
load_entry_points(STRATEGY_GROUP)

__all__ = [
    "Strategy",
    "TrainingBatch",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "strategy_class",
    "strategy_options",
]
