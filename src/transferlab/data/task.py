"""A task: a labelled dataset with its fixed test split, class names and input spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What one example looks like: an image (C, H, W), a feature vector (D,) or a text (shape ()).

    A text example is one Python str; the text backbone tokenizes it. `any_size`: a model that resizes
    images itself (an ImageNet backbone): it takes images of any size, grayscale or RGB, and `shape` is
    the (3, side, side) it runs at.
    """

    kind: Literal["image", "vector", "text"]
    shape: tuple[int, ...]
    any_size: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape)} | ({"any_size": True} if self.any_size else {})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        return cls(kind=d["kind"], shape=tuple(int(s) for s in d["shape"]), any_size=d.get("any_size") is True)

    def describe(self) -> str:
        if self.kind == "text":
            return "text"
        return "×".join(str(s) for s in self.shape) + (" image" if self.kind == "image" else " vector")


@dataclass
class Task:
    """A labelled dataset split once into a pool (train + validation) and a fixed test split.

    The test split is chosen once per dataset, independent of any run seed (or it is the dataset's
    own test split), so every run and every strategy is evaluated on the same held-out examples.
    Arrays are float32 inputs (N, *input_spec.shape) scaled to [0, 1] for images — or, for text,
    1-D object arrays (N,) of str — and int64 labels (N,) — or float32 targets (N,) when `target == "numeric"` (regression; `class_names` is empty).
    """

    name: str
    x_pool: np.ndarray
    y_pool: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    input_spec: InputSpec
    source: str
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # Rows of the dataset as read (its own train rows first, then its own test rows), so splits of
    # different class selections of one dataset can be compared row by row.
    pool_index: np.ndarray | None = None
    test_index: np.ndarray | None = None
    target: Literal["class", "numeric"] = "class"

    @property
    def is_numeric(self) -> bool:
        """True for a numeric (regression) target: no classes, MSE loss, error metrics."""
        return self.target == "numeric"

    @property
    def num_outputs(self) -> int:
        """Width of the head: one per class, or one numeric output."""
        return 1 if self.is_numeric else len(self.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class TaskSplit:
    """The examples one run may use: train (possibly K-shot) and validation, plus the held-out test."""

    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    shots: int | None  # None means all labelled training examples
    seed: int
    train_index: np.ndarray | None = None  # rows of task.x_pool used for training
    val_index: np.ndarray | None = None  # rows of task.x_pool used for validation

    @property
    def x_test(self) -> np.ndarray:
        return self.task.x_test

    @property
    def y_test(self) -> np.ndarray:
        return self.task.y_test
