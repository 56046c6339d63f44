"""How to read a dataset: the one object holding the data options every command, API function and config shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Sequence

from .task import Task


@dataclass(frozen=True)
class DataOptions:
    """The options that say how a dataset is read (the CLI's Data panel; the same names in YAML and the API).

    Examples:
        >>> opts = DataOptions(classes="0-4", image_size=28, image_margin=4)
        >>> task = opts.load("digits")
        >>> task.input_spec.shape, len(task.class_names)
        ((1, 28, 28), 5)
    """

    classes: str | Sequence[int | str] | None = None
    image_size: int | None = None
    image_margin: int = 0
    label_column: str = "label"
    text_column: str = "text"
    test_data: str | None = None
    target: Literal["class", "numeric"] = "class"

    def load(self, data: str, **extra: Any) -> Task:
        """The task of dataset `data` (a built-in name or a path), read with these options.

        `extra` goes to `load_task` as well: how a model scales its inputs (`feature_scale`) is the
        model's, not the dataset's.
        """
        from .loading import load_task

        return load_task(data, **asdict(self), **extra)

    @classmethod
    def from_preprocessing(cls, preprocessing: dict[str, Any], **given: Any) -> "DataOptions":
        """The options a model folder recorded (its `preprocessing`), overridden by those given (None: not given)."""
        names = {f.name for f in fields(cls)}
        recorded = {k: v for k, v in preprocessing.items() if k in names and v is not None}
        return cls(**(recorded | {k: v for k, v in given.items() if v is not None}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
