"""`transferlab demo`: the seed's scenario (seed §4) done right, offline, in a few minutes on 2 cores.

Pretrain `cnn` on MNIST-5k, then transfer to the UCI 8×8 digits framed like MNIST (a domain shift:
other writers, scanner and resolution) with 1, 5 and 10 labels per class, by every seed strategy and
from scratch, over several seeds. Unlike the seed's example, nothing is ever trained on the test split.
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

from .api import _task_record, load, pretrain, train_run
from .artifacts import save_model_folder
from .data import load_task, split_task
from .engine import TrainConfig
from .strategies import create_strategy

# (label, strategy, options)
DEMO_STRATEGIES: list[tuple[str, str, dict[str, Any]]] = [
    ("scratch", "scratch", {}),
    ("linear-probe", "linear-probe", {}),
    ("partial --freeze 2", "partial", {"freeze": 2}),
    ("add-layers --hidden 128", "add-layers", {"hidden": [128]}),
    ("full", "full", {}),
]
DEMO_SHOTS = (1, 5, 10)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def demo(out: str | Path = "demo-out", *, seeds: int = 3, threads: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run the demo; return {"pretrained": ..., "rows": [...]} and print a table unless `quiet`.

    Example:
        >>> result = demo("demo-out", seeds=3)  # doctest: +SKIP
    """
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=quiet)
    out = Path(out)
    say = (lambda *a: None) if quiet else console.print
    say("[bold]1. Pretrain[/bold] cnn on mnist5k (source task, 10 classes, 28×28)")
    pre = pretrain(
        "mnist5k", out=out / "pretrained", backbone="cnn", train=TrainConfig(epochs=5, threads=threads),
        overwrite=True, quiet=quiet,
    )
    say(f"   source val accuracy {pre.val_accuracy:.3f}, {pre.train_seconds:.1f}s → {pre.out} (backbone only)")
    source = load(pre.out)
    task = load_task("digits", image_size=28, image_margin=4)
    say("[bold]2. Transfer[/bold] to digits (UCI 8×8, framed like MNIST: --image-size 28 --image-margin 4), "
        f"test split of {len(task.y_test)} images never trained on")
    rows: list[dict[str, Any]] = []
    for shots in DEMO_SHOTS:
        for label, name, options in DEMO_STRATEGIES:
            accs, secs = [], []
            for seed in range(seeds):
                split = split_task(task, shots=shots, seed=seed)
                strategy = create_strategy(name, **options)
                cfg = TrainConfig(seed=seed, threads=threads)
                model, run, metrics = train_run(copy.deepcopy(source.backbone), split, strategy, cfg)
                accs.append(metrics["accuracy"])
                secs.append(run.train_seconds)
                if seed == 0:
                    info = {
                        "source_task": source.config["source_task"],
                        "target_task": _task_record(task, split),
                        "label_names": task.class_names,
                        "preprocessing": task.preprocessing,
                        "metrics": {"val_accuracy": run.val_accuracy, "test_accuracy": metrics["accuracy"]},
                        "training": {"strategy": name, "strategy_options": strategy.options(), "train": run.config},
                    }
                    save_model_folder(
                        out / "finetuned" / f"{name}-{shots}shot", backbone=model.backbone, head=model.head,
                        head_spec=model.head_spec, info=info, overwrite=True,
                    )
            mean, sd = _mean_sd(accs)
            rows.append({"shots": shots, "strategy": label, "test_accuracy": mean, "test_accuracy_sd": sd,
                         "train_seconds": statistics.fmean(secs), "seeds": seeds})
    if not quiet:
        table = Table(title=f"digits test accuracy (mean ± sd over {seeds} seeds) and training time")
        for col in ("labels/class", "strategy", "test accuracy", "vs scratch", "train s"):
            table.add_column(col, justify="right" if col != "strategy" else "left")
        for row in rows:
            base = next(r for r in rows if r["shots"] == row["shots"] and r["strategy"] == "scratch")
            gain = row["test_accuracy"] - base["test_accuracy"]
            table.add_row(str(row["shots"]), row["strategy"], f"{row['test_accuracy']:.3f} ± {row['test_accuracy_sd']:.3f}",
                          "—" if row is base else f"{gain:+.3f}", f"{row['train_seconds']:.2f}")
        console.print(table)
        say(f"models saved under {out}/ (pretrained/, finetuned/<strategy>-<shots>shot/)")
    return {"pretrained": pre.to_json(), "rows": rows}
