"""Prediction in batches (with a progress bar) and prediction files (CSV, JSON Lines, JSON)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import LoadedModel
from .errors import ConfigError

PREDICT_BATCH = 256
OUTPUT_SUFFIXES = (".csv", ".jsonl", ".json")
TEXT_SHOWN = 60  # characters of a text shown as its prediction's name


def text_names(texts: np.ndarray, rows: list[str]) -> list[str]:
    """Names for text predictions: where the text is (its file line, or `row i` of an array) and the text,
    on one line, cut to TEXT_SHOWN characters: `line 3: "Free entry in 2 a wkly comp to win FA Cup…"`."""
    names = []
    for text, row in zip(texts, rows):
        flat = " ".join(str(text).split())
        shown = flat if len(flat) <= TEXT_SHOWN else flat[: TEXT_SHOWN - 1] + "…"
        where = row if not row.isdigit() else f"row {row}"
        names.append(f'{where}: "{shown}"')
    return names


def check_output_path(out: str | Path | None, *, overwrite: bool) -> Path | None:
    """Validate `--out` before any work: a known suffix, not a folder, not clobbered without --overwrite."""
    if out is None:
        return None
    out = Path(out)
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {str(out)!r} has suffix {out.suffix or '(none)'!r}; predictions are written as "
                          f"{', '.join(OUTPUT_SUFFIXES)} — name the file e.g. predictions.csv")
    if out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a folder; pass a file path such as predictions.csv")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {str(out)!r} already exists; pass --overwrite to replace it, or choose another file")
    from .artifacts.ownership import check_name_length

    check_name_length(out)
    if out.exists() and not is_predictions_file(out):
        raise ConfigError(f"--out {str(out)!r} was not written by transferlab predict (it is not a predictions file: "
                          "its first line is no predictions header); refusing to replace it even with --overwrite — "
                          "choose another file")
    return out


def is_predictions_file(path: Path) -> bool:
    """Whether `path` is a file `write_predictions` wrote (recognised by its content: header, keys).

    --overwrite replaces only such files, never a user's file that happens to have the name.
    """
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", errors="strict").split("\n", 1)[0].strip()
    except (OSError, UnicodeDecodeError):
        return False
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return head == "input,value" or head.startswith("input,label,probability")
    try:
        if suffix == ".jsonl":
            row = json.loads(head) if head else {"input": None, "value": None}  # an empty file: no predictions
            return isinstance(row, dict) and "input" in row and ("label" in row or "value" in row)
        if path.stat().st_size > 1 << 30:
            return False
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and list(data) == ["predictions"] and isinstance(data["predictions"], list)


def predict_rows(
    loaded: LoadedModel, x: np.ndarray, names: list[str], *, what: str, batch_size: int = PREDICT_BATCH,
    progress: Any = False,
) -> list[dict[str, Any]]:
    """One row per input: `{"input", "label", "probability", "probabilities"}`, or `{"input", "value"}`.

    Inputs are prepared (text: tokenized) and run one batch at a time, so memory stays bounded; texts
    go shortest first (by characters, then by tokens inside a batch), so each batch is padded only to
    its own longest text, and the rows come back in input order. `progress` as in `api.predict`.
    """
    from .engine.evaluate import predict_logits
    from .engine.progress import batch_progress

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be a whole number ≥ 1; got {batch_size}")
    numeric = loaded.config.get("target") == "numeric"
    labels = loaded.label_names
    rows: list[dict[str, Any]] = [{} for _ in range(len(x))]
    text = loaded.input_spec.kind == "text"
    order = np.argsort([len(str(t)) for t in x], kind="stable") if text else np.arange(len(x))
    with batch_progress(f"predict {len(x)} inputs", total=len(x), enabled=progress) as advance:
        for start in range(0, len(x), batch_size):
            at = order[start : start + batch_size]
            xt = loaded.backbone.prepare_inputs(x[at])
            loaded.backbone.check_input(xt, what=what)
            out = predict_logits(loaded.model, xt, batch_size=batch_size)  # (b, outputs)
            if numeric:
                for i, v in zip(at.tolist(), out.squeeze(1).tolist()):
                    rows[i] = {"input": names[i], "value": v}
            else:
                probs = out.softmax(1)
                best = probs.argmax(1).tolist()
                for i, p, b in zip(at.tolist(), probs.tolist(), best):
                    rows[i] = {"input": names[i], "label": labels[b], "probability": p[b],
                               "probabilities": dict(zip(labels, p))}
            advance(len(at))
    return rows


def write_predictions(rows: list[dict[str, Any]], out: Path) -> Path:
    """Write rows as CSV (input, label, probability, then one `p_<class>` column per class; or input,
    value), JSON Lines (one row per line) or JSON (`{"predictions": [...]}`), by the file's suffix."""
    from .artifacts.files import atomic_write

    suffix = out.suffix.lower()
    if suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if rows and "value" in rows[0]:
            writer.writerow(["input", "value"])
            writer.writerows([r["input"], repr(r["value"])] for r in rows)
        else:
            classes = list(rows[0]["probabilities"]) if rows else []
            writer.writerow(["input", "label", "probability", *(f"p_{c}" for c in classes)])
            writer.writerows([r["input"], r["label"], repr(r["probability"]), *(repr(r["probabilities"][c]) for c in classes)]
                             for r in rows)
        data = buffer.getvalue()
    elif suffix == ".jsonl":
        data = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        data = json.dumps({"predictions": rows}) + "\n"
    atomic_write(out, lambda f: f.write(data.encode()))
    return out

