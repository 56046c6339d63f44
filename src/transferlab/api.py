"""The public Python API: pretrain, finetune, evaluate, predict, load. The CLI calls exactly these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .artifacts import LoadedModel, load_model_folder, resolve_model, save_model_folder
from .data import check_input_fits, load_task, split_task
from .data.task import Task, TaskSplit
from .engine import RunResult, TrainConfig, classification_metrics, fit, seed_everything
from .engine.progress import training_progress
from .errors import ArtifactError, ConfigError
from .models import Backbone, HeadSpec, TransferModel, create_backbone
from .strategies import Strategy, create_strategy


@dataclass
class PretrainResult:
    """What `pretrain` did. `to_json()` has the CLI's --json keys."""

    out: str
    val_accuracy: float
    test_accuracy: float
    train_seconds: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "history"}


@dataclass
class FinetuneResult:
    """What `finetune` did. `to_json()` has the CLI's --json keys."""

    out: str | None
    strategy: str
    shots: int | str
    seed: int
    val_accuracy: float
    test_accuracy: float
    macro_f1: float
    train_seconds: float
    epochs: int
    trainable_params: int
    total_params: int
    samples_seen: int
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "history"}


@dataclass
class EvalResult:
    test_accuracy: float
    macro_f1: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))


def _task_record(task: Task, split: TaskSplit) -> dict[str, Any]:
    return {
        "data": task.name,
        "source": task.source,
        "label_names": task.class_names,
        "shots": split.shots if split.shots is not None else "all",
        "seed": split.seed,
        "n_train": int(len(split.y_train)),
        "n_val": int(len(split.y_val)),
        "n_test": int(len(task.y_test)),
    }


def train_run(
    backbone: Backbone, split: TaskSplit, strategy: Strategy, cfg: TrainConfig, *, progress: str | None = None
) -> tuple[TransferModel, RunResult, dict[str, float]]:
    """One run: put the strategy's head on `backbone` (modified in place), train, evaluate on the test split.

    The test split is read only here, after training, for the returned metrics; training and
    early stopping see only the train and validation splits.
    """
    seed_everything(cfg.seed)  # the new head and any re-initialisation depend on the seed only
    model = TransferModel(backbone, strategy.head_spec(split.task.num_classes))
    strategy.prepare(model)
    x_tr, y_tr = _tensors(split.x_train, split.y_train)
    x_va, y_va = _tensors(split.x_val, split.y_val)
    with training_progress(progress or "", enabled=progress is not None) as hooks:
        result = fit(model, strategy, x_tr, y_tr, x_va, y_va, cfg, on_step=hooks.on_step, on_epoch_end=hooks.on_epoch_end)
    x_te, y_te = _tensors(split.x_test, split.y_test)
    metrics = classification_metrics(model, x_te, y_te, split.task.num_classes)
    return model, result, metrics


def pretrain(
    data: str = "mnist5k",
    *,
    out: str | Path,
    backbone: str = "cnn",
    backbone_config: dict[str, Any] | None = None,
    classes: str | list | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    label_column: str = "label",
    train: TrainConfig | None = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> PretrainResult:
    """Pretrain a backbone on a source task and save it without its output layer (seed §2.2.1).

    Example:
        >>> r = pretrain("mnist5k", classes="0-4", backbone="cnn", out="models/src",
        ...              train=TrainConfig(epochs=5))  # doctest: +SKIP
        >>> r.val_accuracy  # doctest: +SKIP
    """
    cfg = train or TrainConfig(epochs=5)
    task = load_task(data, classes=classes, image_size=image_size, image_margin=image_margin, label_column=label_column)
    split = split_task(task, shots=None, seed=cfg.seed)
    seed_everything(cfg.seed)
    net = create_backbone(backbone, task.input_spec, **(backbone_config or {}))
    strategy = create_strategy("full")
    model, run, metrics = train_run(net, split, strategy, cfg, progress=None if quiet else f"pretrain {backbone}")
    info = {
        "source_task": _task_record(task, split),
        "label_names": task.class_names,
        "preprocessing": task.preprocessing,
        "metrics": {"source_val_accuracy": run.val_accuracy, "source_test_accuracy": metrics["accuracy"]},
        "training": {"train": run.config, "train_seconds": run.train_seconds, "epochs_run": run.epochs, "history": run.history},
    }
    save_model_folder(out, backbone=model.backbone, head=None, head_spec=None, info=info, overwrite=overwrite)
    return PretrainResult(
        out=str(out),
        val_accuracy=run.val_accuracy,
        test_accuracy=metrics["accuracy"],
        train_seconds=run.train_seconds,
        epochs=run.epochs,
        history=run.history,
    )


def load(model: str | Path, *, module: nn.Sequential | None = None) -> LoadedModel:
    """Load a model folder (by path or store name), verifying its sha256. `.model` is the network.

    Example:
        >>> m = load("models/tgt")  # doctest: +SKIP
        >>> m.model(torch.zeros(1, 1, 28, 28)).shape  # doctest: +SKIP
    """
    return load_model_folder(resolve_model(model), module=module)


def finetune(
    pretrained: str | Path,
    data: str,
    *,
    strategy: str = "full",
    strategy_options: dict[str, Any] | None = None,
    shots: int | None = None,
    out: str | Path | None = None,
    classes: str | list | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    label_column: str = "label",
    train: TrainConfig | None = None,
    overwrite: bool = False,
    quiet: bool = True,
    module: nn.Sequential | None = None,
) -> FinetuneResult:
    """Adapt a pretrained model to a target task with a new output layer (seed §2.2.2), by one strategy.

    `shots=K` trains on K labelled examples per class (None: all). The test split is never trained on.

    Example:
        >>> r = finetune("models/src", "digits", strategy="partial", strategy_options={"freeze": 2},
        ...              shots=10, image_size=28, image_margin=4, out="models/tgt")  # doctest: +SKIP
    """
    cfg = train or TrainConfig()
    strat = create_strategy(strategy, **(strategy_options or {}))
    source = load(pretrained, module=module)
    task = load_task(data, classes=classes, image_size=image_size, image_margin=image_margin, label_column=label_column)
    check_input_fits(task, source.input_spec, model_name=str(pretrained))
    split = split_task(task, shots=shots, seed=cfg.seed)
    model, run, metrics = train_run(source.backbone, split, strat, cfg, progress=None if quiet else f"{strat.describe()}")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if out is not None:
        info = {
            "source_task": source.config.get("source_task"),
            "target_task": _task_record(task, split),
            "label_names": task.class_names,
            "preprocessing": task.preprocessing,
            "pretrained_from": {"path": str(source.path), "sha256": source.config["weights"]["sha256"]},
            "metrics": {"val_accuracy": run.val_accuracy, "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"]},
            "training": {
                "strategy": strat.name,
                "strategy_options": strat.options(),
                "train": run.config,
                "train_seconds": run.train_seconds,
                "epochs_run": run.epochs,
                "trainable_params": trainable,
                "history": run.history,
            },
        }
        save_model_folder(out, backbone=model.backbone, head=model.head, head_spec=model.head_spec, info=info, overwrite=overwrite)
    return FinetuneResult(
        out=str(out) if out is not None else None,
        strategy=strat.name,
        shots=split.shots if split.shots is not None else "all",
        seed=cfg.seed,
        val_accuracy=run.val_accuracy,
        test_accuracy=metrics["accuracy"],
        macro_f1=metrics["macro_f1"],
        train_seconds=run.train_seconds,
        epochs=run.epochs,
        trainable_params=trainable,
        total_params=total,
        samples_seen=run.samples_seen,
        history=run.history,
    )


def _finetuned(model: str | Path, module: nn.Sequential | None) -> LoadedModel:
    loaded = load(model, module=module)
    if loaded.model is None:
        raise ArtifactError(
            f"{model} is a pretrained backbone without an output layer, so it cannot classify; "
            f"fine-tune it first: transferlab finetune {model} --data DATA --out OUT"
        )
    return loaded


def evaluate(
    model: str | Path,
    data: str | None = None,
    *,
    label_column: str = "label",
    module: nn.Sequential | None = None,
) -> EvalResult:
    """Accuracy and macro-F1 of a fine-tuned model on the fixed test split of `data`.

    The model's recorded preprocessing (image size, margin, class selection) is applied, so a model
    is evaluated on exactly the kind of input it was trained on. `data` defaults to its target task.

    Example:
        >>> evaluate("models/tgt", "digits").test_accuracy  # doctest: +SKIP
    """
    loaded = _finetuned(model, module)
    prep = loaded.config.get("preprocessing", {})
    data = data or (loaded.config.get("target_task") or {}).get("data")
    if not data:
        raise ConfigError(f"{model} records no target task; pass --data")
    task = load_task(
        data,
        classes=prep.get("classes"),
        image_size=prep.get("image_size"),
        image_margin=prep.get("image_margin") or 0,
        label_column=label_column,
    )
    check_input_fits(task, loaded.input_spec, model_name=str(model))
    if task.class_names != loaded.label_names:
        raise ConfigError(
            f"{data} has classes {task.class_names} but {model} predicts {loaded.label_names}; "
            "evaluate on data with the model's classes"
        )
    x, y = _tensors(task.x_test, task.y_test)
    m = classification_metrics(loaded.model, x, y, task.num_classes)
    return EvalResult(test_accuracy=m["accuracy"], macro_f1=m["macro_f1"], n=m["n"])


def predict(
    model: str | Path, inputs: str | Path | np.ndarray, *, module: nn.Sequential | None = None
) -> list[dict[str, Any]]:
    """Class names and probabilities for new inputs: an image file or folder, an .npz with `x`, a CSV, or an array.

    Example:
        >>> predict("models/tgt", "my_digits/")[0]  # doctest: +SKIP
        {'input': 'a.png', 'label': '7', 'probability': 0.98, 'probabilities': {...}}
    """
    from .data import load_inputs, preprocess_inputs
    from .engine import predict_logits

    loaded = _finetuned(model, module)
    prep = loaded.config.get("preprocessing", {})
    if isinstance(inputs, np.ndarray):
        x, names, what = preprocess_inputs(inputs, prep), [str(i) for i in range(len(inputs))], "the array"
    else:
        (x, names), what = load_inputs(inputs, preprocessing=prep), str(inputs)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    loaded.backbone.check_input(xt, what=what)
    probs = predict_logits(loaded.model, xt).softmax(1)
    labels = loaded.label_names
    rows = []
    for name, p in zip(names, probs.tolist()):
        best = int(np.argmax(p))
        rows.append(
            {"input": name, "label": labels[best], "probability": p[best], "probabilities": dict(zip(labels, p))}
        )
    return rows
