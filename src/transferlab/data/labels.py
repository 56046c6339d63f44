"""Labels: integers or class names in, int64 indices 0..C-1 and sorted class names out."""

from __future__ import annotations

from typing import Callable

import numpy as np

from transferlab.errors import DataError

_RULE = "labels must be non-negative whole numbers (0, 1, 2, …) or class names (strings)"


def normalize_labels(
    y: np.ndarray, *, source: str, name: str, locate: Callable[[int], str] | None = None
) -> np.ndarray:
    """Return labels as an int64 array (whole numbers) or a str array (class names).

    Strings that all parse as whole numbers (as read from a CSV) count as integers.
    `locate(i)` names row i for error messages (default "name[i]"), e.g. "line 14, column 'label'".
    """
    locate = locate or (lambda i: f"{name}[{i}]")
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: labels must be a 1-D array of shape (N,); '{name}' has shape {y.shape}")
    if y.dtype.kind in "USO":
        values = [str(v).strip() for v in y]
        numbers = [_as_number(v) for v in values]
        if all(n is not None for n in numbers):
            return _whole_numbers(np.asarray(numbers, dtype=np.float64), values, source, locate)
        for i, v in enumerate(values):
            if v == "":
                raise DataError(f"{source}: {_RULE}; {locate(i)} is empty. Give every example a label")
        return np.asarray(values, dtype=str)
    if y.dtype.kind in "iuf":
        return _whole_numbers(y.astype(np.float64), y.tolist(), source, locate)
    raise DataError(f"{source}: {_RULE}; '{name}' has dtype {y.dtype}. Save the labels as integers or strings")


def numeric_targets(
    y: np.ndarray, *, source: str, name: str, locate: Callable[[int], str] | None = None
) -> np.ndarray:
    """Return numeric (regression) targets as float32 (N,), refusing text and non-finite values."""
    locate = locate or (lambda i: f"{name}[{i}]")
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: numeric targets must be a 1-D array of shape (N,); '{name}' has shape {y.shape}")
    values = [str(v).strip() for v in y] if y.dtype.kind in "USO" else y.tolist()
    numbers = np.array([_as_number(str(v)) if isinstance(v, str) else float(v) for v in values], dtype=object)
    for i, v in enumerate(numbers):
        if v is None or not np.isfinite(v) or abs(v) > np.finfo(np.float32).max:
            raise DataError(
                f"{source}: numeric targets must be finite numbers; {locate(i)} is {values[i]!r}. "
                f"Fix that value, or drop --target numeric if the labels are classes"
            )
    return numbers.astype(np.float32)


def _as_number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


# Class numbers beyond 2**53 are not exact in float64 (two labels could become one); none is that large.
_MAX_LABEL = 2.0**53


def _whole_numbers(y: np.ndarray, shown: list, source: str, locate: Callable[[int], str]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(y) | (y < 0) | (y != np.round(y)) | (y > _MAX_LABEL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: {_RULE}; {locate(i)} is {shown[i]!r}. "
            f"Fix that label, or use class names (strings) if the labels are not class numbers"
        )
    return y.astype(np.int64)


def encode_labels(*label_arrays: np.ndarray, source: str) -> tuple[list[np.ndarray], list[str]]:
    """Map labels of one dataset (train and test arrays together) to indices 0..C-1.

    Class names are str(label) for integers, in numeric order, or the strings in sorted order.

    Example:
        >>> encode_labels(np.array([7, 3, 7]), source="d")
        ([array([1, 0, 1])], ['3', '7'])
    """
    kinds = {a.dtype.kind == "i" for a in label_arrays}
    if len(kinds) > 1:
        raise DataError(
            f"{source}: the training labels and the test labels mix numbers and class names; "
            f"use the same kind of label in both"
        )
    values = np.unique(np.concatenate(label_arrays))
    class_names = [str(v) for v in values]
    encoded = [np.searchsorted(values, a).astype(np.int64) for a in label_arrays]
    return encoded, class_names
