"""Text datasets: a text and a label per example, from a CSV (header row) or JSONL (one object a line).

Texts stay Python strings in a 1-D object array; the text backbone tokenizes them itself. Every
error names the file and the line (1-based; a CSV's header is line 1) so the row can be found.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from transferlab.data.labels import normalize_labels
from transferlab.data.rawdata import RawData, check_unique_header
from transferlab.errors import DataError
from transferlab.limits import check_limit, csv_field_error, csv_field_limit

_JSONL_EXAMPLE = '{"text": "...", "label": "..."}'
_TEXT_FIX = "Pass --text-column NAME (text_column=) to name the column that holds the text"
_LABEL_FIX = "Pass --label-column NAME (label_column=) to name the column that holds the labels"

# One file as read: texts, raw labels (str, or None when not asked for), and the line of each example.
Records = tuple[list[str], list[str] | None, list[int]]


def is_text_source(data: str, text_column: str) -> bool:
    """True for a .jsonl file, or a .csv file whose header has `text_column`."""
    path = Path(data).expanduser()
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    return suffix == ".jsonl" or (suffix == ".csv" and text_column in _csv_header(path))


def check_text_options(source: str, *, image_size: int | None, image_margin: int, target: str,
                       image_center: str = "box") -> None:
    """Refuse options that cannot apply to a text dataset."""
    if image_size is not None or image_margin:
        raise DataError(
            f"{source} holds text, not images; image_size/image_margin apply to images only. "
            f"Drop --image-size and --image-margin"
        )
    if image_center != "box":
        raise DataError(f"{source} holds text, not images; image_center applies to images only. Drop --image-center")
    if target != "class":
        raise DataError(
            f"{source} holds text; text datasets support class labels only (text regression is not "
            f"supported). Drop --target {target}"
        )


def read_text_dataset(path: Path, *, text_column: str, label_column: str, test_path: Path | None = None) -> RawData:
    """Read a labelled text CSV/JSONL (and optionally a second file as its own test split) into RawData.

    Example:
        >>> raw = read_text_dataset(Path("trec/train.csv"), text_column="text", label_column="label",
        ...                         test_path=Path("trec/test.csv"))  # doctest: +SKIP
    """
    parts = []
    for file in [path] + ([test_path] if test_path is not None else []):
        texts, labels, lines = read_text_records(file, text_column=text_column, label_column=label_column)
        y = normalize_labels(
            np.asarray(labels, dtype=str), source=str(file), name=label_column,
            locate=lambda i, lines=lines: f"line {lines[i]}, '{label_column}'",
        )
        parts.append((_as_text_array(texts), y))
    (x, y), test = parts[0], (parts[1] if len(parts) == 2 else (None, None))
    return RawData(
        x=x, y=y, kind="text", source=str(path), x_test=test[0], y_test=test[1],
        x_names=(path.name, test_path.name if test_path is not None else "x_test"),
    )


def read_text_inputs(path: Path, *, text_column: str) -> tuple[np.ndarray, list[str]]:
    """Read unlabelled texts for prediction: a CSV with `text_column`, a JSONL, or a .txt (one text a line)."""
    if path.suffix.lower() == ".txt":
        texts, lines = _txt_records(path)
    else:
        texts, _, lines = read_text_records(path, text_column=text_column, label_column=None)
    return _as_text_array(texts), [f"line {n}" for n in lines]


def read_text_records(path: Path, *, text_column: str, label_column: str | None) -> Records:
    """Read one .csv or .jsonl file; `label_column=None` reads texts only (a label, if present, is ignored)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_records(path, text_column, label_column)
    if suffix == ".csv":
        return _csv_records(path, text_column, label_column)
    raise DataError(
        f"{path}: unsupported file type '{path.suffix or '(none)'}' for text; expected a .csv with a "
        f"'{text_column}' column or a .jsonl file (one JSON object per line)"
    )


def _as_text_array(texts: list[str]) -> np.ndarray:
    x = np.empty(len(texts), dtype=object)  # (N,) of str; np.array(texts) would make fixed-width '<U…'
    x[:] = texts
    return x


def _decode(path: Path) -> str:
    """The file's text as UTF-8 (a leading BOM is dropped), or a DataError saying where it is not UTF-8."""
    data = path.read_bytes()
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start
        line = data.count(b"\n", 0, offset) + 1
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise DataError(
            f"{path}: not valid UTF-8 at byte {offset} (line {line}): byte 0x{data[offset]:02x} "
            f"cannot start or continue a UTF-8 character{hint}; save the file as UTF-8"
        ) from None


def check_text_column(data: str, text_column: str) -> None:
    """Refuse a CSV that lacks the text column the user named, listing the columns it has."""
    path = Path(data).expanduser()
    if not (path.is_file() and path.suffix.lower() == ".csv"):
        return
    header = _csv_header(path)
    if text_column not in header:
        raise DataError(
            f"{path}: no text column '{text_column}' (--text-column); columns found: "
            f"{', '.join(repr(h) for h in header) or '(none)'}. {_TEXT_FIX}"
        )


