"""Readers for user datasets given by path: .npz arrays and .csv feature tables."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from transferlab.data.labels import normalize_labels, numeric_targets
from transferlab.data.rawdata import RawData, check_finite, check_not_empty, check_same_length, check_unique_header
from transferlab.errors import DataError
from transferlab.limits import csv_field_error, csv_field_limit

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NPZ_LAYOUT = "arrays 'x' and 'y' (optionally 'x_test' and 'y_test'), or 'x_train', 'y_train', 'x_test', 'y_test'"


def load_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """Load every array of an .npz file without allowing pickled objects."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        # numpy's ValueError for a non-zip file suggests allow_pickle, which we never want to suggest.
        reason = "not a zip archive" if isinstance(exc, ValueError) else str(exc)
        raise DataError(f"{path}: cannot read .npz file ({reason}); save it with numpy.savez or savez_compressed") from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single .npy array, not named arrays; save it with numpy.savez(path, x=..., y=...)")
    arrays = {}
    with npz:
        for name in npz.files:
            _check_npz_member(npz, name, path)
            try:
                arrays[name] = npz[name]
            except ValueError as exc:
                raise DataError(
                    f"{path}: array '{name}' holds Python objects, which are not loaded (they could run "
                    f"code); save strings as a fixed-width array, e.g. np.array(labels, dtype=str)"
                ) from exc
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{path}: cannot read array '{name}' ({exc}); the file may be truncated") from exc
    return arrays


def _check_npz_member(npz: np.lib.npyio.NpzFile, name: str, path: Path) -> None:
    """Refuse an array whose stored size or .npy header shape is above the input-bytes limit, before inflating it."""
    import math

    from transferlab.limits import check_limit

    what = f"{path}: array '{name}'"
    try:
        info = npz.zip.getinfo(name if name in npz.zip.namelist() else f"{name}.npy")
    except KeyError:
        return
    check_limit("input_bytes", info.file_size, what=f"{what} ({info.file_size:,} bytes uncompressed)",
                fix="check that this is the file you meant")
    try:
        with npz.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return  # not a well-formed .npy member: reading it below says what is wrong
    check_limit("input_bytes", math.prod(shape) * dtype.itemsize, what=f"{what} of shape {shape} ({dtype})",
                fix="check that this is the file you meant")


def input_kind(x: np.ndarray, source: str, name: str) -> tuple[str, np.ndarray]:
    """Classify an input array as vectors (N, D) or images (N, C, H, W); (N, H, W) gains C=1."""
    if x.dtype.kind not in "iufb":
        raise DataError(f"{source}: '{name}' must hold numbers; found dtype {x.dtype}")
    if x.ndim == 2:
        return "vector", x
    if x.ndim == 3:
        return "image", x[:, None]  # (N, 1, H, W)
    if x.ndim == 4:
        if x.shape[1] not in (1, 3):
            hint = " It looks channels-last: use np.transpose(x, (0, 3, 1, 2))." if x.shape[3] in (1, 3) else ""
            raise DataError(
                f"{source}: '{name}' has shape {x.shape}; 4-D images must be (N, C, H, W) with C = 1 "
                f"(grayscale) or 3 (RGB).{hint}"
            )
        return "image", x
    raise DataError(
        f"{source}: '{name}' has shape {x.shape}; expected (N, D) feature vectors, (N, H, W) grayscale "
        f"images or (N, C, H, W) images"
    )


