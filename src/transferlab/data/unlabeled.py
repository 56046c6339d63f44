"""Data for domain adaptation: unlabeled target inputs, and labelled source rows matched to the target's classes.

Unlabeled inputs never carry labels into a run: only the inputs of a file are read where the format
allows it, and where a dataset must be read whole its labels are dropped at once. A dataset's own
test split is never read; `--unlabeled-data train` is the target task's pool (training and
validation rows) without its labels, never its test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.data.builtin import DATASETS
from transferlab.data.formats import input_kind, load_npz_arrays
from transferlab.data.images import preprocess_inputs, scale_divisor, to_unit
from transferlab.data.loading import load_inputs, load_task
from transferlab.data.options import DataOptions
from transferlab.data.rawdata import check_finite, check_not_empty
from transferlab.data.splits import split_task
from transferlab.data.task import Task
from transferlab.errors import DataError

TARGET_POOL = "train"  # --unlabeled-data train: the target's own training pool, labels unread


def load_unlabeled(spec: str, task: Task) -> np.ndarray:
    """Unlabeled target inputs, prepared like `task`'s inputs (image size, margin, channels).

    `spec` is "train" (the task's pool without labels), a built-in dataset (its pool), or a path
    in any format transferlab reads; a label column or array in it is ignored. An .npz with
    x_train/x_test gives x_train only (its test split is never read).

    Example:
        >>> task = load_task("digits", image_size=28, image_margin=4)
        >>> load_unlabeled("train", task).shape == task.x_pool.shape
        True
    """
    if spec == TARGET_POOL:
        return task.x_pool
    prep = task.preprocessing
    if spec in DATASETS:
        return _pool_only(spec, prep)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"--unlabeled-data {spec!r}: no such file, folder or built-in dataset; pass 'train' (the target's own "
            f"training pool without its labels), a built-in name ({', '.join(DATASETS)}) or a path"
        )
    if path.is_file() and path.suffix.lower() == ".npz":
        arrays = load_npz_arrays(path)
        if "x" not in arrays and "x_train" in arrays:
            return _unit_inputs(arrays["x_train"], str(path), "x_train", prep)
    try:
        x, _ = load_inputs(path, preprocessing=prep, label_column=prep.get("label_column", "label"))
    except DataError as inputs_error:
        try:  # a labelled dataset layout (class folders, IDX pairs): its training pool, labels dropped
            return _pool_only(str(path), prep)
        except DataError:
            raise inputs_error from None
    return x


def _pool_only(data: str, prep: dict[str, Any]) -> np.ndarray:
    """A dataset's pool inputs (its training rows), its labels and test split dropped."""
    return load_task(data, image_size=prep.get("image_size"), image_margin=int(prep.get("image_margin") or 0),
                     image_center=prep.get("image_center") or "box").x_pool


def _unit_inputs(x: np.ndarray, source: str, name: str, prep: dict[str, Any]) -> np.ndarray:
    check_not_empty(source, x, name)
    kind, x = input_kind(x, source, name)
    check_finite(source, x, name)
    if kind == "vector":
        return x.astype(np.float32)
    divisor, _ = scale_divisor([x], source=source, names=[name])
    return preprocess_inputs(to_unit(x, divisor), prep)


@dataclass
class SourceRows:
    """Labelled source rows with labels renumbered to the target's classes (matched by name).

    `train`/`val` are (x, y) pairs: the source pool's training rows, and its fixed validation rows
    (reported, never used to pick weights at 0 target labels).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    matched: list[str]


def match_classes(source_names: list[str], target_names: list[str], *, source: str, target: str) -> np.ndarray:
    """For each source class, its target class index (-1: not a target class). Classes match by name.

    Example:
        >>> match_classes(["0", "1", "2"], ["2", "0"], source="s", target="t").tolist()
        [1, -1, 0]
    """
    where = {name: i for i, name in enumerate(target_names)}
    mapping = np.array([where.get(name, -1) for name in source_names], dtype=np.int64)
    if (mapping < 0).all():
        raise DataError(
            f"the source task {source} has classes {source_names} and the target {target} has {target_names}: "
            "no class name is shared, so source labels cannot teach target classes; pass a --source-data whose "
            "classes are named like the target's, or use a strategy that needs no source data (adabn, source-free)"
        )
    return mapping


def load_source_rows(data: str, preprocessing: dict[str, Any], target: Task, *, seed: int = 0) -> SourceRows:
    """The source task's labelled pool rows, prepared as the pretrained model saw them, relabelled to `target`.

    Rows of source classes the target lacks are dropped; the source test split is never read.
    """
    source = DataOptions.from_preprocessing(preprocessing).load(data)
    if source.input_spec != target.input_spec:
        raise DataError(
            f"the source data {data} gives {source.input_spec.describe()} inputs but the target {target.name} gives "
            f"{target.input_spec.describe()}; pass a --source-data prepared like the pretrained model's inputs"
        )
    mapping = match_classes(source.class_names, target.class_names, source=data, target=target.name)
    split = split_task(source, shots=None, seed=seed)

    def relabel(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = mapping[y] >= 0
        return x[keep], mapping[y[keep]]

    (x_tr, y_tr), (x_va, y_va) = relabel(split.x_train, split.y_train), relabel(split.x_val, split.y_val)
    matched = [n for n in source.class_names if n in target.class_names]
    return SourceRows(name=str(data), x_train=x_tr, y_train=y_tr, x_val=x_va, y_val=y_va, matched=matched)
