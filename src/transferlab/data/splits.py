"""Splits: the fixed test and validation hold-outs, and the seeded K-shot draw of training examples."""

from __future__ import annotations

import zlib

import numpy as np

from transferlab.data.task import Task, TaskSplit
from transferlab.errors import DataError

# Hold-outs use this seed, never the run seed: every run on a task sees the same test and validation rows.
HOLDOUT_SEED = 0


def holdout_mask(y: np.ndarray, class_names: list[str], fraction: float, *, purpose: str) -> np.ndarray:
    """Pick a stratified `fraction` of rows, the same on every call; True marks a held-out row.

    Each class with at least 2 rows gives round(n·fraction) rows, at least 1 and at most n − 1.
    Each class draws from its own generator seeded by (HOLDOUT_SEED, purpose, class name), so
    the hold-out of a class does not depend on which other classes are present.
    """
    mask = np.zeros(len(y), dtype=bool)
    for label, name in enumerate(class_names):
        rows = np.flatnonzero(y == label)
        if len(rows) < 2:
            continue
        count = min(max(1, round(len(rows) * fraction)), len(rows) - 1)
        rng = np.random.default_rng([HOLDOUT_SEED, zlib.crc32(f"{purpose}:{name}".encode())])
        mask[rng.choice(rows, size=count, replace=False)] = True
    return mask


def parse_shots(value: str | int | None, *, allow_zero: bool = False) -> int | None:
    """Parse a label budget: "all" or None = every training example, else K ≥ 1 examples per class.

    `allow_zero=True` also accepts 0: no target labels (domain adaptation from unlabeled target data).

    Example:
        >>> parse_shots("10"), parse_shots("all"), parse_shots("0", allow_zero=True)
        (10, None, 0)
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "all":
            return None
        if not text.isdigit():
            raise DataError(f"shots must be a whole number of examples per class (e.g. 10) or 'all'; got {value!r}")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"shots must be a whole number of examples per class (e.g. 10) or 'all'; got {value!r}")
    if value == 0 and allow_zero:
        return 0
    if value < 1:
        zero = " (0 is for strategies that learn without target labels: adabn, dann, coral, mmd, self-training, source-free)"
        raise DataError(f"shots must be at least 1 example per class; got {value}. Use 'all' for every training "
                        f"example{zero if value == 0 else ''}")
    return int(value)


def split_task(task: Task, *, shots: int | None, seed: int, val_fraction: float = 0.1) -> TaskSplit:
    """Split a task's pool into validation (fixed) and training (K per class drawn with `seed`).

    Example:
        >>> from transferlab.data import load_task
        >>> split = split_task(load_task("digits"), shots=10, seed=0)
        >>> np.bincount(split.y_train)
        array([10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
    """
    if shots is not None:
        shots = parse_shots(shots)
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be between 0 and 1 (exclusive); got {val_fraction}")
    if task.is_numeric and shots is not None:
        raise DataError(
            f"{task.name}: --shots {shots} draws examples per class, but a numeric target has no classes; "
            f"use --shots all"
        )
    strata, names = (np.zeros(len(task.y_pool), np.int64), ["all"]) if task.is_numeric else (task.y_pool, task.class_names)
    val_mask = holdout_mask(strata, names, val_fraction, purpose="val")
    val_index = np.flatnonzero(val_mask)
    train_rows = np.flatnonzero(~val_mask)
    if len(val_index) == 0:
        raise DataError(
            f"{task.name}: the validation split is empty; the pool has {len(task.y_pool)} examples and no class "
            f"has the 2 needed to hold one out. Add examples (at least 3 per class including the test split)"
        )
    if shots is None:
        train_index = train_rows
    else:
        rng = np.random.default_rng(seed)
        chosen = []
        for label, name in enumerate(task.class_names):
            rows = train_rows[task.y_pool[train_rows] == label]
            if len(rows) < shots:
                raise DataError(
                    f"{task.name}: class '{name}' has {len(rows)} training examples, fewer than shots={shots}; "
                    f"use a smaller --shots (at most {len(rows)}) or --shots all"
                )
            chosen.append(rng.choice(rows, size=shots, replace=False))
        train_index = np.sort(np.concatenate(chosen))
    if len(train_index) == 0:
        raise DataError(f"{task.name}: the training split is empty; add examples to the dataset")
    return TaskSplit(
        task=task,
        x_train=task.x_pool[train_index], y_train=task.y_pool[train_index],
        x_val=task.x_pool[val_index], y_val=task.y_pool[val_index],
        shots=shots, seed=seed, train_index=train_index, val_index=val_index,
    )
