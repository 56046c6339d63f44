"""Class selection: which classes of a dataset a task keeps, and in which label order."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from transferlab.errors import DataError

_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_classes(value: str | Sequence[int | str]) -> list[str]:
    """Parse a class selection into class names, in the order given (ranges ascending).

    Strings: "0-4", "5,7,9", "0-2,7", "cat,dog"; a token "a-b" is a range only when a and b are
    whole numbers, so names such as "t-shirt" still work. Sequences: ints or names.

    Example:
        >>> parse_classes("0-2,7")
        ['0', '1', '2', '7']
    """
    if isinstance(value, str):
        names = []
        for token in value.split(","):
            match = _RANGE.match(token)
            if match:
                low, high = int(match[1]), int(match[2])
                if low > high:
                    raise DataError(f"class range '{token.strip()}' runs backwards; write it low-high, e.g. '{high}-{low}'")
                names += [str(i) for i in range(low, high + 1)]
            elif token.strip():
                names.append(token.strip())
            else:
                raise DataError(f"class selection {value!r} has an empty entry; write e.g. '0-4' or '5,7,9'")
    else:
        names = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, np.integer, str)):
                raise DataError(f"class selection entries must be class numbers or names; got {item!r}")
            if isinstance(item, (int, np.integer)) and item < 0:
                raise DataError(f"class numbers are >= 0; got {item} in the class selection")
            names.append(str(item).strip())
    if not names:
        raise DataError("class selection is empty; name at least two classes, e.g. '0-4' or '5,7,9'")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"class selection names {', '.join(repeated)} more than once; name each class once")
    return names


def class_mapping(selected: list[str], class_names: list[str], *, dataset: str) -> np.ndarray:
    """Map old label indices to new ones: new[old] = position in `selected`, or -1 if dropped."""
    unknown = [n for n in selected if n not in class_names]
    if unknown:
        raise DataError(
            f"{dataset} has no class {', '.join(repr(n) for n in unknown)}; "
            f"available classes: {', '.join(class_names)}"
        )
    mapping = np.full(len(class_names), -1, dtype=np.int64)
    for new, name in enumerate(selected):
        mapping[class_names.index(name)] = new
    return mapping

