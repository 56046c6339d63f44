"""Bounds on what an input may ask for: image sizes, pixels, decompressed bytes, YAML, model size, texts.

A file or an option must never make transferlab allocate many GiB or hang: each quantity a user's
input controls is checked against a limit *before* the memory is allocated. Every limit has a
documented default (docs/limits.md) and an environment setting that raises it for a run that truly
needs more, e.g. `TRANSFERLAB_MAX_IMAGE_SIZE=8192 transferlab finetune ... --image-size 6000`.

Example:
    >>> check_limit("image_size", 28, what="--image-size 28")   # fine: below the default 4096
    >>> limit("image_size")
    4096
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from transferlab.errors import DataError, TransferlabError


@dataclass(frozen=True)
class Limit:
    """One bound: its default, the environment variable that raises it, and what it counts."""

    default: int
    env: str
    counts: str


LIMITS: dict[str, Limit] = {
    "image_size": Limit(4096, "TRANSFERLAB_MAX_IMAGE_SIZE", "pixels per side of a framed image (--image-size)"),
    "image_pixels": Limit(50_000_000, "TRANSFERLAB_MAX_IMAGE_PIXELS", "pixels per image (width × height)"),
    "input_bytes": Limit(4 << 30, "TRANSFERLAB_MAX_INPUT_BYTES",
                         "bytes of a dataset's decoded inputs (IDX/.npz arrays after decompression, framed images)"),
    "yaml_bytes": Limit(1 << 20, "TRANSFERLAB_MAX_YAML_BYTES", "bytes of a YAML config file"),
    "yaml_depth": Limit(32, "TRANSFERLAB_MAX_YAML_DEPTH", "levels of nesting in a YAML config"),
    "yaml_nodes": Limit(100_000, "TRANSFERLAB_MAX_YAML_NODES", "values in a YAML config, with every alias expanded"),
    "parameters": Limit(1_000_000_000, "TRANSFERLAB_MAX_PARAMETERS", "parameters of a backbone or head built from options or a config.json"),
    "text_chars": Limit(100_000, "TRANSFERLAB_MAX_TEXT_CHARS", "characters of one text (a CSV field or JSONL value)"),
    "csv_field": Limit(131_072, "TRANSFERLAB_MAX_CSV_FIELD", "characters of one CSV field"),
    "feature_cache_bytes": Limit(2 << 30, "TRANSFERLAB_MAX_FEATURE_CACHE_BYTES",
                                 "bytes of frozen-prefix features a comparison keeps for its runs to share"),
}


def limit(name: str) -> int:
    """The limit `name` (a key of LIMITS): its environment setting if set, else its default."""
    spec = LIMITS[name]
    raw = os.environ.get(spec.env)
    if raw is None or not raw.strip():
        return spec.default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise DataError(f"{spec.env}={raw!r}: a limit must be a whole number ≥ 1 ({spec.counts}); "
                        f"unset it for the default {spec.default:,}")
    return value


def check_limit(name: str, value: int, *, what: str, fix: str = "", error: type[TransferlabError] = DataError) -> None:
    """Raise `error` when `value` exceeds the limit `name`; the message says what, the bound, and both fixes.

    Example:
        >>> check_limit("image_size", 100000, what="--image-size 100000")
        Traceback (most recent call last):
        transferlab.errors.DataError: --image-size 100000 is above the limit of 4,096 pixels per side ...
    """
    bound = limit(name)
    if value > bound:
        spec = LIMITS[name]
        fix = f"{fix}, or " if fix else ""
        raise error(f"{what} is above the limit of {bound:,} {spec.counts} (asked for {value:,}); {fix}raise the "
                    f"limit with the environment setting {spec.env}=N if this is intended")


@contextlib.contextmanager
def csv_field_limit():
    """Within the block, the csv module refuses a field longer than the CSV-field limit (then restored)."""
    import csv

    saved = csv.field_size_limit(limit("csv_field"))
    try:
        yield
    finally:
        csv.field_size_limit(saved)


def csv_field_error(path: object, line: int, exc: Exception) -> DataError | None:
    """The one-line error for the csv module's "field larger than field limit", else None."""
    if "field larger than field limit" not in str(exc):
        return None
    spec = LIMITS["csv_field"]
    return DataError(f"{path}: line {line} has a field above the limit of {limit('csv_field'):,} {spec.counts}; check "
                     f"that line's quotes (an unclosed quote swallows the rest of the file), or raise the limit with "
                     f"the environment setting {spec.env}=N if this is intended")
