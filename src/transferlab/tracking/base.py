"""The tracker interface, the choice of tracker, and the run lifetime (finished, failed or killed)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import ConfigError

TRACKERS = ("mlflow", "tensorboard")
_NEEDS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}  # tracker -> module of the track extra
_SKIP_EPOCH_KEYS = {"epoch", "epochs"}


class Tracker:
    """Records one run. This base class records nothing: it is what `tracking_run` yields when tracking is off.

    A tracker implements `log_epoch` (one validation pass: `epoch`, `train_loss`, `val_accuracy` or
    `val_mse`, `elapsed_seconds`), `log_metrics` (final metrics), `log_model_folder` and `close`.
    `location` says where the record can be read (a tracking URI or a log folder).
    """

    location: str | None = None
    run_id: str | None = None

    def log_epoch(self, record: dict[str, float]) -> None:
        """Per-epoch metrics at step = epoch."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Final metrics (test accuracy, macro-F1, training seconds, ...)."""

    def log_model_folder(self, folder: Path) -> None:
        """The saved model folder (config.json, model.safetensors, README.md) as an artifact."""

    def close(self, status: str) -> None:
        """End the run: "FINISHED", "FAILED" or "KILLED"."""


def epoch_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of an epoch record worth plotting (not the epoch counters themselves)."""
    return {k: float(v) for k, v in record.items() if k not in _SKIP_EPOCH_KEYS and isinstance(v, (int, float))}


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as flat `a.b` keys with string values (what MLflow params and TensorBoard text take)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flat_params(value, f"{name}.")
        else:
            flat[name] = str(value)
    return flat


def check_tracking(track: str | None, tracking_uri: str | None = None) -> None:
    """Validate `--track` before any training: a known tracker whose extra is installed."""
    if track is None:
        if tracking_uri is not None:
            raise ConfigError(f"--tracking-uri {tracking_uri!r} needs --track; pass --track mlflow or --track tensorboard")
        return
    if track not in TRACKERS:
        raise ConfigError(f"--track {track!r} is not one of {list(TRACKERS)}; tracking is off unless you pass one")
    needed = [_NEEDS[track]]
    if track == "mlflow" and (tracking_uri is None or tracking_uri.startswith("sqlite:")):
        needed += ["sqlalchemy", "alembic"]  # MLflow's SQLite store (mlflow-skinny does not bring them)
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(f"--track {track} needs the track extra ({module} is missing): "
                              "pip install 'transferlab[track]'") from None
