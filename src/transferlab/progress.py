"""Progress for every step that can take more than a few seconds, one mechanism for the CLI and the API.

A step reports `advance(n)` as it goes; what that does depends on `progress`, the argument every
public function takes:
- `True`: a rich bar on stderr (what is being done, done/total, elapsed and ETA), at most 80 columns;
- `False`: nothing;
- a callable: called with a `ProgressEvent` on every advance (a notebook widget, a log, a test);
- `None`: a bar when stderr is a terminal, else nothing (the Python API's default).
The CLI passes `progress=not (--quiet or --json)`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Union

WIDTH = 80  # bars fit an 80-column terminal
_DESCRIPTION = 24  # columns left for what is being done
_STATUS = 24  # columns left for a training status (loss, validation metric)


@dataclass(frozen=True)
class ProgressEvent:
    """One report from a step: `what` is being done, `done` of `total` items (None: unknown), `elapsed` s."""

    what: str
    done: int
    total: int | None
    elapsed: float
    status: str = ""


Progress = Union[bool, Callable[[ProgressEvent], Any], None]


def resolve_progress(progress: Progress, quiet: bool | None = None) -> bool | Callable[[ProgressEvent], Any]:
    """`progress` if given; else `not quiet` if given; else a bar only when stderr is a terminal."""
    if progress is not None:
        if not (isinstance(progress, bool) or callable(progress)):
            from .errors import ConfigError

            raise ConfigError(f"progress must be True, False, None or a callable taking a ProgressEvent; got {progress!r}")
        return progress
    if quiet is not None:
        return not quiet
    return sys.stderr.isatty()


def short(text: str, width: int = _DESCRIPTION) -> str:
    """`text` cut to `width` columns with an ellipsis, padded so bars line up."""
    return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)


def _bar(with_status: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    # 80 columns: description 24, bar 12, done/total ≤ 11, elapsed 7, then ETA (steps) or status (training)
    columns = [TextColumn("{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(), TimeElapsedColumn()]
    if with_status:
        columns.append(TextColumn("{task.fields[status]}"))
    else:
        columns += [TextColumn("eta"), TimeRemainingColumn(compact=True)]
    return Progress(*columns, console=Console(stderr=True, width=min(WIDTH, Console(stderr=True).width)),
                    transient=True)


@contextmanager
def progress_steps(what: str, *, total: int | None, progress: Progress) -> Iterator[Callable[..., None]]:
    """Yield `advance(n=1, status="")` for a step of `total` items, reported as `progress` says."""
    mode = resolve_progress(progress)
    if mode is False:
        yield lambda n=1, status="": None
        return
    start = time.perf_counter()
    if mode is not True:
        done = 0

        def report(n: int = 1, status: str = "") -> None:
            nonlocal done
            done += n
            mode(ProgressEvent(what, done, total, time.perf_counter() - start, status))

        mode(ProgressEvent(what, 0, total, 0.0))
        yield report
        return
    bar = _bar(with_status=False)
    with bar:
        task = bar.add_task(short(what), total=total)
        yield lambda n=1, status="": bar.advance(task, n)


def batch_progress(description: str, *, total: int, enabled: Progress) -> Iterator[Any]:
    """`progress_steps` under its older name (`enabled`: the same values as `progress`)."""
    return progress_steps(description, total=total, progress=enabled)


@dataclass
class ProgressHooks:
    on_step: Any = None
    on_epoch_end: Any = None


@contextmanager
def training_progress(description: str, *, enabled: Progress) -> Iterator[ProgressHooks]:
    """Yield the callbacks `fit` takes: epochs done/total, steps of the epoch, loss and validation metric."""
    mode = resolve_progress(enabled) if enabled is not None else False
    if mode is False:
        yield ProgressHooks()
        return
    start = time.perf_counter()

    def status_of(record: dict[str, float]) -> str:
        val = f"val {record['val_accuracy']:.4f}" if "val_accuracy" in record else f"mse {record['val_mse']:.4g}"
        return f"loss {record['train_loss']:.4f} {val}"

    if mode is not True:
        def on_epoch_end(record: dict[str, float]) -> None:
            mode(ProgressEvent(description, int(record["epoch"]), int(record["epochs"]), time.perf_counter() - start,
                               status_of(record)))

        yield ProgressHooks(on_epoch_end=on_epoch_end)
        return
    bar = _bar(with_status=True)
    with bar:
        epochs = bar.add_task(short(description), total=None, status="")
        steps = bar.add_task(short("  steps of the epoch"), total=None, status="")

        def on_step(step: int, per_epoch: int) -> None:
            bar.update(steps, completed=step, total=per_epoch)

        def on_epoch_end(record: dict[str, float]) -> None:
            bar.update(epochs, completed=record["epoch"], total=record["epochs"], status=status_of(record)[:_STATUS])

        yield ProgressHooks(on_step=on_step, on_epoch_end=on_epoch_end)
