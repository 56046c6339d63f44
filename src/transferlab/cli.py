"""The `transferlab` command: a thin layer, one call into the Python API per command."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from .data.options import DataOptions
from .cli_errors import _command_line, _friendly, _interrupted_message  # noqa: F401  (their home: cli_errors.py)
from .cli_options import GivenFlags, with_data_flags, with_plugin_flags
from .rl.dispatch import TaskKindGroup

app = typer.Typer(
    cls=TaskKindGroup,  # pretrain/finetune/compare with --env run the RL forms (rl/cli.py)
    help="transferlab: pretrain, adapt with any strategy, and measure transfer honestly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="The local model store ($TRANSFERLAB_HOME, default ~/.transferlab/models).")
app.add_typer(models_app, name="models")


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", help="on an error, also print the traceback (or set TRANSFERLAB_DEBUG=1)")] = False,
) -> None:
    if debug:
        os.environ["TRANSFERLAB_DEBUG"] = "1"


def _emit(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=None, default=str))


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


# Options shared by several commands.
Data = Annotated[str, typer.Option("--data", help="built-in dataset (see `transferlab datasets`) or a path", rich_help_panel="Data")]
# The Data panel's other flags are generated from DataOptions' fields (cli_options.with_data_flags); a command
# that leaves a field out says why:
RECORDED_PREPROCESSING = {name: "read as the model recorded it: a model is run on the inputs it was trained on"
                          for name in ("classes", "image_size", "image_margin", "image_center", "target")}
ANALYSES_SCORE_CLASSES = "the analyses score class labels (a numeric target has none)"
COMPARES_CLASSES = "compare counts labels per class: numeric targets are not compared"
Out = Annotated[Path, typer.Option(help="folder to save the model in", rich_help_panel="Output")]
Overwrite = Annotated[bool, typer.Option(help="replace an existing model folder at --out", rich_help_panel="Output")]
Resume = Annotated[bool, typer.Option("--resume", help="continue the run whose checkpoint is in --out", rich_help_panel="Output")]
CheckpointEvery = Annotated[Optional[int], typer.Option(help="also checkpoint every N steps (default: each epoch)", rich_help_panel="Output")]
Epochs = Annotated[Optional[int], typer.Option(help="epochs (default: enough for ~300 steps, 10–200)", rich_help_panel="Training")]
BatchSize = Annotated[int, typer.Option(help="minibatch size", rich_help_panel="Training")]
Lr = Annotated[Optional[float], typer.Option(help="learning rate of the head (default 1e-3; 1e-2 for text encoders)", rich_help_panel="Training")]
BackboneLr = Annotated[Optional[float], typer.Option(help="learning rate of the backbone (default: --lr; 2e-5 for text encoders)", rich_help_panel="Training")]
Optimizer = Annotated[str, typer.Option(help="adam | adamw | sgd (momentum 0.9)", rich_help_panel="Training")]
Schedule = Annotated[str, typer.Option(help="none | cosine | onecycle", rich_help_panel="Training")]
Loss = Annotated[Optional[str], typer.Option(help="cross-entropy | mse (default: cross-entropy for classes, mse for numbers)", rich_help_panel="Training")]
Patience = Annotated[Optional[int], typer.Option(help="stop after N validation passes without a better val accuracy", rich_help_panel="Training")]
WeightDecay = Annotated[float, typer.Option(help="weight decay", rich_help_panel="Training")]
Seed = Annotated[int, typer.Option(help="seed: same seed and --threads give identical weights", rich_help_panel="Training")]
Threads = Annotated[Optional[int], typer.Option(help="torch intra-op threads (default 1: measured fastest here)", rich_help_panel="Training")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the trained part (slower for small models on CPU; see benchmarks/compile.py)", rich_help_panel="Training")]
Augment = Annotated[str, typer.Option(help="random image transforms per training batch: none | shift | affine (shift + rotation + scale) | photos: crop (random resized) | flip | color (jitter) | photo (all three)", rich_help_panel="Training")]
Device = Annotated[str, typer.Option(help="auto (cuda if a GPU is visible, else mps, else cpu) | cpu | cuda | mps", rich_help_panel="Training")]
Precision = Annotated[str, typer.Option(help="fp32 | bf16 (autocast of the forward pass; CUDA only)", rich_help_panel="Training")]
Nproc = Annotated[int, typer.Option(help="train data-parallel in N processes on this machine (torchrun; gloo on CPU, nccl on CUDA)", rich_help_panel="Training")]
Track = Annotated[Optional[str], typer.Option(help="record params, per-epoch metrics and the model folder: mlflow | tensorboard", rich_help_panel="Output")]
TrackingUri = Annotated[Optional[str], typer.Option(help="mlflow: tracking URI (default sqlite:///./mlruns/mlflow.db); tensorboard: log folder (default runs)", rich_help_panel="Output")]
Json = Annotated[bool, typer.Option("--json", help="print one JSON object on stdout", rich_help_panel="Output")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars", rich_help_panel="Output")]


def is_main_process() -> bool:
    from .engine.distributed import is_main_process as main

    return main()


def _launched_in_processes(ctx: typer.Context, nproc: int, batch_size: int) -> bool:
    """`--nproc N` (N > 1) outside torchrun: start this command in N processes with torchrun and wait.

    Inside a torchrun worker, check that N matches the processes torchrun started.
    """
    from .engine.distributed import check_global_batch, env_world, launch
    from .errors import ConfigError

    world = env_world()[2]
    if nproc < 1:
        raise ConfigError(f"--nproc must be a whole number ≥ 1; got {nproc}")
    if "WORLD_SIZE" in os.environ:
        if nproc not in (1, world):
            raise ConfigError(f"--nproc {nproc} but torchrun started {world} processes; drop --nproc under torchrun")
        return False
    if nproc == 1:
        return False
    check_global_batch(batch_size, nproc)
    code = launch(nproc, _command_line(ctx))
    if code != 0:
        raise typer.Exit(code)
    return True


def _train_config(**kwargs: Any):
    from .engine import TrainConfig

    return TrainConfig(**kwargs)


@app.command()
@_friendly
def datasets(json_out: Json = False) -> None:
    """List the built-in datasets (offline)."""
    from .data import list_datasets

    rows = list_datasets()
    if json_out:
        _emit({"datasets": rows})
        return
    for row in rows:
        typer.echo(f"{row['name']:10s} {row.get('description', '')}")


@app.command()
@_friendly
def backbones(json_out: Json = False) -> None:
    """List the registered backbones and their options (each one a flag of `pretrain`)."""
    from .cli_options import RESERVED
    from .plugin_options import describe_plugins

    rows = describe_plugins("backbone", RESERVED["backbone"])
    if json_out:
        _emit({"backbones": rows})
        return
    for r in rows:
        typer.echo(f"{r['name']:8s} {r['summary']}")
        for o in r["fields"]:
            typer.echo(f"{'':8s} {' / '.join(o['flags'])} ({o['type']}, default {o['default']}): {o['help']}")


@app.command()
@_friendly
def strategies(json_out: Json = False) -> None:
    """List the registered strategies, a line each, with their options (each one a flag of `finetune`, `compare`)."""
    from .cli_options import RESERVED
    from .plugin_options import describe_plugins

    rows = describe_plugins("strategy", RESERVED["strategy"])
    if json_out:
        _emit({"strategies": rows})
        return
    for r in rows:
        opts = ", ".join(f"{' / '.join(o['flags'])} {o['type']} ({o['default']})" for o in r["options"])
        typer.echo(f"{r['name']:13s} {r['summary']}" + (f"\n{'':13s} options: {opts}" if opts else ""))


@app.command()
@_friendly
@with_plugin_flags("backbone")
@with_data_flags()
def pretrain(
    data: Data = "mnist5k",
    out: Out = Path("models/pretrained"),
    backbone: Annotated[str, typer.Option(help="registered backbone (see `transferlab backbones`), or hf:/path",
                                          rich_help_panel="Backbone options")] = "cnn",
    epochs: Annotated[Optional[int], typer.Option(help="epochs (default 5; numeric targets: enough steps to converge)",
                                                  rich_help_panel="Training")] = None,
    batch_size: BatchSize = 32,
    lr: Lr = None,
    backbone_lr: BackboneLr = None,
    optimizer: Optimizer = "adam",
    schedule: Schedule = "none",
    loss: Loss = None,
    weight_decay: WeightDecay = 0.0,
    patience: Patience = None,
    seed: Seed = 0,
    threads: Threads = None,
    compile_model: Compile = False,
    augment: Augment = "none",
    device: Device = "auto",
    precision: Precision = "fp32",
    nproc: Nproc = 1,
    track: Track = None,
    tracking_uri: TrackingUri = None,
    overwrite: Overwrite = False,
    resume: Resume = False,
    checkpoint_every: CheckpointEvery = None,
    json_out: Json = False,
    quiet: Quiet = False,
    ctx: typer.Context = None,  # type: ignore[assignment]
    plugin_flags: GivenFlags = None,  # type: ignore[assignment]  (one flag per backbone option, generated)
    data_options: DataOptions = None,  # type: ignore[assignment]  (the Data panel: one flag per field, generated)
) -> None:
    """Pretrain a backbone on a source task; save it without its output layer. With --env ID: an RL agent (see docs/rl.md)."""
    # long: a typer command's signature is its list of flags (one parameter each)
    from .api import pretrain as api_pretrain

    from .models import resolve_backbone_ref

    kind = resolve_backbone_ref(backbone)[0]
    arch = plugin_flags.route([kind])[kind]
    cfg = _train_config(
        epochs=epochs if epochs is not None else None if data_options.target == "numeric" else 5,
        batch_size=batch_size, lr=lr, backbone_lr=backbone_lr, optimizer=optimizer, schedule=schedule, loss=loss,
        weight_decay=weight_decay, patience=patience, seed=seed, threads=threads, compile=compile_model, augment=augment,
        device=device, precision=precision,
    )
    if _launched_in_processes(ctx, nproc, cfg.batch_size):  # validated here once, then run in N processes
        return
    result = api_pretrain(
        data, out=out, backbone=backbone, backbone_config=arch, data_options=data_options, train=cfg, overwrite=overwrite,
        progress=not (quiet or json_out), resume=resume, checkpoint_every=checkpoint_every, track=track,
        tracking_uri=tracking_uri,
    )
    if not is_main_process():  # the other processes of a data-parallel run print nothing
        return
    if json_out:
        _emit(result.to_json())
    else:
        quality = (
            f"val accuracy {result.val_accuracy:.4f}, source test accuracy {result.test_accuracy:.4f} (balanced "
            f"{result.balanced_accuracy:.4f}, majority class {result.majority_rate:.4f})"
            if result.test_accuracy is not None
            else f"val MSE {result.val_mse:.4g}, source test MSE {result.test_mse:.4g} (mean predictor "
            f"{result.mean_predictor_mse:.4g}, ridge {result.ridge_mse:.4g})"
        )
        typer.echo(f"pretrained {backbone} on {data}: {quality}, {result.epochs} epochs in {result.train_seconds:.1f}s → {out}")
        _warn(result.warnings)


@app.command()
@_friendly
@with_plugin_flags("strategy")
@with_data_flags()
def finetune(
    pretrained: Annotated[str, typer.Argument(help="pretrained model folder or store name")],
    data: Data,
    out: Annotated[Optional[Path], typer.Option(help="folder to save the fine-tuned model in", rich_help_panel="Output")] = None,
    strategy: Annotated[str, typer.Option(help="registered strategy (see `transferlab strategies`)",
                                          rich_help_panel="Strategy options")] = "full",
    bn: Annotated[str, typer.Option(help="BatchNorm policy: train | freeze (statistics and affine parameters fixed)",
                                    rich_help_panel="Training")] = "train",
    cache: Annotated[bool, typer.Option(help="compute a frozen backbone prefix once, not every step (same result)",
                                        rich_help_panel="Training")] = True,
    shots: Annotated[str, typer.Option(help="labelled examples per class, or 'all' (0: none, for domain adaptation)",
                                       rich_help_panel="Data")] = "all",
    unlabeled_data: Annotated[Optional[str], typer.Option(
        help="unlabeled target inputs for domain adaptation: a path (labels in it are ignored) or 'train' (the "
             "target's training pool without its labels)", rich_help_panel="Data")] = None,
    source_data: Annotated[Optional[str], typer.Option(
        help="labelled source data for dann/coral/mmd/self-training (default: the model's recorded source task)",
        rich_help_panel="Data")] = None,
    epochs: Epochs = None,
    batch_size: BatchSize = 32,
    lr: Lr = None,
    backbone_lr: BackboneLr = None,
    optimizer: Optimizer = "adam",
    schedule: Schedule = "none",
    loss: Loss = None,
    weight_decay: WeightDecay = 0.0,
    patience: Patience = None,
    seed: Seed = 0,
    threads: Threads = None,
    compile_model: Compile = False,
    augment: Augment = "none",
    device: Device = "auto",
    precision: Precision = "fp32",
    nproc: Nproc = 1,
    track: Track = None,
    tracking_uri: TrackingUri = None,
    overwrite: Overwrite = False,
    resume: Resume = False,
    checkpoint_every: CheckpointEvery = None,
    json_out: Json = False,
    quiet: Quiet = False,
    ctx: typer.Context = None,  # type: ignore[assignment]
    plugin_flags: GivenFlags = None,  # type: ignore[assignment]  (one flag per strategy option, generated)
    data_options: DataOptions = None,  # type: ignore[assignment]  (the Data panel: one flag per field, generated)
) -> None:
    """Fine-tune a pretrained model on a target task with a new output layer, by one strategy. With --env: an RL agent (docs/rl.md)."""
    # long: a typer command's signature is its list of flags (one parameter each)
    from .api import finetune as api_finetune
    from .data import parse_shots

    options = plugin_flags.route([strategy])[strategy]  # the strategy refuses options it lacks
    cfg = _train_config(
        epochs=epochs, batch_size=batch_size, lr=lr, backbone_lr=backbone_lr, optimizer=optimizer, schedule=schedule, loss=loss,
        weight_decay=weight_decay, patience=patience, seed=seed, threads=threads, compile=compile_model, bn=bn,
        augment=augment, device=device, precision=precision,
    )
    if _launched_in_processes(ctx, nproc, cfg.batch_size):
        return
    result = api_finetune(
        pretrained, data, strategy=strategy, strategy_options=options, shots=parse_shots(shots, allow_zero=True), out=out,
        unlabeled_data=unlabeled_data, source_data=source_data, data_options=data_options,
        train=cfg, overwrite=overwrite, progress=not (quiet or json_out), cache=cache, resume=resume,
        checkpoint_every=checkpoint_every, track=track, tracking_uri=tracking_uri,
    )
    if not is_main_process():
        return
    if json_out:
        _emit(result.to_json())
    else:
        quality = (
            f"test accuracy {result.test_accuracy:.4f}, val {result.val_accuracy:.4f}, balanced accuracy "
            f"{result.balanced_accuracy:.4f}, macro-F1 {result.macro_f1:.4f}, majority class {result.majority_rate:.4f}"
            if result.test_accuracy is not None
            else f"test MSE {result.test_mse:.4g}, R² {result.test_r2:.4f} (mean predictor MSE "
            f"{result.mean_predictor_mse:.4g}; ridge MSE {result.ridge_mse:.4g}, R² {result.ridge_r2:.4f})"
        )
        typer.echo(
            f"{result.strategy} on {data} ({result.shots} shots): {quality}, "
            f"{result.trainable_params:,}/{result.total_params:,} params trained, "
            f"{result.train_seconds:.1f}s" + (f" → {out}" if out else "")
        )
        if out is None:
            typer.echo("nothing was saved: pass --out DIR to save the fine-tuned model (then evaluate, predict or "
                       "export it)", err=True)
        _warn(result.warnings)


@app.command()
@_friendly
@with_data_flags("label_column", "text_column", "test_data", recorded="the model's", omit=RECORDED_PREPROCESSING)
def evaluate(
    model: Annotated[str, typer.Argument(help="fine-tuned model folder or store name")],
    data: Annotated[Optional[str], typer.Option(help="dataset (default: the model's target task)", rich_help_panel="Data")] = None,
    json_out: Json = False,
    quiet: Quiet = False,
    data_options: dict = None,  # type: ignore[assignment]  (the Data flags given: they override the model's)
) -> None:
    """Test accuracy and macro-F1 of a fine-tuned model on the fixed test split of DATA."""
    from .api import evaluate as api_evaluate

    result = api_evaluate(model, data, **data_options, progress=not (quiet or json_out))
    if json_out:
        _emit(result.to_json())
    else:
        if result.test_accuracy is None:
            typer.echo(f"test MSE {result.test_mse:.4g}, MAE {result.test_mae:.4g}, R² {result.test_r2:.4f} (n={result.n}); "
                       f"mean predictor MSE {result.mean_predictor_mse:.4g}; ridge MSE {result.ridge_mse:.4g}, "
                       f"R² {result.ridge_r2:.4f}")
        else:
            typer.echo(f"test accuracy {result.test_accuracy:.4f}, macro-F1 {result.macro_f1:.4f}, balanced accuracy "
                       f"{result.balanced_accuracy:.4f}, majority class {result.majority_rate:.4f} (n={result.n})")
        _warn(result.warnings)


@app.command()
@_friendly
def predict(
    model: Annotated[str, typer.Argument(help="fine-tuned model folder or store name")],
    inputs: Annotated[str, typer.Argument(help="an image, a folder of images, an .npz with x, a CSV, or texts (.txt, .jsonl, CSV)")],
    label_column: Annotated[Optional[str], typer.Option(help="a CSV column to ignore (default: the model's label column)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="also write the predictions to FILE: .csv, .jsonl or .json")] = None,
    batch_size: Annotated[int, typer.Option(help="inputs per batch")] = 256,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Predict class names and probabilities (or numeric values) for new inputs, in batches."""
    from .api import predict as api_predict

    rows = api_predict(model, inputs, label_column=label_column, batch_size=batch_size, out=out, overwrite=overwrite,
                       progress=not (quiet or json_out))
    if json_out:
        _emit({"predictions": rows})
        return
    if out is not None:
        typer.echo(f"wrote {len(rows)} predictions to {out}")
        return
    for r in rows:
        typer.echo(f"{r['input']}\t{r['value']:.6g}" if "value" in r else f"{r['input']}\t{r['label']}\t{r['probability']:.4f}")


