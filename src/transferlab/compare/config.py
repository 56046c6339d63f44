"""A comparison's settings: from a YAML file, overridden by command-line flags, saved with the results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from .verdicts import Analysis

DEFAULT_SHOTS: list[int | str] = [1, 5, 10, "all"]
BASELINE = "scratch"

# TrainConfig fields a comparison may set (seed comes from the grid; threads from --jobs/--threads).
TRAIN_KEYS = ("epochs", "batch_size", "lr", "backbone_lr", "optimizer", "momentum", "weight_decay", "schedule", "loss", "patience",
              "min_steps", "eval_every", "bn", "restore_best",
              "augment")


@dataclass
class StrategySpec:
    """One column of the grid: a registered strategy with its options, shown under `label`."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    train: dict[str, Any] = field(default_factory=dict)  # overrides of the comparison's train settings

    def __post_init__(self) -> None:
        from ..engine import TrainConfig
        from ..strategies import create_strategy

        if not isinstance(self.name, str) or not isinstance(self.options, dict) or not isinstance(self.label, str) \
                or not isinstance(self.train, dict):
            raise ConfigError(f"a strategy entry has a name (text), options and train (mappings) and a label (text); got "
                              f"name={self.name!r}, options={self.options!r}, label={self.label!r}, train={self.train!r}")
        create_strategy(self.name, **self.options)  # validate name and options now, not mid-grid
        self.label = self.label or self.name
        unknown = sorted(set(self.train) - set(TRAIN_KEYS))
        if unknown:
            raise ConfigError(f"strategy {self.label!r}: train settings {unknown} are not allowed; allowed: {list(TRAIN_KEYS)}")
        check_train_types(self.train, f"strategy {self.label!r}: train")
        TrainConfig(**self.train)

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "options": self.options, "label": self.label}
        return d | ({"train": self.train} if self.train else {})