def _csv_header(path: Path) -> list[str]:
    """The header row of a CSV, read from its first 64 KiB (undecodable bytes replaced, never raised)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8-sig", errors="replace")
    try:
        row = next(csv.reader(io.StringIO(head, newline="")), [])
    except csv.Error:
        return []
    return [h.strip() for h in row]


def _csv_records(path: Path, text_column: str, label_column: str | None) -> Records:
    reader = csv.reader(io.StringIO(_decode(path), newline=""))
    try:
        with csv_field_limit():
            return _csv_rows(path, reader, text_column, label_column)
    except csv.Error as exc:
        raise csv_field_error(path, reader.line_num, exc) or DataError(
            f"{path}: line {reader.line_num} cannot be read as CSV ({exc}); check its quotes") from None


def _csv_rows(path: Path, reader, text_column: str, label_column: str | None) -> Records:
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise DataError(f"{path}: CSV file is empty; expected a header row (line 1) and one row per example")
    check_unique_header(path, header)
    present = ", ".join(header)
    text_at = _column(path, header, text_column, "text", _TEXT_FIX)
    label_at = None if label_column is None else _column(path, header, label_column, "label", _LABEL_FIX)
    texts, labels, lines = [], [], []
    while True:
        line = reader.line_num + 1  # where this row starts; a quoted field may span several lines
        row = next(reader, None)
        if row is None:
            break
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {line} has {len(row)} fields but the header (line 1) has {len(header)} "
                f"({present}); every row needs one value per column. Quote text that holds commas, "
                f'e.g. "Hello, world"'
            )
        texts.append(_text(row[text_at], path, line, f"column '{text_column}'"))
        if label_at is not None:
            labels.append(_label(row[label_at], path, line, f"column '{label_column}'"))
        lines.append(line)
    if not texts:
        raise DataError(f"{path}: CSV has a header (line 1) but no rows (empty dataset); add one row per example")
    return texts, (labels if label_column is not None else None), lines


def _column(path: Path, header: list[str], name: str, what: str, fix: str) -> int:
    if name not in header:
        raise DataError(
            f"{path}: line 1 (header) has no {what} column '{name}'; columns present: {', '.join(header)}. {fix}"
        )
    return header.index(name)


def _jsonl_records(path: Path, text_column: str, label_column: str | None) -> Records:
    texts, labels, lines = [], [], []
    for line, content in enumerate(_decode(path).split("\n"), start=1):
        if not content.strip():
            continue  # blank line
        try:
            record = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {line} is not valid JSON ({exc.msg} at column {exc.colno}); each line must be "
                f"one JSON object, e.g. {_JSONL_EXAMPLE}"
            ) from None
        except (RecursionError, ValueError) as exc:  # nesting too deep, a number of more than 4300 digits
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(":")[0]
            raise DataError(
                f"{path}: line {line} cannot be read as JSON ({reason}); each line must be one flat JSON object, "
                f"e.g. {_JSONL_EXAMPLE}"
            ) from None
        if not isinstance(record, dict):
            raise DataError(
                f"{path}: line {line} is a JSON {_json_type(record)}, not an object; each line must be one "
                f"JSON object, e.g. {_JSONL_EXAMPLE}"
            )
        keys = ", ".join(record) or "none"
        if text_column not in record:
            raise DataError(f"{path}: line {line} has no key '{text_column}'; keys present: {keys}. {_TEXT_FIX}")
        text = record[text_column]
        if text is not None and not isinstance(text, str):
            raise DataError(
                f"{path}: line {line}, key '{text_column}' is a JSON {_json_type(text)}, not a string; "
                f"give the text as a string"
            )
        texts.append(_text(text or "", path, line, f"key '{text_column}'"))
        if label_column is not None:
            if label_column not in record:
                raise DataError(
                    f"{path}: line {line} has no key '{label_column}'; keys present: {keys}. Give every line "
                    f"a label. {_LABEL_FIX}"
                )
            labels.append(_json_label(record[label_column], path, line, label_column))
        lines.append(line)
    if not texts:
        raise DataError(f"{path}: holds no JSON lines (empty dataset); add one object per line, e.g. {_JSONL_EXAMPLE}")
    return texts, (labels if label_column is not None else None), lines


def _json_label(value: object, path: Path, line: int, label_column: str) -> str:
    if value is None:
        raise DataError(
            f"{path}: line {line}, key '{label_column}' is null; every example needs a label. "
            f"Fill or drop that line"
        )
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(
            f"{path}: line {line}, key '{label_column}' is a JSON {_json_type(value)}; a label must be a "
            f"class name (string) or a whole number"
        )
    return _label(str(value), path, line, f"key '{label_column}'")


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _text(value: str, path: Path, line: int, where: str) -> str:
    text = value.strip()
    if not text:
        raise DataError(f"{path}: line {line}, {where} is empty; every example needs a text. Fill or drop that row")
    check_limit("text_chars", len(text), what=f"{path}: line {line}, {where} ({len(text):,} characters)",
                fix="split or shorten that text")
    return text


def _label(value: str, path: Path, line: int, where: str) -> str:
    label = value.strip()
    if not label:
        raise DataError(f"{path}: line {line}, {where} is empty; every example needs a label. Fill or drop that row")
    return label


def _txt_records(path: Path) -> tuple[list[str], list[int]]:
    texts, lines = [], []
    for line, content in enumerate(_decode(path).split("\n"), start=1):
        if content.strip():
            texts.append(_text(content, path, line, "the text"))
            lines.append(line)
    if not texts:
        raise DataError(f"{path}: holds no text; write one text per line")
    return texts, lines
