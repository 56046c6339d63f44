"""Strategies: how a pretrained model is adapted. One registry; the from-scratch baseline is one too."""

from . import seed_strategies  # noqa: F401, I001  (register the built-in strategies: the baseline first)
from . import lora, rates, schedules, setfit  # noqa: F401, E402  (lora imports peft only when used)
from . import adabn, coral, dann, mmd, self_training, source_free  # noqa: F401, E402  (domain adaptation)
from .base import (
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
    strategy_class,
    strategy_options,
)

__all__ = [
    "Strategy",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "strategy_class",
    "strategy_options",
]