@dataclass
class CompareConfig:
    """What a comparison runs: every (strategy, shots, seed) cell, on one target task, from one pretrained model.

    Example:
        >>> CompareConfig(pretrained="models/src", data="digits", image_size=28, image_margin=4,
        ...               strategies=["scratch", "linear-probe"], shots=[1, 5], seeds=3)  # doctest: +SKIP
    """

    pretrained: str
    data: str
    strategies: list[StrategySpec] | None = None
    shots: list[int | str] = field(default_factory=lambda: list(DEFAULT_SHOTS))
    seeds: int | str = 3  # or "auto": add seeds in rounds to undecided cells, up to max_seeds
    max_seeds: int = 20
    metric: str | None = None  # what verdicts use; None: balanced accuracy on an imbalanced test split, else accuracy
    correction: str = "holm"  # multiple comparisons: holm | bh | none
    margin: float = 0.02  # largest |Δ| a confident no-difference allows
    classes: str | list | None = None
    image_size: int | None = None
    image_margin: int = 0
    label_column: str = "label"
    text_column: str = "text"
    test_data: str | None = None
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ..strategies import list_strategies

        self._check_types()
        specs = self.strategies if self.strategies is not None else list_strategies()
        if not isinstance(specs, (list, tuple)):
            raise ConfigError(f"strategies must be a list (or a comma-separated text); got {specs!r}")
        self.strategies = [strategy_spec(s) for s in specs]
        if BASELINE not in [s.name for s in self.strategies]:
            self.strategies.insert(0, StrategySpec(BASELINE))  # scratch is always compared against
        labels = [s.label for s in self.strategies]
        dupes = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
        if dupes:
            raise ConfigError(f"strategy labels must be unique; {dupes} appear twice. Give each a distinct `label`")
        self.shots = parse_shots_list(self.shots)
        self._check_analysis()
        unknown = sorted(set(self.train) - set(TRAIN_KEYS))
        if unknown:
            raise ConfigError(f"train settings {unknown} are not allowed in a comparison; allowed: {list(TRAIN_KEYS)}")
        from ..engine import TrainConfig

        check_train_types(self.train, "train")
        TrainConfig(**self.train)  # validate now

    def _check_analysis(self) -> None:
        from .intervals import CORRECTIONS
        from .metrics import METRICS

        if isinstance(self.seeds, str) and self.seeds.strip().isdigit():
            self.seeds = int(self.seeds)
        if self.seeds != "auto" and (not isinstance(self.seeds, int) or isinstance(self.seeds, bool) or self.seeds < 1):
            raise ConfigError(f"--seeds must be a whole number ≥ 1; got {self.seeds!r} (or 'auto': add seeds to "
                              "undecided cells, up to --max-seeds)")
        if not isinstance(self.max_seeds, int) or isinstance(self.max_seeds, bool) or self.max_seeds < 2:
            raise ConfigError(f"--max-seeds must be a whole number ≥ 2 (the most seeds --seeds auto may run); "
                              f"got {self.max_seeds!r}")
        if self.metric is not None and self.metric not in METRICS:
            raise ConfigError(f"--metric {self.metric!r} is not known; allowed: {', '.join(METRICS)} (leave it out "
                              "for balanced accuracy on an imbalanced test split, else accuracy)")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"--correction {self.correction!r} is not known; allowed: {', '.join(CORRECTIONS)} "
                              "(holm: family-wise error; bh: false discovery rate)")
        if isinstance(self.margin, bool) or not isinstance(self.margin, (int, float)) or not 0 < self.margin < 1:
            raise ConfigError(f"--margin {self.margin!r} must be a number between 0 and 1, the largest difference "
                              "that still counts as no-difference (e.g. 0.02)")

    def analysis(self) -> "Analysis":
        """How this comparison's verdicts are made (metric, correction, margin, sequential looks)."""
        from .verdicts import Analysis

        return Analysis(metric=self.metric, correction=self.correction, margin=float(self.margin),
                        max_seeds=self.max_seeds if self.seeds == "auto" else None)

    def _check_types(self) -> None:
        """Settings from a YAML file can be any type (YAML reads 2020-01-01 as a date): refuse the wrong ones."""
        for name in ("pretrained", "data", "test_data"):
            if isinstance(getattr(self, name), Path):
                setattr(self, name, str(getattr(self, name)))
        expected = {"pretrained": (str,), "data": (str,), "label_column": (str,), "text_column": (str,),
                    "test_data": (str, type(None)), "classes": (str, list, type(None)), "image_size": (int, type(None)),
                    "image_margin": (int,), "train": (dict,)}
        for name, types in expected.items():
            value = getattr(self, name)
            if not isinstance(value, types) or isinstance(value, bool):
                allowed = " or ".join("null" if t is type(None) else {"str": "text", "dict": "a mapping"}.get(
                    t.__name__, t.__name__) for t in types)
                raise ConfigError(f"{name} must be {allowed}; got {value!r} ({type(value).__name__})")
        if isinstance(self.classes, list) and not all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                      for c in self.classes):
            raise ConfigError(f"classes must list class names or numbers; got {self.classes!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["strategies"] = [s.to_dict() for s in self.strategies or []]
        return d


def strategy_spec(value: Any) -> StrategySpec:
    """A StrategySpec from a name, a mapping {name, options, label}, or a StrategySpec."""
    if isinstance(value, StrategySpec):
        return value
    if isinstance(value, str):
        return StrategySpec(value.strip())
    if isinstance(value, dict):
        value = dict(value)
        name = value.pop("name", None)
        if not name:
            raise ConfigError(f"a strategy entry needs a name, e.g. {{name: partial, options: {{freeze: 2}}}}; got {value}")
        label = value.pop("label", "")
        options = value.pop("options", {}) or {}
        train = value.pop("train", {}) or {}
        if value:
            raise ConfigError(f"strategy entry {name!r} has unknown keys {sorted(map(str, value))}; allowed: name, label, "
                              "options, train")
        for what, mapping in (("options", options), ("train", train)):
            if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
                raise ConfigError(f"strategy entry {name!r}: {what} must be a mapping of setting names to values; "
                                  f"got {mapping!r}")
        return StrategySpec(name, dict(options), label, dict(train))
    raise ConfigError(f"a strategy is a name or a mapping with name/options/label; got {value!r}")


def check_train_types(train: dict[str, Any], where: str) -> None:
    """Refuse train settings of the wrong type (a YAML `lr: fast`), naming the setting and its type."""
    import typing

    from ..engine import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    for key, value in train.items():
        if key in hints and not _fits(value, hints[key]):
            raise ConfigError(f"{where} setting {key!r} is {value!r} ({type(value).__name__}); it must be "
                              f"{_describe(hints[key])}")


def _fits(value: Any, hint: Any) -> bool:
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return isinstance(value, str) and value in args
    if args and origin is not None and origin not in (list, dict, tuple):  # a Union / Optional
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True


def _describe(hint: Any) -> str:
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if args and origin is not None:
        return " or ".join(_describe(a) for a in args)
    return {type(None): "null", bool: "true or false", int: "a whole number", float: "a number",
            str: "text"}.get(hint, getattr(hint, "__name__", str(hint)))


def parse_shots_list(value: Any) -> list[int | str]:
    """'1,5,all' or [1, 5, 'all'] -> [1, 5, 'all'] (ints ascending, 'all' last, no duplicates)."""
    from ..data import parse_shots

    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (str, list, tuple)):
        raise ConfigError(f"--shots takes label budgets like 1,5,10,all (or a list); got {value!r}")
    items = value.split(",") if isinstance(value, str) else list(value)
    if not items:
        raise ConfigError("--shots needs at least one label budget, e.g. 1,5,10,all")
    try:
        parsed = {parse_shots(str(v).strip() if isinstance(v, str) else v) for v in items}
    except DataError as err:
        raise ConfigError(f"--shots {value!r}: {err}") from None
    ints = sorted(p for p in parsed if p is not None)
    return [*ints, *(["all"] if None in parsed else [])]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a dict of CompareConfig fields (unknown keys are refused)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text (byte {err.start}); save the config as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a comparison config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings (pretrained, data, strategies, shots, ...)")
    allowed = {f.name for f in dataclasses.fields(CompareConfig)} | {"jobs", "threads"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; allowed: {sorted(allowed)}")
    return data
