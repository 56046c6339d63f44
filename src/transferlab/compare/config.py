"""A comparison's settings: from a YAML file, overridden by command-line flags, saved with the results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError
from ..plugin_options import GivenFlags

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
    image_center: str = "box"  # or "mass": images placed by their centre of mass (as MNIST)
    label_column: str = "label"
    text_column: str = "text"
    test_data: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    unlabeled_data: str | None = None  # domain adaptation: target inputs without labels, or "train" (the pool)
    source_data: str | None = None  # labelled source data of dann/coral/mmd/self-training (default: the model's)

    def __post_init__(self) -> None:
        from ..engine.adaptation import adaptation_strategies
        from ..strategies import list_strategies

        self._check_types()
        adapting = set(adaptation_strategies())
        # by default every registered strategy; those that learn from unlabeled data only when it is given
        specs = self.strategies if self.strategies is not None else [
            n for n in list_strategies() if n not in adapting or self.unlabeled_data is not None]
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
        self._check_adaptation(adapting)
        self._check_analysis()
        unknown = sorted(set(self.train) - set(TRAIN_KEYS))
        if unknown:
            raise ConfigError(f"train settings {unknown} are not allowed in a comparison; allowed: {list(TRAIN_KEYS)}")
        from ..engine import TrainConfig

        check_train_types(self.train, "train")
        TrainConfig(**self.train)  # validate now

    def _check_adaptation(self, adapting: set[str]) -> None:
        """0 labels and domain-adaptation strategies need unlabeled data; unlabeled data needs such a strategy."""
        names = [s.name for s in self.strategies or []]
        if self.unlabeled_data is None:
            if 0 in self.shots:
                raise ConfigError("--shots 0 compares strategies that learn without target labels, from unlabeled "
                                  "target data; pass --unlabeled-data PATH (or train), or drop 0 from --shots")
            needing = [n for n in names if n in adapting]
            if needing:
                raise ConfigError(f"strategies {needing} learn from unlabeled target data; pass --unlabeled-data PATH "
                                  "(or --unlabeled-data train: the target's pool without its labels)")
        elif not any(n in adapting for n in names):
            raise ConfigError(f"--unlabeled-data is used by {sorted(adapting)} only, and none of them is in the "
                              f"comparison {names}; add one to --strategies, or drop --unlabeled-data")

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
                    "test_data": (str, type(None)), "unlabeled_data": (str, type(None)), "source_data": (str, type(None)), "classes": (str, list, type(None)), "image_size": (int, type(None)),
                    "image_margin": (int,), "image_center": (str,), "train": (dict,)}
        for name, types in expected.items():
            value = getattr(self, name)
            if not isinstance(value, types) or isinstance(value, bool):
                allowed = " or ".join("null" if t is type(None) else {"str": "text", "dict": "a mapping"}.get(
                    t.__name__, t.__name__) for t in types)
                raise ConfigError(f"{name} must be {allowed}; got {value!r} ({type(value).__name__})")
        if isinstance(self.classes, list) and not all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                      for c in self.classes):
            raise ConfigError(f"classes must list class names or numbers; got {self.classes!r}")

    @property
    def data_options(self) -> "DataOptions":
        """How the target dataset is read (the same DataOptions as finetune's)."""
        from ..data import DataOptions

        # the YAML keys and the --flags of the Data panel are DataOptions' own names (target: classes only)
        return DataOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DataOptions) if hasattr(self, f.name)})

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
        parsed = {parse_shots(str(v).strip() if isinstance(v, str) else v, allow_zero=True) for v in items}
    except DataError as err:
        raise ConfigError(f"--shots {value!r}: {err}") from None
    ints = sorted(p for p in parsed if p is not None)
    return [*ints, *(["all"] if None in parsed else [])]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a dict of CompareConfig fields (unknown keys are refused).

    The file's size, nesting depth and number of values (aliases expanded) are bounded before any
    Python object is built, so an alias bomb or `[[[[…` is refused fast with one line.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = read_bounded_yaml(path)
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as err:
        if "nesting depth" in str(err):  # libyaml's own bound, met before the depth check sees the events
            raise ConfigError(f"{path} is nested too deeply to be a comparison config (more than 1,000 levels); "
                              f"flatten the config") from None
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
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


