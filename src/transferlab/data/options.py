"""How to read a dataset: the one object holding the data options every command, API function and config shares."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal, Sequence

from ..errors import ConfigError
from .task import Task


@dataclass(frozen=True)
class DataOptions:
    """The options that say how a dataset is read (the CLI's Data panel; the same names in YAML and the API).

    Each field is one command-line flag (`image_size` → `--image-size`, help from its metadata), one
    keyword of the API functions and one key of compare's YAML config.

    Examples:
        >>> opts = DataOptions(classes="0-4", image_size=28, image_margin=4)
        >>> task = opts.load("digits")
        >>> task.input_spec.shape, len(task.class_names)
        ((1, 28, 28), 5)
    """

    classes: str | Sequence[int | str] | None = field(default=None, metadata={
        "help": "class subset: 0-4, 5,7,9 or class names", "cli_type": str})
    image_size: int | None = field(default=None, metadata={"help": "resize (keeping aspect) and pad images to N×N"})
    image_margin: int = field(default=0, metadata={"help": "fit images into (N−2M)² first, pad M each side"})
    image_center: Literal["box", "mass"] = field(default="box", metadata={
        "help": "box: centre the resized image in its frame; mass: move it so its centre of mass is the frame's centre (as MNIST)"})
    label_column: str = field(default="label", metadata={"help": "label column of a CSV"})
    text_column: str = field(default="text", metadata={"help": "text column of a CSV/JSONL text dataset"})
    test_data: str | None = field(default=None, metadata={
        "help": "a separate test file (text datasets): the fixed test split"})
    target: Literal["class", "numeric"] = field(default="class", metadata={
        "help": "class: labels are classes (cross-entropy); numeric: numbers to regress (MSE)"})

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

    @classmethod
    def merge(cls, data_options: "DataOptions | None", **keywords: Any) -> "DataOptions":
        """The options of an API call given `data_options`, the options as separate keywords, or both.

        A keyword left at its default defers to `data_options`; a keyword set to another value than
        `data_options` holds is refused, naming both (the call would otherwise silently drop one).

        Examples:
            >>> DataOptions.merge(None, image_size=28).image_size
            28
            >>> DataOptions.merge(DataOptions(image_size=28), image_margin=0).image_size
            28
            >>> DataOptions.merge(DataOptions(image_size=28), image_size=32)
            Traceback (most recent call last):
            ...
            transferlab.errors.ConfigError: image_size=32 and data_options.image_size=28 disagree; give each data option once: in data_options, or as the keyword image_size
        """
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"{unknown} are not data options; the data options are {[f.name for f in fields(cls)]}")
        if data_options is None:
            return cls(**keywords)
        if not isinstance(data_options, DataOptions):
            raise ConfigError(f"data_options must be a DataOptions; got {data_options!r} ({type(data_options).__name__}). "
                              "Build one: DataOptions(image_size=28, ...)")
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        for name, value in keywords.items():
            held = getattr(data_options, name)
            if value != defaults.get(name) and value != held:
                raise ConfigError(f"{name}={value!r} and data_options.{name}={held!r} disagree; give each data option "
                                  f"once: in data_options, or as the keyword {name}")
        return data_options

    @classmethod
    def overrides(cls, data_options: "DataOptions | None", what: str, **keywords: Any) -> dict[str, Any]:
        """The options given to a function that reads data as a model folder recorded it (evaluate, explain, predict).

        `keywords` are the fields it lets a caller override (None: not given); `data_options` may set
        those too. A field it does not let a caller override must stay at its default in `data_options`.

        Examples:
            >>> DataOptions.overrides(DataOptions(label_column="y"), "evaluate", label_column=None, test_data=None)
            {'label_column': 'y'}
            >>> DataOptions.overrides(DataOptions(image_size=32), "evaluate", label_column=None)
            Traceback (most recent call last):
            ...
            transferlab.errors.ConfigError: evaluate reads image_size as the model recorded it; got data_options.image_size=32. Leave it at its default (None), or read the data with another model
        """
        given = {k: v for k, v in keywords.items() if v is not None}
        if data_options is None:
            return given
        merged = cls.merge(data_options, **{k: v for k, v in given.items()})
        for f in fields(cls):
            value = getattr(merged, f.name)
            if value == f.default:
                continue
            if f.name not in keywords:
                raise ConfigError(f"{what} reads {f.name} as the model recorded it; got data_options.{f.name}={value!r}. "
                                  f"Leave it at its default ({f.default!r}), or read the data with another model")
            given[f.name] = value
        return given

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