@app.command()
@_friendly
def export(
    model: Annotated[str, typer.Argument(help="model folder or store name (fine-tuned: logits; pretrained: features)")],
    out: Annotated[Path, typer.Option(help="file to write, e.g. model.onnx (--format hf: a folder)")],
    format: Annotated[str, typer.Option("--format", help="onnx | hf (text models: a sentence-transformers and "
                                                           "transformers folder)")] = "onnx",
    opset: Annotated[Optional[int], typer.Option(help="ONNX opset (default: the exporter's, 18 or newer)")] = None,
    check: Annotated[bool, typer.Option(help="run the export on 100 inputs; refuse it past 1e-4 (onnx) / 1e-5 (hf) difference")] = True,
    overwrite: Overwrite = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Export a model as a standard file (ONNX, dynamic batch axis), checked against PyTorch."""
    from .export import export as api_export

    result = api_export(model, out, format=format, opset=opset, check=check, overwrite=overwrite,
                        progress=not (quiet or json_out))
    if json_out:
        _emit(result.to_json())
        return
    shape = "×".join(str(s) for s in result.input_shape)
    what = "ONNX" if result.format == "onnx" else "export"
    parity = (f"; max |{what} − PyTorch| {result.parity_max_abs_diff:.3g} on {result.parity_inputs} inputs"
              if result.parity_max_abs_diff is not None else "")
    typer.echo(f"exported {model} → {out}: input x ({shape}, {result.input_dtype}), output {result.output_name}{parity}")
    if result.transformers_note:
        typer.echo(result.transformers_note)


@app.command()
@_friendly
@with_plugin_flags("strategy")
@with_data_flags(recorded="the --config file's, else as finetune", omit={"target": COMPARES_CLASSES})
def compare(
    pretrained: Annotated[Optional[str], typer.Argument(help="pretrained model folder or store name")] = None,
    data: Annotated[Optional[str], typer.Option(help="target dataset: built-in name or path", rich_help_panel="Data")] = None,
    out: Annotated[Optional[Path], typer.Option(help="folder for runs.sqlite, results.csv, summary.json, report.html", rich_help_panel="Output")] = None,
    strategies: Annotated[Optional[str], typer.Option(help="comma-separated (default: all registered; scratch is always added)", rich_help_panel="Comparison")] = None,
    shots: Annotated[Optional[str], typer.Option(help="label budgets per class, e.g. 1,5,10,all (default 1,5,10,all)", rich_help_panel="Comparison")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="seeds per cell (default 3), or 'auto': add seeds to undecided cells", rich_help_panel="Comparison")] = None,
    max_seeds: Annotated[Optional[int], typer.Option(help="--seeds auto: the most seeds per cell (default 20)", rich_help_panel="Comparison")] = None,
    metric: Annotated[Optional[str], typer.Option(help="what verdicts use: accuracy | balanced-accuracy | macro-f1", rich_help_panel="Comparison")] = None,
    correction: Annotated[Optional[str], typer.Option(help="multiple comparisons: holm | bh | none (default holm)", rich_help_panel="Comparison")] = None,
    margin: Annotated[Optional[float], typer.Option(help="largest |Δ| called no-difference (default 0.02)", rich_help_panel="Comparison")] = None,
    unlabeled_data: Annotated[Optional[str], typer.Option(
        help="unlabeled target inputs (a path, or 'train': the target's pool without labels); adds the domain-"
             "adaptation strategies, the 0-labels column and the source-only baseline", rich_help_panel="Data")] = None,
    source_data: Annotated[Optional[str], typer.Option(
        help="labelled source data for dann/coral/mmd/self-training (default: the model's recorded source task)", rich_help_panel="Data")] = None,
    epochs: Epochs = None,
    lr: Annotated[Optional[float], typer.Option(help="learning rate of the head (default 1e-3; 1e-2 for text encoders)", rich_help_panel="Training")] = None,
    augment: Annotated[Optional[str], typer.Option(help="random image transforms per training batch: none | shift | affine | crop | flip | color | photo", rich_help_panel="Training")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file with the same settings; flags override it", rich_help_panel="Comparison")] = None,
    jobs: Annotated[Optional[int], typer.Option(help="cells run in parallel processes", rich_help_panel="Training")] = None,
    threads: Threads = None,
    force: Annotated[bool, typer.Option(help="discard the runs in --out and start anew", rich_help_panel="Output")] = False,
    save_models: Annotated[bool, typer.Option(help="save the seed-0 model of every cell under OUT/models/", rich_help_panel="Output")] = False,
    json_out: Json = False,
    quiet: Quiet = False,
    plugin_flags: GivenFlags = None,  # type: ignore[assignment]  (one flag per strategy option, generated)
    ctx: typer.Context = None,  # type: ignore[assignment]  (Ctrl-C: the command to continue)
    data_options: dict = None,  # type: ignore[assignment]  (the Data flags given: they override --config's)
) -> None:
    """Did transfer help, by how much, at what cost? Every strategy vs scratch × label budgets × seeds. With --env: RL (docs/rl.md)."""
    from .cli_compare import compare_from_cli

    compare_from_cli(
        config_file=config,
        flags={"pretrained": pretrained, "data": data, "strategies": strategies, "shots": shots, "seeds": seeds,
               "max_seeds": max_seeds, "metric": metric, "correction": correction, "margin": margin,
               "unlabeled_data": unlabeled_data, "source_data": source_data} | data_options,
        strategy_flags=plugin_flags,
        train_flags={"epochs": epochs, "lr": lr, "augment": augment},
        out=out, jobs=jobs, threads=threads, force=force, save_models=save_models, json_out=json_out, quiet=quiet,
    )


@app.command()
@_friendly
def report(
    out: Annotated[Path, typer.Argument(help="a compare output folder")],
    json_out: Json = False,
) -> None:
    """Rebuild results.csv, summary.json and report.html of a comparison from its run store."""
    from .compare import rebuild

    summary = rebuild(out)
    if json_out:
        _emit(summary)
    else:
        typer.echo(f"rebuilt {out}/report.html, summary.json, results.csv ({len(summary['cells'])} cells)")


@app.command()
@_friendly
@with_data_flags(omit={"target": ANALYSES_SCORE_CLASSES})
def rank(
    models: Annotated[list[str], typer.Argument(help="pretrained model folders or store names")],
    data: Data,
    shots: Annotated[str, typer.Option(help="labelled examples per class to score on, or 'all'")] = "all",
    layers: Annotated[bool, typer.Option("--layers", help="score every block of one model: where to cut")] = False,
    compare: Annotated[Optional[list[Path]], typer.Option("--compare", help="a compare --out folder of this target "
                                                          "(repeatable): Kendall τ of each score vs fine-tuned accuracy")] = None,
    folds: Annotated[int, typer.Option(help="folds of the linear-probe reference")] = 5,
    seed: Annotated[int, typer.Option(help="seed of the --shots draw (as finetune draws it)")] = 0,
    threads: Threads = None,
    json_out: Json = False,
    data_options: DataOptions = None,  # type: ignore[assignment]  (the Data panel: one flag per field, generated)
) -> None:
    """Rank pretrained models (or one model's blocks) for a target task by LogME, LEEP, H-score, without fine-tuning."""
    from .analysis import rank as api_rank
    from .data import parse_shots

    result = api_rank(models, data, shots=parse_shots(shots), layers=layers, compare=compare or (), seed=seed,
                      folds=folds, data_options=data_options, threads=threads)
    if json_out:
        _emit(result.to_json())
    else:
        from .report.analysis_tables import print_rank

        print_rank(result)


@app.command()
@_friendly
@with_data_flags(omit={"target": ANALYSES_SCORE_CLASSES})
def advise(
    pretrained: Annotated[str, typer.Argument(help="pretrained model folder or store name")],
    data: Data,
    shots: Annotated[str, typer.Option(help="labelled examples per class you have, or 'all'")] = "all",
    source_data: Annotated[Optional[str], typer.Option(help="source dataset (default: the one the model records)")] = None,
    unlabeled_data: Annotated[Optional[str], typer.Option(
        help="an unlabeled target pool you have (a path, or 'train'); with --shots 0 the advice is a domain-adaptation "
             "strategy")] = None,
    seed: Annotated[int, typer.Option(help="seed of the --shots draw (as finetune draws it)")] = 0,
    threads: Threads = None,
    json_out: Json = False,
    data_options: DataOptions = None,  # type: ignore[assignment]  (the Data panel: one flag per field, generated)
) -> None:
    """Recommend a strategy and freeze depth from layer-wise scores, the domain gap and the number of labels."""
    from .analysis import advise as api_advise
    from .data import parse_shots

    result = api_advise(pretrained, data, shots=parse_shots(shots, allow_zero=True), source_data=source_data,
                        unlabeled_data=unlabeled_data, seed=seed, data_options=data_options, threads=threads)
    if json_out:
        _emit(result.to_json())
    else:
        from .report.analysis_tables import print_advice

        print_advice(result)


@app.command()
@_friendly
@with_data_flags("label_column", "text_column", "test_data", recorded="the model's", omit=RECORDED_PREPROCESSING)
def explain(
    model: Annotated[str, typer.Argument(help="fine-tuned model folder or store name")],
    pretrained: Annotated[Optional[str], typer.Option(help="the pretrained model it started from (default: as recorded)")] = None,
    data: Annotated[Optional[str], typer.Option(help="target dataset (default: the model's own)")] = None,
    source_data: Annotated[Optional[str], typer.Option(help="the source task: measure forgetting (source accuracy before/after)")] = None,
    examples: Annotated[int, typer.Option(help="test examples to attribute")] = 4,
    method: Annotated[str, typer.Option(help="integrated-gradients | saliency")] = "integrated-gradients",
    out: Annotated[Optional[Path], typer.Option(help="folder for explain.html (heatmaps / token highlights) and explain.json")] = None,
    max_examples: Annotated[int, typer.Option(help="test examples the layer similarity is measured on")] = 500,
    threads: Threads = None,
    json_out: Json = False,
    data_options: dict = None,  # type: ignore[assignment]  (the Data flags given: they override the model's)
) -> None:
    """What transferred: layer-wise CKA and weight drift vs the pretrained model, forgetting, attributions."""
    from .analysis import explain as api_explain

    result = api_explain(model, pretrained=pretrained, data=data, source_data=source_data, examples=examples,
                         method=method, out=out, max_examples=max_examples, **data_options, threads=threads)
    if json_out:
        _emit(result.to_json())
    else:
        from .report.analysis_tables import print_explain

        print_explain(result)


@models_app.callback(invoke_without_command=True)
@_friendly
def models_list(ctx: typer.Context, json_out: Json = False) -> None:
    """List the models in the store."""
    if ctx.invoked_subcommand is not None:
        return
    from .artifacts import list_models, store_root

    rows = list_models()
    if json_out:
        _emit({"store": str(store_root()), "models": rows})
        return
    typer.echo(f"store: {store_root()}")
    if not any(not r.get("packaged") for r in rows):
        typer.echo("  (no stored models) — add one with `transferlab models add PATH`")
    for r in rows:
        if r.get("packaged"):
            typer.echo(f"  {r['name']:20s} pretrained (packaged: {r['task']}; written to the store on first use)")
        elif "error" in r:
            typer.echo(f"  {r['name']:20s} DAMAGED: {r['error']}")
        else:
            typer.echo(f"  {r['name']:20s} {r['kind']:10s} {r['backbone']:5s} task={r['task']} classes={r['classes']}")


@models_app.command("add")
@_friendly
def models_add(
    path: Annotated[Path, typer.Argument(help="a model folder")],
    name: Annotated[Optional[str], typer.Option(help="name in the store (default: folder name)")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Copy a model folder into the store (after verifying its checksum)."""
    from .artifacts import add_model

    typer.echo(f"added {add_model(path, name, overwrite=overwrite)}")


@models_app.command("remove")
@_friendly
def models_remove(name: Annotated[str, typer.Argument(help="model name in the store")]) -> None:
    """Delete a model from the store."""
    from .artifacts import remove_model

    typer.echo(f"removed {remove_model(name)}")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option(help="folder for the demo's models and comparison")] = Path("demo-out"),
    seeds: Annotated[int, typer.Option(help="seeds per cell")] = 3,
    jobs: Annotated[int, typer.Option(help="cells run in parallel processes")] = 1,
    threads: Threads = None,
    json_out: Json = False,
) -> None:
    """The seed's scenario done right: pretrain cnn on MNIST, compare transfer to UCI digits vs scratch."""
    from .demo import demo as api_demo

    result = api_demo(out=out, seeds=seeds, jobs=jobs, threads=threads, quiet=json_out)
    if json_out:
        _emit(result.to_json())


def main() -> None:
    """The `transferlab` command: every error a user caused ends in one line (exit 2), a bug in "internal error" (exit 1)."""
    from .failures import run_command

    sys.exit(run_command(app))


if __name__ == "__main__":
    sys.exit(main())
