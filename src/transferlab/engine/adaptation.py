"""A domain-adaptation run: labelled source rows, K target labels per class (maybe none), unlabeled target rows.

It assembles what `train_run` trains on and leaves the loop alone:
- the labelled stream: the source rows (strategies with `needs_source`), then the target's K labelled
  rows per class; with neither (a source-free strategy at 0 shots) the unlabeled rows themselves,
  their targets UNLABELED (-1), so an epoch is one pass over them;
- the unlabeled stream: target inputs whose labels are never read;
- validation: the target's validation split with K > 0; at 0 shots the source's held-out rows (or
  none), reported but never used to pick weights (the run keeps its last weights);
- the head: the source head with its rows matched to the target classes by name, when the strategy
  starts from it (required when nothing labelled names the classes).
The test split is read only by `train_run`, after training, for the metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.splits import split_task
from ..data.task import Task, TaskSplit
from ..data.unlabeled import SourceRows, load_source_rows, load_unlabeled, match_classes
from ..errors import ConfigError
from ..models import Backbone, TransferModel
from ..strategies.base import Strategy
from ..strategies.domain import UNLABELED
from .run import train_run
from .train import RunResult, TrainConfig


def learns_without_labels(strategy: Strategy | type[Strategy]) -> bool:
    """True for a strategy that can adapt with no target labels at all (--shots 0)."""
    return bool(getattr(strategy, "learns_without_labels", False))


def needs_source(strategy: Strategy | type[Strategy]) -> bool:
    """True for a strategy whose labelled stream is labelled source data (--source-data)."""
    return bool(getattr(strategy, "needs_source", False))


def matched_source_head(head: nn.Module | None, source_names: list[str], task: Task) -> dict[str, torch.Tensor] | None:
    """The source head's weights with its output rows reordered to the target's classes, or None.

    None when there is no source head or some target class is not a source class (by name).
    """
    if head is None or not all(name in source_names for name in task.class_names):
        return None
    mapping = match_classes(source_names, task.class_names, source="the pretrained model", target=task.name)
    rows = torch.as_tensor([int(np.flatnonzero(mapping == t)[0]) for t in range(task.num_classes)])
    state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    state["out.weight"], state["out.bias"] = state["out.weight"][rows], state["out.bias"][rows]
    return state


def adaptation_split(task: Task, *, shots: int | None, seed: int, unlabeled: np.ndarray,
                     source: SourceRows | None) -> TaskSplit:
    """The split one adaptation run trains on (see the module docstring); `shots=0`: no target labels."""
    if shots != 0:  # K per class, or None: every labelled row
        target = split_task(task, shots=shots, seed=seed)
        x_lab, y_lab, x_val, y_val = target.x_train, target.y_train, target.x_val, target.y_val
    else:
        x_lab, y_lab = task.x_pool[:0], task.y_pool[:0]
        x_val, y_val = (source.x_val, source.y_val) if source is not None else (task.x_pool[:0], task.y_pool[:0])
    if source is not None:
        x_lab, y_lab = np.concatenate([source.x_train, x_lab]), np.concatenate([source.y_train, y_lab])
    if len(x_lab) == 0:
        x_lab, y_lab = unlabeled, np.full(len(unlabeled), UNLABELED, dtype=np.int64)
    return TaskSplit(task=task, x_train=x_lab, y_train=y_lab, x_val=x_val, y_val=y_val, shots=shots, seed=seed)


def adaptation_run(
    backbone: Backbone,
    task: Task,
    strategy: Strategy,
    cfg: TrainConfig,
    *,
    shots: int | None,
    unlabeled: np.ndarray,
    source: SourceRows | None = None,
    source_head: nn.Module | None = None,
    source_names: list[str] | None = None,
    **run_options: Any,
) -> tuple[TransferModel, RunResult, dict[str, float], TaskSplit]:
    """One domain-adaptation run; returns what `train_run` does plus the split it trained on.

    Example:
        >>> model, run, metrics, split = adaptation_run(backbone, task, create_strategy("dann"), TrainConfig(),
        ...     shots=0, unlabeled=task.x_pool, source=load_source_rows("mnist5k", prep, task))  # doctest: +SKIP
    """
    if len(unlabeled) == 0:
        raise ConfigError(f"the unlabeled data for {task.name} is empty; pass --unlabeled-data with target inputs")
    if needs_source(strategy) and source is None:
        raise ConfigError(f"strategy {strategy.name!r} learns from labelled source data; pass --source-data")
    head = matched_source_head(source_head, source_names or [], task) if getattr(strategy, "starts_from_source_head", False) else None
    if head is None and source is None and shots == 0:
        raise ConfigError(
            f"strategy {strategy.name!r} at --shots 0 has no labels at all, so its head must be the pretrained model's "
            f"source head with the target's classes {task.class_names}; the model's source classes are "
            f"{source_names or 'unknown (no source head)'} — use a model pretrained on these classes, or --shots K"
        )
    split = adaptation_split(task, shots=shots, seed=cfg.seed, unlabeled=unlabeled, source=source)
    if shots == 0:  # no target labels to select by: a fixed budget, the last weights
        cfg = dataclasses.replace(cfg, restore_best=False)
    model, run, metrics = train_run(backbone, split, strategy, cfg, unlabeled=unlabeled, initial_head=head, **run_options)
    return model, run, metrics, split


def check_adaptation_options(strategy: Strategy, *, shots: int | None, unlabeled_data: str | None,
                             source_data: str | None) -> bool:
    """Refuse option combinations that cannot mean anything; True when the run is a domain-adaptation run."""
    adapts = bool(getattr(strategy, "needs_unlabeled", False)) and learns_without_labels(strategy)
    if shots == 0 and not adapts:
        raise ConfigError(
            f"--shots 0 trains without any target label, which strategy {strategy.name!r} cannot do; use one that learns "
            f"from unlabeled target data ({', '.join(adaptation_strategies())}) with --unlabeled-data, or --shots K ≥ 1"
        )
    if adapts and unlabeled_data is None:
        raise ConfigError(
            f"strategy {strategy.name!r} learns from unlabeled target data; pass --unlabeled-data PATH, or "
            "--unlabeled-data train to use the target's own training pool without its labels"
        )
    if unlabeled_data is not None and not adapts:
        raise ConfigError(
            f"strategy {strategy.name!r} does not use unlabeled data; drop --unlabeled-data, or use one that does "
            f"({', '.join(adaptation_strategies())})"
        )
    if source_data is not None and not needs_source(strategy):
        raise ConfigError(
            f"strategy {strategy.name!r} uses no labelled source data; drop --source-data "
            f"(strategies that use it: {', '.join(adaptation_strategies(source=True))})"
        )
    return adapts


def adaptation_strategies(*, source: bool | None = None) -> list[str]:
    """Registered strategies that learn from unlabeled target data (`source=True`: those that use source data)."""
    from ..strategies import list_strategies, strategy_class

    names = [n for n in list_strategies() if getattr(strategy_class(n), "needs_unlabeled", False)
             and learns_without_labels(strategy_class(n))]
    return names if source is None else [n for n in names if needs_source(strategy_class(n)) == source]


def default_source_data(config: dict[str, Any], model_name: str) -> str:
    """The source task the pretrained model records, when it can be read offline here."""
    from pathlib import Path

    from ..data.builtin import DATASETS

    record = config.get("source_task") or {}
    data = record.get("path") or record.get("data")
    if data is None:
        raise ConfigError(f"{model_name} records no source task; pass --source-data with its labelled source data")
    if data not in DATASETS and not Path(data).expanduser().exists():
        raise ConfigError(
            f"{model_name} was pretrained on {data!r}, which is not here; pass --source-data with the labelled "
            "source data (prepared as the model's inputs)"
        )
    return str(data)


def source_only_metrics(backbone: Backbone, source_head: nn.Module | None, source_names: list[str],
                        task: Task) -> dict[str, float] | None:
    """The source-only baseline: the pretrained backbone and its source head, applied to the target's test split.

    The head's outputs are restricted to the target's classes, matched by name; None when a target
    class is not a source class (or there is no source head): the baseline does not apply.
    """
    from ..models.head import HeadSpec
    from .run import _test_metrics

    head = matched_source_head(source_head, source_names, task)
    if head is None:
        return None
    model = TransferModel(backbone, HeadSpec(num_outputs=task.num_classes))
    model.head.load_state_dict(head)
    return _test_metrics(model.eval(), task)


@dataclass
class AdaptationInputs:
    """What a domain-adaptation run reads besides the target task: unlabeled rows, source rows, the source head."""

    unlabeled_data: str
    unlabeled: np.ndarray
    source_data: str | None
    source: SourceRows | None
    source_head: nn.Module | None
    source_names: list[str]

    def run_inputs(self) -> dict[str, Any]:
        """Keyword arguments of `adaptation_run`."""
        return {"unlabeled": self.unlabeled, "source": self.source, "source_head": self.source_head,
                "source_names": self.source_names}

    def record(self, strategy: Strategy) -> dict[str, Any]:
        """The provenance kept in the adapted model's config.json."""
        return {"unlabeled_data": self.unlabeled_data, "n_unlabeled": int(len(self.unlabeled)),
                "source_data": self.source_data, "n_source": int(len(self.source.y_train)) if self.source else 0,
                "source_classes_matched": self.source.matched if self.source else None,
                "model_selection": getattr(strategy, "model_selection", "")}


def prepare_adaptation(pretrained: Any, task: Task, model_name: str, *, unlabeled_data: str, source_data: str | None,
                       with_source: bool, seed: int = 0) -> AdaptationInputs:
    """Read the unlabeled rows and, `with_source` (a strategy needs them), the labelled source rows.

    `pretrained` is the loaded pretrained model (artifacts.LoadedModel): its recorded source task is the
    default source data, read with its recorded preprocessing; its source head may start the head.
    """
    unlabeled = load_unlabeled(unlabeled_data, task)
    source = None
    if with_source:
        source_data = source_data or default_source_data(pretrained.config, model_name)
        source = load_source_rows(source_data, pretrained.config.get("preprocessing") or {}, task, seed=seed)
    names = list((pretrained.config.get("source_task") or {}).get("label_names") or pretrained.label_names or [])
    return AdaptationInputs(unlabeled_data=unlabeled_data, unlabeled=unlabeled, source_data=source_data, source=source,
                            source_head=pretrained.source_head, source_names=names)
