"""JSON values: the one home of `to_jsonable`, used by every record, summary and report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Copy `obj` into plain JSON types: NaN/inf become None, numpy scalars and tuples become Python ones.

    Examples:
        >>> to_jsonable({"a": (np.float32(0.5), float("nan")), "b": np.arange(2)})
        {'a': [0.5, None], 'b': [0, 1]}
    """
    if isinstance(obj, Mapping):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj
