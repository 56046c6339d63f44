"""The public Python API: pretrain, finetune, evaluate, predict, load. The CLI calls exactly these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .artifacts import LoadedModel, load_model, load_model_folder, resolve_model, save_model_folder
from .data import DataOptions, check_input_fits, split_task
from .data.task import Task, TaskSplit
from .engine import RunResult, TrainConfig, seed_everything
from .engine.adaptation import adaptation_run, check_adaptation_options, needs_source, prepare_adaptation
from .engine.run import _test_metrics, train_run  # noqa: F401  (train_run: public here too)
from .engine.provenance import model_record
from .engine.runtime import run_environment
from .engine.distributed import Session, distributed_session
from .engine.progress import Progress, resolve_progress
from .errors import ArtifactError, ConfigError
from .models import Backbone, create_backbone, resolve_backbone_ref
from .strategies import create_strategy
from .tracking import Tracker, check_tracking, tracking_run


# Keys a numeric-target run adds; left out of a classification run's JSON (where they are None).
_NUMERIC_KEYS = {"val_mse", "test_mse", "test_mae", "test_r2", "mean_predictor_mse", "mean_predictor_r2", "ridge_mse",
                 "ridge_r2"}
# Keys a classification run adds; left out of a numeric run's JSON.
_CLASS_KEYS = {"balanced_accuracy", "majority_rate"}


def _json_keys(result: Any) -> dict[str, Any]:
    """The CLI's --json object: every contract key, plus the numeric-target or class keys where they apply."""
    return {k: v for k, v in asdict(result).items()
            if k != "history" and not (k in _NUMERIC_KEYS | _CLASS_KEYS and v is None)}


def _references(task: Task, metrics: dict[str, Any]) -> dict[str, Any]:
    """Reference lines on the same split (numeric: mean predictor, ridge) and warnings when the model is below them."""
    from .engine.references import metric_warnings, regression_references

    refs = regression_references(task.x_pool, task.y_pool, task.x_test, task.y_test) if task.is_numeric else {}
    return refs | {"warnings": metric_warnings(metrics | refs, task.class_names, task.y_test)}


@dataclass
class PretrainResult:
    """What `pretrain` did. `to_json()` has the CLI's --json keys."""

    out: str
    val_accuracy: float | None
    test_accuracy: float | None
    train_seconds: float
    epochs: int
    val_mse: float | None = None  # numeric targets only
    test_mse: float | None = None
    mean_predictor_mse: float | None = None  # numeric: reference lines on the same split
    ridge_mse: float | None = None
    balanced_accuracy: float | None = None  # classes only
    majority_rate: float | None = None
    warnings: list[str] = field(default_factory=list)
    seed: int | None = None
    threads: int | None = None
    environment: dict[str, Any] = field(default_factory=dict)  # torch, python, platform, cpu (run_environment)
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _json_keys(self)


@dataclass
class FinetuneResult:
    """What `finetune` did. `to_json()` has the CLI's --json keys."""

    out: str | None
    strategy: str
    shots: int | str
    seed: int
    val_accuracy: float | None
    test_accuracy: float | None
    macro_f1: float | None
    train_seconds: float
    epochs: int
    trainable_params: int
    total_params: int
    samples_seen: int
    val_mse: float | None = None  # numeric targets only
    test_mse: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    mean_predictor_mse: float | None = None  # numeric: reference lines on the same split
    mean_predictor_r2: float | None = None
    ridge_mse: float | None = None
    ridge_r2: float | None = None
    balanced_accuracy: float | None = None  # classes only
    majority_rate: float | None = None
    warnings: list[str] = field(default_factory=list)  # below the majority class or the mean predictor
    threads: int | None = None
    environment: dict[str, Any] = field(default_factory=dict)  # torch, python, platform, cpu (run_environment)
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _json_keys(self)


@dataclass
class EvalResult:
    """Test-split metrics: accuracy and macro-F1 for classes; MSE, MAE and R² for numeric targets."""

    test_accuracy: float | None
    macro_f1: float | None
    n: int
    test_mse: float | None = None
    test_mae: float | None = None
    test_r2: float | None = None
    mean_predictor_mse: float | None = None  # numeric: reference lines on the same split
    mean_predictor_r2: float | None = None
    ridge_mse: float | None = None
    ridge_r2: float | None = None
    balanced_accuracy: float | None = None  # classes only
    majority_rate: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _json_keys(self)


def _metric_fields(run: RunResult, metrics: dict[str, float]) -> dict[str, float | None]:
    """Result fields for classes (accuracy, macro-F1) or numbers (MSE, MAE, R²); the others are None."""
    if "accuracy" in metrics:
        return {"val_accuracy": run.val_value, "test_accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                "balanced_accuracy": metrics.get("balanced_accuracy"), "majority_rate": metrics.get("majority_rate")}
    return {"val_accuracy": None, "test_accuracy": None, "macro_f1": None, "val_mse": run.val_value,
            "test_mse": metrics["mse"], "test_mae": metrics["mae"], "test_r2": metrics["r2"]}


def _run_tags(session: Session, cfg: TrainConfig) -> dict[str, Any]:
    """Where a run trains, for its tracking record: the resolved device and the process count."""
    from .engine.device import resolve_device

    return {"device": resolve_device(cfg.device).type, "precision": cfg.precision, "processes": session.world}


def _log_result(tracker: Tracker, run: RunResult, metrics: dict[str, float], out: str | Path | None) -> None:
    """A tracked run's final metrics and its model folder (the safetensors folder, no pickles)."""
    final = {f"test_{k}": v for k, v in metrics.items() if k != "n"}
    # The learning rates actually used (params hold the settings as given: None = the backbone's default).
    rates = {f"resolved_{k}": float(run.config[k]) for k in ("lr", "backbone_lr") if run.config.get(k) is not None}
    tracker.log_metrics(final | rates | {f"best_val_{run.val_metric}": run.val_value, "train_seconds": run.train_seconds,
                                         "epochs_run": run.epochs})
    if out is not None:
        tracker.log_model_folder(Path(out))


def _run_folder(out: str | Path | None, *, overwrite: bool, resume: bool) -> Path | None:
    """Where a run keeps its checkpoint: beside --out in a run-private folder (`.NAME.run`), never inside it.

    So a run killed while it was to replace a model (--overwrite) leaves the old folder exactly as it
    was, a killed first run leaves no half-made --out, and `--resume` finds the checkpoint after any kill.
    """
    import os

    from .artifacts.model_folder import CHECKPOINT, CONFIG, check_writable, is_run_folder, run_dir, writable_model_path

    if out is None:
        if resume:
            raise ConfigError("--resume continues the run saved beside --out; pass --out DIR")
        return None
    out = writable_model_path(out)
    checkpoint = run_dir(out) / CHECKPOINT
    if is_run_folder(out):  # an older transferlab kept an unfinished run's checkpoint inside --out
        if not resume and not overwrite:
            raise ArtifactError(f"{out} holds an unfinished run ({CHECKPOINT}); pass --resume to continue it, "
                                "or --overwrite to start anew")
        if resume and not checkpoint.is_file():
            checkpoint.parent.mkdir(exist_ok=True)
            os.replace(out / CHECKPOINT, checkpoint)  # continue it from the run-private place
        else:
            (out / CHECKPOINT).unlink()
        if not any(out.iterdir()):
            out.rmdir()
    if resume and not checkpoint.is_file() and (out / CONFIG).is_file():
        raise ArtifactError(f"{out} holds a finished model; there is nothing to resume (no unfinished run is saved "
                            f"beside it at {checkpoint}) — drop --resume")
    if checkpoint.is_file() and not resume:
        if not overwrite:
            raise ArtifactError(f"{out} has an unfinished run ({checkpoint}); pass --resume to continue it, "
                                "or --overwrite to start anew")
        checkpoint.unlink()
    check_writable(out, overwrite=overwrite)
    return checkpoint  # its folder appears with the first checkpoint: a run that fails at once leaves nothing


def _check_out_name(out: str | Path | None) -> None:
    """--out's name must fit the file system with transferlab's temporary names: said before any data is read."""
    from .artifacts.ownership import check_name_length

    if out is not None:
        check_name_length(out)


def _end_run(checkpoint: Path | None) -> None:
    """The model is saved: remove the run's checkpoint and its run-private folder."""
    from .artifacts.files import remove_stale

    if checkpoint is None:
        return
    checkpoint.unlink(missing_ok=True)
    remove_stale(checkpoint)  # temporary checkpoint files of killed writers
    try:
        checkpoint.parent.rmdir()
    except OSError:  # not empty (a live writer's file) or already gone
        pass


def _rank_checkpoint(out: str | Path | None) -> Path | None:
    """The checkpoint path of a data-parallel process other than rank 0 (which checks and creates it)."""
    from .artifacts.model_folder import CHECKPOINT, run_dir, writable_model_path

    return None if out is None else run_dir(writable_model_path(out)) / CHECKPOINT


def pretrain(
    data: str = "mnist5k",
    *,
    out: str | Path,
    backbone: str | Backbone = "cnn",
    backbone_config: dict[str, Any] | None = None,
    data_options: DataOptions | None = None,
    classes: str | list | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    image_center: str = "box",
    label_column: str = "label",
    target: str = "class",
    text_column: str = "text",
    test_data: str | None = None,
    train: TrainConfig | None = None,
    overwrite: bool = False,
    quiet: bool | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    track: str | None = None,
    tracking_uri: str | None = None,
    progress: Progress = None,
) -> PretrainResult:
    """Pretrain a backbone on a source task and save it without its output layer (seed §2.2.1).

    `backbone` is a registered name (with `backbone_config`) or a Backbone, e.g. your own
    `nn.Sequential` wrapped by `wrap_module` (then pass the same module to `finetune`/`load`).
    `track="mlflow"|"tensorboard"` records params, per-epoch metrics and the model folder
    (`tracking_uri`: an MLflow URI or a TensorBoard log folder). Started by torchrun in several
    processes, it trains data-parallel (engine/distributed.py) and only rank 0 writes.
    `progress`: True (bars on stderr), False, or a callable taking ProgressEvents; None (default): bars
    when stderr is a terminal (`quiet=True` is the same as `progress=False`).
    How the data is read: `data_options` (a DataOptions), or its fields as keywords (`classes`,
    `image_size`, ...); a keyword that contradicts `data_options` is refused.

    Example:
        >>> r = pretrain("mnist5k", classes="0-4", backbone="cnn", out="models/src",
        ...              train=TrainConfig(epochs=5))  # doctest: +SKIP
        >>> r.val_accuracy  # doctest: +SKIP
    """
    # long: the signature lists every data and run option of the public API (one keyword each) and the docstring documents them
    options = DataOptions.merge(data_options, classes=classes, image_size=image_size, image_margin=image_margin,
                                image_center=image_center, label_column=label_column, text_column=text_column, test_data=test_data, target=target)
    cfg = train or TrainConfig(epochs=None if options.target == "numeric" else 5)  # numeric: enough steps to converge
    check_tracking(track, tracking_uri)
    _check_out_name(out)
    task = options.load(data)
    split = split_task(task, shots=None, seed=cfg.seed)
    seed_everything(cfg.seed)
    if isinstance(backbone, Backbone):  # a user's module, wrapped with wrap_module
        check_input_fits(task, backbone.input_spec, model_name="the given backbone")
        net = backbone
    else:  # a registered name, or a reference such as hf:/path (resolved by the registry entry)
        name_, options_ = resolve_backbone_ref(backbone, backbone_config)
        net = create_backbone(name_, task.input_spec, **options_)
    strategy = create_strategy("full")
    name = backbone if isinstance(backbone, str) else "user module"
    params = {"command": "pretrain", "data": str(data), "test_data": options.test_data, "classes": options.classes,
              "image_size": options.image_size, "image_margin": options.image_margin, "backbone": name, "backbone_config": backbone_config or {}, "train": asdict(cfg)}
    with distributed_session(cfg.device) as session, \
            tracking_run(track, tracking_uri, name=f"pretrain-{Path(out).name}", params=params | _run_tags(session, cfg),
                         enabled=session.is_main) as tracker:
        checkpoint = _run_folder(out, overwrite=overwrite, resume=resume) if session.is_main else _rank_checkpoint(out)
        report = resolve_progress(progress, quiet)
        model, run, metrics = train_run(net, split, strategy, cfg, progress=None if report is False or not session.is_main
                                        else f"pretrain {name}", checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                        resume=resume, on_epoch_end=tracker.log_epoch, progress_to=report)
        info = model_record(task, split, run, metrics, threads=cfg.threads, test_data=options.test_data, path=str(data),
                            label_column=options.label_column)
        if session.is_main:
            # The output layer is not part of the pretrained model (seed §2.2.1); it is kept beside it as the
            # source head, for analyses that need source-task predictions (LEEP, forgetting).
            save_model_folder(out, backbone=model.backbone, head=None, head_spec=None, info=info, overwrite=overwrite,
                              source_head=model.head, source_head_spec=model.head_spec)
            _end_run(checkpoint)
        _log_result(tracker, run, metrics, out if session.is_main else None)
    fields = _metric_fields(run, metrics)
    refs = _references(task, metrics)
    return PretrainResult(
        out=str(out),
        val_accuracy=fields["val_accuracy"],
        test_accuracy=fields["test_accuracy"],
        val_mse=fields.get("val_mse"),
        test_mse=fields.get("test_mse"),
        mean_predictor_mse=refs.get("mean_predictor_mse"),
        ridge_mse=refs.get("ridge_mse"),
        balanced_accuracy=fields.get("balanced_accuracy"),
        majority_rate=fields.get("majority_rate"),
        warnings=refs["warnings"],
        train_seconds=run.train_seconds,
        epochs=run.epochs,
        seed=cfg.seed,
        threads=cfg.threads,
        environment=run_environment(cfg.threads),
        history=run.history,
    )


def load(model: str | Path, *, module: nn.Sequential | None = None) -> LoadedModel:
    """Load a model folder (by path or store name), verifying its sha256. `.model` is the network.

    Example:
        >>> m = load("models/tgt")  # doctest: +SKIP
        >>> m.model(torch.zeros(1, 1, 28, 28)).shape  # doctest: +SKIP
    """
    return load_model(model, module=module)


def finetune(
    pretrained: str | Path,
    data: str,
    *,
    strategy: str = "full",
    strategy_options: dict[str, Any] | None = None,
    shots: int | None = None,
    out: str | Path | None = None,
    data_options: DataOptions | None = None,
    classes: str | list | None = None,
    image_size: int | None = None,
    image_margin: int = 0,
    image_center: str = "box",
    label_column: str = "label",
    target: str = "class",
    text_column: str = "text",
    test_data: str | None = None,
    train: TrainConfig | None = None,
    overwrite: bool = False,
    quiet: bool | None = None,
    module: nn.Sequential | None = None,
    cache: bool = True,
    resume: bool = False,
    checkpoint_every: int | None = None,
    track: str | None = None,
    tracking_uri: str | None = None,
    unlabeled_data: str | None = None,
    source_data: str | None = None,
    progress: Progress = None,
) -> FinetuneResult:
    """Adapt a pretrained model to a target task with a new output layer (seed §2.2.2), by one strategy.

    `shots=K` trains on K labelled examples per class (None: all). The test split is never trained on.
    Domain-adaptation strategies (adabn, dann, coral, mmd, self-training, source-free) also learn from
    `unlabeled_data` (a path, or "train": the target's pool without its labels) and take `shots=0`;
    those that need labelled source data read `source_data` (default: the model's recorded source task).
    See docs/domain_adaptation.md.
    `cache=False` runs a frozen backbone prefix every step instead of once (same result, slower).
    How the data is read: `data_options` or its fields as keywords, as in `pretrain`.
    `track`, `tracking_uri`, `progress` and data-parallel runs under torchrun work as in `pretrain`.
    Without `out` nothing is saved (the result's `out` is None).

    Example:
        >>> r = finetune("models/src", "digits", strategy="partial", strategy_options={"freeze": 2},
        ...              shots=10, image_size=28, image_margin=4, out="models/tgt")  # doctest: +SKIP
    """
    # long: the signature lists every data and run option of the public API (one keyword each) and the docstring documents them
    options = DataOptions.merge(data_options, classes=classes, image_size=image_size, image_margin=image_margin,
                                image_center=image_center, label_column=label_column, text_column=text_column, test_data=test_data, target=target)
    cfg = train or TrainConfig()
    strat = create_strategy(strategy, **(strategy_options or {}))
    adapts = check_adaptation_options(strat, shots=shots, unlabeled_data=unlabeled_data, source_data=source_data)
    check_tracking(track, tracking_uri)
    _check_out_name(out)
    params = {"command": "finetune", "pretrained": str(pretrained), "data": str(data), "test_data": options.test_data,
              "strategy": strategy, "strategy_options": strategy_options or {}, "shots": shots if shots is not None else "all",
              "classes": options.classes, "image_size": options.image_size, "image_margin": options.image_margin,
              "train": asdict(cfg)}
    run_name = f"finetune-{strat.name}-{Path(out).name if out is not None else Path(str(data)).stem}"
    with distributed_session(cfg.device) as session, \
            tracking_run(track, tracking_uri, name=run_name, params=params | _run_tags(session, cfg),
                         enabled=session.is_main) as tracker:
        with session.main_first():  # a packaged encoder is written into the store once, by rank 0
            source = load(pretrained, module=module)
        from .models.resolution import apply_image_size

        task = replace(options, image_size=apply_image_size(source.backbone, data, options.image_size)).load(
            data, feature_scale=source.config.get("preprocessing"))  # the backbone's own input scale, when it has one
        check_input_fits(task, source.input_spec, model_name=str(pretrained))
        adaptation = prepare_adaptation(source, task, str(pretrained), unlabeled_data=unlabeled_data, source_data=source_data,
                                        with_source=needs_source(strat), seed=cfg.seed) if adapts else None
        split = split_task(task, shots=shots, seed=cfg.seed) if adaptation is None else None
        if session.is_main:
            checkpoint = _run_folder(out, overwrite=overwrite, resume=resume)
        else:
            checkpoint = _rank_checkpoint(out)
        report = resolve_progress(progress, quiet)
        run_options = {"progress": None if report is False or not session.is_main else strat.describe(), "cache": cache,
                       "checkpoint": checkpoint, "checkpoint_every": checkpoint_every, "resume": resume,
                       "on_epoch_end": tracker.log_epoch, "progress_to": report}
        if adaptation is None:
            model, run, metrics = train_run(source.backbone, split, strat, cfg, **run_options)
        else:
            model, run, metrics, split = adaptation_run(source.backbone, task, strat, cfg, shots=shots,
                                                        **adaptation.run_inputs(), **run_options)
        total = sum(p.numel() for p in model.parameters())
        trainable = run.trainable_params
        if out is not None and session.is_main:
            info = model_record(task, split, run, metrics, threads=cfg.threads, test_data=options.test_data, path=str(data),
                                label_column=options.label_column, strategy=strat, pretrained=source)
            if adaptation is not None:
                info["adaptation"] = adaptation.record(strat)
            if source.input_spec.any_size:  # a model that resizes its own inputs records the shape it was given
                info["preprocessing"]["input_shape"] = list(task.input_spec.shape)
            save_model_folder(out, backbone=model.backbone, head=model.head, head_spec=model.head_spec, info=info, overwrite=overwrite)
            _end_run(checkpoint)
        _log_result(tracker, run, metrics, out if session.is_main else None)
    return FinetuneResult(
        out=str(out) if out is not None else None,
        strategy=strat.name,
        shots=split.shots if split.shots is not None else "all",
        seed=cfg.seed,
        **_metric_fields(run, metrics),
        **_references(task, metrics),
        train_seconds=run.train_seconds,
        epochs=run.epochs,
        trainable_params=trainable,
        total_params=total,
        samples_seen=run.samples_seen,
        threads=cfg.threads,
        environment=run_environment(cfg.threads),
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
    label_column: str | None = None,
    text_column: str | None = None,
    test_data: str | None = None,
    data_options: DataOptions | None = None,
    module: nn.Sequential | None = None,
    progress: Progress = None,
) -> EvalResult:
    """Accuracy and macro-F1 of a fine-tuned model on the fixed test split of `data`.

    The model's recorded preprocessing (image size, margin, class selection) is applied, so a model
    is evaluated on exactly the kind of input it was trained on. `data` defaults to its target task.
    `progress` as in `pretrain` (a bar over the test rows). `label_column`, `text_column` and `test_data`
    (or the same fields of `data_options`) override what the model recorded.

    Example:
        >>> evaluate("models/tgt", "digits").test_accuracy  # doctest: +SKIP
    """
    given = DataOptions.overrides(data_options, "evaluate", label_column=label_column, text_column=text_column,
                                  test_data=test_data)
    loaded = _finetuned(model, module)
    prep = loaded.config.get("preprocessing", {})
    target_task = loaded.config.get("target_task") or {}
    test_data = given.pop("test_data", None)
    if data is None:  # the model's own target task, with its own test file if it had one
        data = target_task.get("path") or target_task.get("data")
        test_data = test_data or target_task.get("test_data")
    if not data:
        raise ConfigError(f"{model} records no target task; pass --data")
    recorded = {k: prep.get(k) for k in ("classes", "image_size", "image_margin", "image_center", "label_column",
                                         "text_column")}
    task = DataOptions.from_preprocessing(recorded, **given, target=loaded.config.get("target", "class"),
                                          test_data=test_data).load(
        data, feature_scale=prep)  # the scale the model was trained with, not this file's own
    check_input_fits(task, loaded.input_spec, model_name=str(model))
    report = resolve_progress(progress)
    if task.is_numeric:
        m = _test_metrics(loaded.model, task, report)
        return EvalResult(test_accuracy=None, macro_f1=None, n=m["n"], test_mse=m["mse"], test_mae=m["mae"], test_r2=m["r2"],
                          **_references(task, m))
    if task.class_names != loaded.label_names:
        raise ConfigError(
            f"{data} has classes {task.class_names} but {model} predicts {loaded.label_names}; "
            "evaluate on data with the model's classes"
        )
    m = _test_metrics(loaded.model, task, report)
    return EvalResult(test_accuracy=m["accuracy"], macro_f1=m["macro_f1"], n=m["n"], balanced_accuracy=m.get("balanced_accuracy"),
                      majority_rate=m.get("majority_rate"), warnings=_references(task, m)["warnings"])


def predict(
    model: str | Path,
    inputs: str | Path | np.ndarray,
    *,
    label_column: str | None = None,
    data_options: DataOptions | None = None,
    module: nn.Sequential | None = None,
    batch_size: int = 256,
    out: str | Path | None = None,
    overwrite: bool = False,
    quiet: bool | None = None,
    progress: Progress = None,
) -> list[dict[str, Any]]:
    """Class names and probabilities (or numeric values) for new inputs: an image file or folder, an .npz
    with `x`, a CSV of features or of texts (its label column, if present, is ignored), a .txt/.jsonl of
    texts, or an array. Inputs run in batches of `batch_size` (`progress` as in `pretrain`); with
    `out` the rows are also written to a .csv, .jsonl or .json file. A text's `input` is the row number
    and the text, cut to 60 characters (`row 3: "free entry in 2 a wkly comp…"`). The inputs are read as
    the model recorded; `label_column` (or `data_options.label_column`) names a CSV column to ignore.

    Example:
        >>> predict("models/tgt", "my_digits/")[0]  # doctest: +SKIP
        {'input': 'a.png', 'label': '7', 'probability': 0.98, 'probabilities': {...}}
        >>> predict("models/tgt", "my_digits/", out="predictions.csv")  # doctest: +SKIP
    """
    from .data import load_inputs, preprocess_inputs
    from .prediction import check_output_path, predict_rows, write_predictions

    label_column = DataOptions.overrides(data_options, "predict", label_column=label_column).get("label_column")
    out_path = check_output_path(out, overwrite=overwrite)
    loaded = _finetuned(model, module)
    prep = loaded.config.get("preprocessing", {})
    if isinstance(inputs, np.ndarray):
        x, names, what = preprocess_inputs(inputs, prep), [str(i) for i in range(len(inputs))], "the array"
    else:
        column = label_column or prep.get("label_column", "label")  # a CSV's label column is not a feature
        (x, names), what = load_inputs(inputs, preprocessing=prep, label_column=column), str(inputs)
    if loaded.input_spec.kind == "vector":
        from .data.loading import scale_features

        x = scale_features(x, prep)  # a numeric model's features, on the scale it was trained with
    if loaded.input_spec.kind == "text" and isinstance(inputs, np.ndarray):
        x = inputs.astype(object)
    from .data.shapes import spec_of_inputs

    given = spec_of_inputs(x)  # text on an image model, images on a text model, RGB on a grayscale one: before any work
    if given.kind != loaded.input_spec.kind or (given.kind == "image" and given.shape[0] != loaded.input_spec.shape[0]):
        check_input_fits(given, loaded.input_spec, model_name=str(model), data_name=what, model_role="model")
    if loaded.input_spec.kind == "text":
        from .prediction import text_names

        names = text_names(x, names)
    rows = predict_rows(loaded, x, names, what=what, batch_size=batch_size, progress=resolve_progress(progress, quiet))
    if out_path is not None:
        write_predictions(rows, out_path)
    return rows
