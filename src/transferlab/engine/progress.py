"""Rich progress bars for epochs and steps (off with --quiet or --json)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class ProgressHooks:
    on_step: Any = None
    on_epoch_end: Any = None


@contextmanager
def training_progress(description: str, *, enabled: bool) -> Iterator[ProgressHooks]:
    """Yield the callbacks `fit` takes; a no-op pair when disabled."""
    if not enabled:
        yield ProgressHooks()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        epochs = progress.add_task(description, total=None, status="")
        steps = progress.add_task("  steps", total=None, status="")

        def on_step(step: int, per_epoch: int) -> None:
            progress.update(steps, completed=step, total=per_epoch)

        def on_epoch_end(record: dict[str, float]) -> None:
            val = f"val acc {record['val_accuracy']:.4f}" if "val_accuracy" in record else f"val mse {record['val_mse']:.4g}"
            status = f"loss {record['train_loss']:.4f}  {val}"
            progress.update(epochs, completed=record["epoch"], total=record["epochs"], status=status)

        yield ProgressHooks(on_step=on_step, on_epoch_end=on_epoch_end)


@contextmanager
def batch_progress(description: str, *, total: int, enabled: bool) -> Iterator[Any]:
    """Yield `advance(n)`, which moves a bar of `total` items by n (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
