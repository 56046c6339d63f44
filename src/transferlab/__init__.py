"""transferlab: a transfer-learning workbench for PyTorch.

Pretrain a backbone on a source task, adapt it to a small target task with any strategy, and
measure honestly against training from scratch. Importing this package is cheap: torch and the
rest load on first use of an attribute below.

Example:
    >>> import transferlab
    >>> transferlab.pretrain("mnist5k", classes="0-4", out="models/src")  # doctest: +SKIP
    >>> transferlab.finetune("models/src", "digits", strategy="partial",
    ...                      strategy_options={"freeze": 2}, shots=10, image_size=28, image_margin=4)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access, PEP 562)
_LAZY = {
    "pretrain": "transferlab.api",
    "finetune": "transferlab.api",
    "evaluate": "transferlab.api",
    "predict": "transferlab.api",
    "load": "transferlab.api",
    "PretrainResult": "transferlab.api",
    "FinetuneResult": "transferlab.api",
    "EvalResult": "transferlab.api",
    "demo": "transferlab.demo",
    "TrainConfig": "transferlab.engine",
    "create_backbone": "transferlab.models",
    "list_backbones": "transferlab.models",
    "register_backbone": "transferlab.models",
    "wrap_module": "transferlab.models",
    "create_strategy": "transferlab.strategies",
    "list_strategies": "transferlab.strategies",
    "register_strategy": "transferlab.strategies",
    "Strategy": "transferlab.strategies",
    "load_task": "transferlab.data",
    "split_task": "transferlab.data",
    "list_datasets": "transferlab.data",
    "list_models": "transferlab.artifacts",
    "rank": "transferlab.analysis",
    "advise": "transferlab.analysis",
    "explain": "transferlab.analysis",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
