"""A tracked run as a context manager: picks the tracker (MLflow, TensorBoard) and ends the run with its status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .base import Tracker, check_tracking


@contextmanager
def tracking_run(
    track: str | None,
    tracking_uri: str | None = None,
    *,
    name: str,
    params: dict[str, Any],
    tags: dict[str, str] | None = None,
    enabled: bool = True,
) -> Iterator[Tracker]:
    """Open a tracked run for the block; it ends FINISHED, or FAILED / KILLED when the block raises.

    `enabled=False` (processes other than rank 0 of a distributed run) or `track=None` yields a
    Tracker that records nothing.

    Example:
        >>> with tracking_run("mlflow", None, name="finetune", params={"lr": 1e-3}) as t:  # doctest: +SKIP
        ...     t.log_epoch({"epoch": 1, "train_loss": 0.5, "val_accuracy": 0.9})
    """
    check_tracking(track, tracking_uri)
    if track is None or not enabled:
        yield Tracker()
        return
    if track == "mlflow":
        from .mlflow_run import MlflowTracker

        tracker: Tracker = MlflowTracker(tracking_uri, name=name, params=params, tags=tags or {})
    else:
        from .tensorboard_run import TensorBoardTracker

        tracker = TensorBoardTracker(tracking_uri, name=name, params=params, tags=tags or {})
    try:
        yield tracker
    except KeyboardInterrupt:
        tracker.close("KILLED")
        raise
    except BaseException:
        tracker.close("FAILED")
        raise
    tracker.close("FINISHED")