def read_npz(path: Path, *, numeric: bool = False) -> RawData:
    """Read x/y (and optionally x_test/y_test) or x_train/y_train/x_test/y_test from an .npz file.

    `numeric=True` reads y as numeric (regression) targets instead of class labels.
    """
    labels = numeric_targets if numeric else normalize_labels
    arrays = load_npz_arrays(path)
    present = ", ".join(f"'{n}'" for n in arrays) or "none"
    if "x_train" in arrays or "y_train" in arrays:
        pairs = [("x_train", "y_train"), ("x_test", "y_test")]
    elif "x_test" in arrays or "y_test" in arrays:
        pairs = [("x", "y"), ("x_test", "y_test")]
    else:
        pairs = [("x", "y")]
    missing = [n for pair in pairs for n in pair if n not in arrays]
    if missing:
        raise DataError(
            f"{path}: missing array {', '.join(repr(n) for n in missing)}; found {present}. "
            f"Expected {_NPZ_LAYOUT}"
        )
    source = str(path)
    read = []
    for x_name, y_name in pairs:
        x, y = arrays[x_name], arrays[y_name]
        for array, array_name in ((x, x_name), (y, y_name)):
            if array.ndim == 0:
                raise DataError(f"{source}: '{array_name}' is a single value (shape ()); expected one row per example")
        check_same_length(source, x, y, x_name, y_name)
        check_not_empty(source, x, x_name)
        kind, x = input_kind(x, source, x_name)
        check_finite(source, x, x_name)
        read.append((kind, x, labels(y, source=source, name=y_name)))
    if len(read) == 2 and read[0][1].shape[1:] != read[1][1].shape[1:]:
        raise DataError(
            f"{source}: '{pairs[0][0]}' examples have shape {read[0][1].shape[1:]} but '{pairs[1][0]}' "
            f"examples have shape {read[1][1].shape[1:]}; train and test examples must have the same shape"
        )
    (kind, x, y), test = read[0], (read[1] if len(read) == 2 else None)
    return RawData(
        x=x, y=y, kind=kind, source=source,
        x_test=None if test is None else test[1], y_test=None if test is None else test[2],
        x_names=(pairs[0][0], "x_test"),
    )


def read_csv(
    path: Path, label_column: str, *, required: bool = True
) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Read a CSV of numeric features; returns (x float32 (N, D), raw labels or None, file line numbers).

    With required=False the label column may be absent; if present it is dropped from the features.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f, csv_field_limit():
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: CSV file is empty; expected a header row and one row per example")
            header = [h.strip() for h in header]
            check_unique_header(path, header)
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise DataError(
                        f"{path}: line {reader.line_num} has {len(row)} fields but the header has "
                        f"{len(header)} ({', '.join(header)}); every row needs one value per column"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc}); save the CSV as UTF-8") from exc
    except csv.Error as exc:  # a NUL byte, a field over the csv module's size limit, a broken quote
        raise csv_field_error(path, reader.line_num, exc) or DataError(f"{path}: line {reader.line_num} cannot be read as CSV ({exc}); check that line") from None
    if label_column in header:
        label_at = header.index(label_column)
    elif required:
        raise DataError(
            f"{path}: no label column '{label_column}'; columns present: {', '.join(header)}. "
            f"Pass label_column (--label-column NAME) to name the column that holds the labels"
        )
    else:
        label_at = None
    if not rows:
        raise DataError(f"{path}: CSV has a header but no rows (empty dataset); add one row per example")
    feature_at = [i for i in range(len(header)) if i != label_at]
    if not feature_at:
        raise DataError(f"{path}: CSV has no feature columns besides '{label_column}'; add numeric feature columns")
    x = np.empty((len(rows), len(feature_at)), dtype=np.float32)
    for r, (row, line) in enumerate(zip(rows, lines)):
        for j, col in enumerate(feature_at):
            x[r, j] = _number(row[col], path, line, header[col], header)
    y = None if label_at is None else np.asarray([row[label_at].strip() for row in rows], dtype=str)
    return x, y, lines


def _number(cell: str, path: Path, line: int, column: str, header: list[str]) -> float:
    if not cell.strip():
        raise DataError(
            f"{path}: line {line}, column '{column}' is empty; every feature needs a value. "
            f"Fill or drop rows with missing values"
        )
    try:
        value = float(cell)
    except ValueError:
        raise DataError(
            f"{path}: line {line}, column '{column}' is {cell[:60]!r}, not a number; features must be numeric "
            f"(columns found: {', '.join(header)}). Encode or drop that column, or, if it holds text, pass "
            f"--text-column {column} (a text dataset names its text column with --text-column)"
        ) from None
    if not np.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise DataError(
            f"{path}: line {line}, column '{column}' is {cell.strip()!r}; features must be finite numbers. "
            f"Fill or drop rows with missing (NaN) or infinite values"
        )
    return value


def read_csv_dataset(path: Path, label_column: str, *, numeric: bool = False) -> RawData:
    """Read a labelled CSV of numeric features into vector RawData (`numeric`: regression targets)."""
    x, y, lines = read_csv(path, label_column)
    y = (numeric_targets if numeric else normalize_labels)(
        y, source=str(path), name=label_column, locate=lambda i: f"line {lines[i]}, column '{label_column}'"
    )
    return RawData(x=x, y=y, kind="vector", source=str(path), scale="none (CSV features are kept as they are)")
