"""Experiment tracking, off by default: `--track mlflow` or `--track tensorboard` records a run's params,
per-epoch metrics, final metrics and its model folder (the safetensors folder, never a pickled model).

compare's SQLite run store stays the built-in record; trackers are for teams that already use one.
"""

from .base import TRACKERS, Tracker, check_tracking
from .session import tracking_run

__all__ = ["TRACKERS", "Tracker", "check_tracking", "tracking_run"]
