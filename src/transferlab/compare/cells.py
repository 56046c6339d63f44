"""One cell of a comparison grid run to completion: the same data for every strategy at a (shots, seed)."""

from __future__ import annotations

import copy
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import LoadedModel
from ..data.task import Task, TaskSplit
from ..engine import FeatureCache, TrainConfig
from ..engine.runtime import run_environment
from .config import StrategySpec
from .flops import flops_per_example, training_flops


# A grid's runs are often seconds long: checkpoint a cell at most once a minute, so only long runs pay.
CHECKPOINT_INTERVAL = 60.0


@dataclass(frozen=True)
class Cell:
    spec: StrategySpec | None  # None: the reference baseline named by `reference` (not a strategy)
    shots: int | str
    seed: int
    reference: str | None = None

    @property
    def label(self) -> str:
        return self.spec.label if self.spec is not None else str(self.reference)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.label, str(self.shots), self.seed)

    def describe(self) -> str:
        return f"{self.label} · {self.shots} shots · seed {self.seed}"


@dataclass
class CellRunner:
    """Runs cells against one loaded task and pretrained model; splits are drawn once per (shots, seed)."""

    task: Task
    source: LoadedModel
    train: dict[str, Any]
    threads: int
    models_dir: Path | None = None
    checkpoints_dir: Path | None = None  # unfinished runs resume from here after a kill
    _splits: dict[tuple[str, int], TaskSplit] = field(default_factory=dict)
    # Outputs of frozen prefixes of the pretrained backbone, shared by every seed and strategy here.
    _features: FeatureCache = field(default_factory=FeatureCache)

    def split(self, shots: int | str, seed: int) -> TaskSplit:
        from ..data import split_task

        key = (str(shots), seed)
        if key not in self._splits:
            self._splits[key] = split_task(self.task, shots=None if shots == "all" else int(shots), seed=seed)
        return self._splits[key]

    def run(self, cell: Cell) -> dict[str, Any]:
        """Train and evaluate one cell; a failure is recorded as a failed run, not raised."""
        spec = cell.spec
        base = {"strategy": cell.label, "strategy_name": spec.name if spec else cell.reference,
                "options": spec.options if spec else {}, "shots": cell.shots, "seed": cell.seed,
                "threads": self.threads, "environment": run_environment(self.threads)}
        try:
            return base | self._run(cell)
        except Exception as err:  # noqa: BLE001 — one bad cell must not lose the others
            return base | {"status": "failed", "error": f"{type(err).__name__}: {err}",
                           "traceback": traceback.format_exc(limit=5)}

    def _run(self, cell: Cell) -> dict[str, Any]:
        from ..api import _task_record, train_run
        from ..artifacts import save_model_folder
        from ..strategies import create_strategy

        start = time.perf_counter()
        split = self.split(cell.shots, cell.seed)
        if cell.spec is None:
            from .reference import tfidf_logreg

            return tfidf_logreg(split, cell.seed) | {"cell_seconds": time.perf_counter() - start}
        strategy = create_strategy(cell.spec.name, **cell.spec.options)
        cfg = TrainConfig(**(self.train | cell.spec.train), seed=cell.seed, threads=self.threads)
        checkpoint = None
        if self.checkpoints_dir is not None:
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cell.label)
            checkpoint = self.checkpoints_dir / f"{safe}-{cell.shots}shot-seed{cell.seed}.pt"
        model, run, metrics = train_run(copy.deepcopy(self.source.backbone), split, strategy, cfg, cache=self._features,
                                        cache_key=self.source.config["weights"]["sha256"], checkpoint=checkpoint,
                                        resume=True, checkpoint_interval=CHECKPOINT_INTERVAL)
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)  # the run is recorded next; its checkpoint has done its job
        forward_total, forward_trainable = flops_per_example(model, model.backbone.example_input())
        if self.models_dir is not None and cell.seed == 0:
            info = {
                "source_task": self.source.config.get("source_task"),
                "target_task": _task_record(self.task, split),
                "label_names": self.task.class_names,
                "preprocessing": self.task.preprocessing,
                "target": self.task.target,
                "metrics": {"val_accuracy": run.val_accuracy, "test_accuracy": metrics["accuracy"]},
                "training": {"strategy": strategy.name, "strategy_options": strategy.options(), "train": run.config},
            }
            save_model_folder(self.models_dir / f"{cell.spec.label}-{cell.shots}shot", backbone=model.backbone,
                              head=model.head, head_spec=model.head_spec, info=info, overwrite=True)
        return {
            "status": "finished",
            "test_accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "balanced_accuracy": metrics.get("balanced_accuracy"),
            "majority_rate": metrics.get("majority_rate"),
            "n_test": metrics["n"],
            # per test example, for verdicts paired by example and intervals that count the test split's noise
            "test_predictions": run.test_predictions,
            "test_labels": split.y_test.astype(int).tolist(),
            "val_accuracy": run.val_accuracy,
            "train_seconds": run.train_seconds,
            "epochs": run.epochs,
            "best_epoch": run.best_epoch,
            "cached_blocks": run.cached_blocks,
            "steps": run.steps,
            "samples_seen": run.samples_seen,
            "n_train": int(len(split.y_train)),
            "trainable_params": run.trainable_params,
            "total_params": sum(p.numel() for p in model.parameters()),
            "flops_per_example_forward": forward_total,
            "train_flops": training_flops(forward_total, forward_trainable, run.samples_seen),
            "eval_seconds": run.eval_seconds,
            "cell_seconds": time.perf_counter() - start,  # everything: split, features, training, test, saving
            "history": run.history,
        }