def resolve_config(config_file: Path | None, flags: dict[str, Any], strategy_flags: Any,
                   train_flags: dict[str, Any]) -> tuple[CompareConfig, dict[str, Any]]:
    """YAML settings, overridden by every flag that was given; returns the config and execution settings."""
    settings = load_config_file(config_file) if config_file else {}
    execution = {k: settings.pop(k) for k in ("jobs", "threads") if k in settings}
    for key, value in execution.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1) and not (key == "threads" and value is None):
            raise ConfigError(f"{config_file}: {key} must be a whole number ≥ 1; got {value!r}")
    settings.update({k: v for k, v in flags.items() if v is not None})
    train = settings.get("train") or {}
    if not isinstance(train, dict):
        raise ConfigError(f"{config_file}: train must be a mapping of training settings, e.g. {{lr: 0.001, epochs: 20}}; "
                          f"got {train!r}")
    train = dict(train)
    train.update({k: v for k, v in train_flags.items() if v is not None})
    settings["train"] = train
    for required in ("pretrained", "data"):
        if not settings.get(required):
            raise ConfigError(f"compare needs {required.upper() if required == 'pretrained' else '--data'} "
                              f"(on the command line or in --config)")
    if isinstance(settings.get("strategies"), str):
        settings["strategies"] = [s.strip() for s in settings["strategies"].split(",") if s.strip()]
    if isinstance(strategy_flags, dict):  # {option: value} from the Python API (None: not given)
        strategy_flags = GivenFlags("strategy", {k: v for k, v in strategy_flags.items() if v is not None})
    if strategy_flags:
        settings["strategies"] = _apply_strategy_flags(settings.get("strategies"), strategy_flags)
    return CompareConfig(**settings), execution


def _apply_strategy_flags(strategies: list | None, given: Any) -> list[StrategySpec]:
    """Strategy flags (`--freeze 2`, `--lora-alpha 8`) go to the listed strategies that take them; a flag
    no listed strategy takes, or one several take with different meanings, is refused."""
    from ..strategies import list_strategies

    specs = [strategy_spec(s) for s in (strategies if strategies is not None else list_strategies())]
    routed = given.route(list(dict.fromkeys(s.name for s in specs)), refuse_unknown=True)
    for spec in specs:
        spec.options = {**spec.options, **routed.get(spec.name, {})}
    return [StrategySpec(s.name, s.options, s.label, s.train) for s in specs]


def read_bounded_yaml(path: Path) -> str:
    """The text of a YAML file whose size, depth and value count (aliases expanded) are within the limits.

    The check walks the parser's event stream (no objects are built): each collection counts its
    values, an anchor remembers the count of what it names, and an alias adds that count again.
    """
    import yaml

    from ..limits import check_limit, limit

    check_limit("yaml_bytes", path.stat().st_size, what=f"config file {path}", fix="shorten the file",
                error=ConfigError)
    text = path.read_bytes().decode("utf-8")
    max_depth, max_nodes = limit("yaml_depth"), limit("yaml_nodes")
    counts: list[tuple[int, str | None]] = [(0, None)]  # (values so far, anchor) per open collection
    anchored: dict[str, int] = {}
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.CollectionStartEvent):
            counts.append((1, event.anchor))
            if len(counts) - 1 > max_depth:
                check_limit("yaml_depth", len(counts) - 1, what=f"config file {path} (line {event.start_mark.line + 1})",
                            fix="flatten the config", error=ConfigError)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            n, anchor = counts.pop()
        elif isinstance(event, yaml.ScalarEvent):
            n, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            n, anchor = anchored.get(event.anchor, 1), None
        else:
            continue
        if anchor is not None:
            anchored[anchor] = n
        counts[-1] = (counts[-1][0] + n, counts[-1][1])
        if counts[-1][0] > max_nodes:
            check_limit("yaml_nodes", counts[-1][0], what=f"config file {path} (aliases expanded)",
                        fix="write the values out instead of repeating aliases", error=ConfigError)
    return text
