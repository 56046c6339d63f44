"""The provenance record a trained model's config.json carries: one builder for pretrain, finetune and compare."""

from __future__ import annotations

from typing import Any

from ..data.task import Task, TaskSplit
from .runtime import run_environment
from .train import RunResult


def task_record(task: Task, split: TaskSplit, test_data: str | None = None, path: str | None = None) -> dict[str, Any]:
    """Which task and split a run trained on: names, sizes, shots and seed (plus where the data came from)."""
    record = {
        "data": task.name,
        "test_data": test_data,
        "source": task.source,
        "label_names": task.class_names,
        "target": task.target,
        "shots": split.shots if split.shots is not None else "all",
        "seed": split.seed,
        "n_train": int(len(split.y_train)),
        "n_val": int(len(split.y_val)),
        "n_test": int(len(task.y_test)),
    }
    return record | ({"path": path} if path is not None else {})


def model_record(task: Task, split: TaskSplit, run: RunResult, metrics: dict[str, float], *, threads: int,
                 test_data: str | None = None, path: str | None = None, label_column: str | None = None,
                 strategy: Any = None, pretrained: Any = None) -> dict[str, Any]:
    """The `info` of a saved model's config.json.

    A pretrained model (`strategy` None) records its source task, `source_test_*`/`source_val_*` metrics
    and its training; a fine-tuned one (`strategy` and `pretrained`, the LoadedModel it started from)
    records the source task it inherits, its target task, where it came from (path, sha256), its
    `test_*`/`val_*` metrics and the strategy with its options.
    """
    preprocessing = task.preprocessing | ({"label_column": label_column} if label_column is not None else {})
    training = {"train": run.config, "train_seconds": run.train_seconds, "epochs_run": run.epochs}
    # entries held at their pretrained values while their parameter trained (models/pinning.py)
    kept = {"kept_switched_off": run.kept_switched_off} if getattr(run, "kept_switched_off", None) else {}
    common = {"label_names": task.class_names, "preprocessing": preprocessing, "target": task.target,
              # numeric targets: trained on (y − mean) / std, folded back into the output layer (engine/run.py)
              "target_scale": getattr(run, "target_scale", None)}
    if strategy is None:
        return {
            "source_task": task_record(task, split, test_data, path),
            **common,
            "metrics": {f"source_test_{k}": v for k, v in metrics.items() if k != "n"}
            | {f"source_val_{run.val_metric}": run.val_value},
            "training": training | {"history": run.history, "environment": run_environment(threads)} | kept,
        }
    return {
        "source_task": pretrained.config.get("source_task"),
        "target_task": task_record(task, split, test_data, path),
        **common,
        "pretrained_from": {"path": str(pretrained.path), "sha256": pretrained.config["weights"]["sha256"]},
        "metrics": {f"test_{k}": v for k, v in metrics.items() if k != "n"} | {f"val_{run.val_metric}": run.val_value},
        "training": {"strategy": strategy.name, "strategy_options": strategy.options()} | training | {
            "trainable_params": run.trainable_params, "cached_blocks": run.cached_blocks, "history": run.history,
            "environment": run_environment(threads)} | kept,
    }
