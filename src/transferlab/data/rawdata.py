"""A dataset as one reader returns it, before labels are encoded, classes selected and splits made."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from transferlab.errors import DataError

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class RawData:
    """Inputs and labels exactly as a reader found them, plus the dataset's own test split if any.

    Image inputs are (N, C, H, W); text inputs are (N,) object arrays of str; `scale` is None until they are scaled to [0, 1] (readers of
    image files scale as they read and say how). `framed` is True when a reader already applied
    image_size/image_margin (image folders must, because their images may differ in size).
    """

    x: np.ndarray
    y: np.ndarray  # int64 or str labels, already checked by labels.normalize_labels
    kind: Literal["image", "vector", "text"]
    source: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    scale: str | None = None
    scale_divisor: float | None = None
    framed: bool = False
    x_names: tuple[str, str] = ("x", "x_test")  # how error messages name the input arrays

    @property
    def has_own_test(self) -> bool:
        return self.x_test is not None


def check_same_length(source: str, x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> None:
    """Raise DataError when inputs and labels have a different number of rows."""
    if len(x) != len(y):
        raise DataError(
            f"{source}: '{x_name}' has {len(x)} rows but '{y_name}' has {len(y)}; "
            f"every example needs exactly one label, so both arrays must have the same length"
        )


def check_finite(source: str, x: np.ndarray, name: str) -> None:
    """Raise DataError naming the first NaN/Inf entry of a float array, or one beyond float32's range.

    Inputs become float32 for training: a value such as 1e39 would overflow to inf there, so it is
    refused here, at load, naming the file and the row (not later, as a diverged training run).
    """
    if not np.issubdtype(x.dtype, np.floating):
        return
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(x)
        if x.dtype.itemsize > 4:
            bad |= np.abs(x) > _FLOAT32_MAX
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"{name}[{', '.join(str(i) for i in index)}]"
        value = x[index]
        rule = "finite numbers" if not np.isfinite(value) else f"finite numbers within float32's range (±{_FLOAT32_MAX:.4g})"
        raise DataError(
            f"{source}: {where} is {value} (row {index[0]}); inputs must be {rule}. "
            f"Remove or fill the rows with NaN/Inf values (or rescale the data) before loading"
        )


def check_not_empty(source: str, x: np.ndarray, name: str) -> None:
    """Raise DataError when an array holds no examples."""
    if len(x) == 0:
        raise DataError(f"{source}: '{name}' holds no examples (empty dataset); give at least one example per class")


def check_unique_header(path: object, header: list[str]) -> None:
    """Raise DataError when a CSV header names a column twice (one of two `label` columns would become a feature)."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(
                f"{path}: line 1 (header) names column {name!r} twice (columns {seen[name] + 1} and {i + 1}); "
                f"every column needs its own name. Rename or drop one of them"
            )
        seen[name] = i
