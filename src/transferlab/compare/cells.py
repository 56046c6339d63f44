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


def checkpoint_name(cell: Cell) -> str:
    """The file an unfinished cell's checkpoint is kept in, under OUT/checkpoints/."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in cell.label)
    return f"{safe}-{cell.shots}shot-seed{cell.seed}.pt"


def model_name(cell: Cell) -> str:
    """The folder a cell's seed-0 model is saved in, under OUT/models/ (--save-models)."""
    return f"{cell.label}-{cell.shots}shot"


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
    adaptation: Any = None  # engine.adaptation.AdaptationInputs when the comparison has unlabeled target data

    def source_only_applies(self) -> bool:
        """True when the pretrained model's source head names every target class (source-only is a baseline)."""
        from ..engine.adaptation import matched_source_head

        names = (self.source.config.get("source_task") or {}).get("label_names") or []
        return not self.task.is_numeric and matched_source_head(self.source.source_head, names, self.task) is not None

    def runs_at(self, spec: StrategySpec, shots: int | str) -> bool:
        """At 0 labels only strategies that learn without target labels run."""
        from ..engine.adaptation import learns_without_labels
        from ..strategies import strategy_class

        return shots != 0 or learns_without_labels(strategy_class(spec.name))

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

    def _source_only(self) -> dict[str, Any]:
        """The source-only baseline's record: no training, the same test split as every cell."""
        from ..engine.adaptation import source_only_metrics

        names = (self.source.config.get("source_task") or {}).get("label_names") or []
        m = source_only_metrics(copy.deepcopy(self.source.backbone), self.source.source_head, names, self.task)
        return {"status": "finished", "test_accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_test": m["n"],
                "train_seconds": 0.0, "epochs": 0, "steps": 0, "samples_seen": 0, "n_train": 0, "trainable_params": 0,
                "total_params": sum(p.numel() for p in self.source.backbone.parameters()), "history": []}

    def _run(self, cell: Cell) -> dict[str, Any]:
        # long: one cell end to end (reference cells, strategy, train, checkpoint, saved model, run record), read top to bottom
        from ..engine.provenance import model_record
        from ..engine.run import train_run
        from ..artifacts import save_model_folder
        from ..strategies import create_strategy

        start = time.perf_counter()
        if cell.spec is None:
            from .reference import SOURCE_ONLY, tfidf_logreg

            if cell.reference == SOURCE_ONLY:
                return self._source_only() | {"cell_seconds": time.perf_counter() - start}
            return tfidf_logreg(self.split(cell.shots, cell.seed), cell.seed) | {"cell_seconds": time.perf_counter() - start}
        strategy = create_strategy(cell.spec.name, **cell.spec.options)
        cfg = TrainConfig(**(self.train | cell.spec.train), seed=cell.seed, threads=self.threads)
        checkpoint = None
        if self.checkpoints_dir is not None:
            checkpoint = self.checkpoints_dir / checkpoint_name(cell)
        options = {"cache": self._features, "cache_key": self.source.config["weights"]["sha256"],
                   "checkpoint": checkpoint, "resume": True, "checkpoint_interval": CHECKPOINT_INTERVAL}
        if getattr(strategy, "needs_unlabeled", False) and self.adaptation is not None:
            from ..engine.adaptation import adaptation_run

            shots = None if cell.shots == "all" else int(cell.shots)
            model, run, metrics, split = adaptation_run(copy.deepcopy(self.source.backbone), self.task, strategy, cfg,
                                                        shots=shots, **self.adaptation.run_inputs(), **options)
        else:
            split = self.split(cell.shots, cell.seed)
            model, run, metrics = train_run(copy.deepcopy(self.source.backbone), split, strategy, cfg, **options)
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)  # the run is recorded next; its checkpoint has done its job
        forward_total, forward_trainable = flops_per_example(model, model.backbone.example_input())
        if self.models_dir is not None and cell.seed == 0:
            info = model_record(self.task, split, run, metrics, threads=self.threads, strategy=strategy,
                                pretrained=self.source)
            save_model_folder(self.models_dir / model_name(cell), backbone=model.backbone,
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
